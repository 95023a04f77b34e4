"""Media against real MinIO and PostgreSQL: content-addressed storage, validation by content."""

import io

import asyncpg
from minio import Minio
from PIL import Image

from services.media.app import create_app
from tests.support import running


def jpeg_bytes(color=(10, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buffer, format="JPEG")
    return buffer.getvalue()


async def test_same_photo_twice_is_stored_once_and_linked_twice(make_settings):
    settings = make_settings("media")
    photo = jpeg_bytes()
    async with running(create_app(settings)) as client:
        first = await client.post("/api/v1/media", files={"file": ("a.jpg", photo, "image/jpeg")})
        second = await client.post("/api/v1/media", files={"file": ("b.jpg", photo, "image/jpeg")})
        assert first.status_code == second.status_code == 201
        assert first.json()["sha256"] == second.json()["sha256"]
        assert first.json()["media_id"] != second.json()["media_id"]
        assert first.json()["content_type"] == "image/jpeg"
        stored = await client.get(f"/api/v1/media/{first.json()['media_id']}")
        assert stored.json()["filename"] == "a.jpg"
    minio = Minio(settings.minio_endpoint, settings.minio_access_key, settings.minio_secret_key, secure=False)
    objects = list(minio.list_objects(settings.media_bucket, recursive=True))
    assert len(objects) == 1
    assert minio.get_object(settings.media_bucket, objects[0].object_name).read() == photo
    db = await asyncpg.connect(settings.database_url)
    try:
        assert await db.fetchval("SELECT count(*) FROM media.media") == 2
        assert await db.fetchval("SELECT count(*) FROM media.media_objects") == 1
    finally:
        await db.close()


async def test_files_are_judged_by_content_and_size(make_settings):
    settings = make_settings("media", media_max_bytes=10_000)
    async with running(create_app(settings)) as client:
        renamed = await client.post("/api/v1/media", files={"file": ("photo.jpg", b"%PDF-1.7 not a photo", "image/jpeg")})
        assert renamed.status_code == 415
        assert renamed.headers["content-type"] == "application/problem+json"
        big = await client.post("/api/v1/media", files={"file": ("big.jpg", b"\xff\xd8\xff" + b"0" * 20_000, "image/jpeg")})
        assert big.status_code == 413
        empty = await client.post("/api/v1/media", files={"file": ("e.jpg", b"", "image/jpeg")})
        assert empty.status_code == 422
        missing = await client.post("/api/v1/media")
        assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "file"
