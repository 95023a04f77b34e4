"""Media's HTTP routes."""

import hashlib
from uuid import UUID, uuid4

from fastapi import APIRouter, Request, UploadFile

from services.media import store
from services.media.domain import object_key, sniff_content_type
from shared.db import enqueue
from shared.events import MediaStored, new_event
from shared.problems import Problem

router = APIRouter(prefix="/api/v1")


@router.post("/media", status_code=201)
async def upload_media(file: UploadFile, request: Request):
    """Store one photo, video or voice note; the same content is stored once and linked again."""
    runtime, objects = request.app.state.runtime, request.app.state.objects
    settings = runtime.settings
    data = await file.read(settings.media_max_bytes + 1)
    if len(data) > settings.media_max_bytes:
        raise Problem(413, "Upload too large", f"At most {settings.media_max_bytes} bytes.", kind="too-large")
    if not data:
        raise Problem(422, "Empty upload", "The file has no content.", kind="empty-upload")
    content_type = sniff_content_type(data[:32])
    if content_type is None:
        raise Problem(415, "Unsupported media", "Not a JPEG, PNG, WebP, HEIC, MP4, AMR or MP3 file.",
                      kind="unsupported-media")
    sha256 = hashlib.sha256(data).hexdigest()
    key = object_key(sha256)
    # The object is written before its row: a row never points at a missing object.
    if not await objects.exists(key):
        await objects.put(key, data, content_type)
    media_id = uuid4()
    async with runtime.pool.acquire() as conn, conn.transaction():
        await store.insert_object(conn, sha256=sha256, content_type=content_type, size_bytes=len(data), object_key=key)
        await store.insert_media(conn, media_id=media_id, sha256=sha256, filename=file.filename)
        stored = MediaStored(media_id=media_id, sha256=sha256, content_type=content_type, size_bytes=len(data),
                             object_key=key, filename=file.filename)
        await enqueue(conn, settings, new_event(
            stored, producer=settings.service_name, jurisdiction_code=settings.jurisdiction_code, key=str(media_id)))
    return {"media_id": str(media_id), "sha256": sha256, "content_type": content_type, "size_bytes": len(data)}


@router.get("/media/{media_id}")
async def get_media(media_id: UUID, request: Request):
    async with request.app.state.runtime.pool.acquire() as conn:
        row = await store.find_media(conn, media_id=media_id)
    if row is None:
        raise Problem(404, "Media not found", f"No media {media_id}.", kind="not-found")
    return {k: (str(v) if isinstance(v, UUID) else v) for k, v in dict(row).items()}
