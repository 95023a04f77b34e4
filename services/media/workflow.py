"""Media's use cases, shared by the HTTP routes, the event handlers and the housekeeping loop:
validate → store the object → record it and its event in one transaction."""

import asyncio
import hashlib
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import asyncpg
import httpx

from services.media import domain, imaging, store
from services.media.domain import Checked, Rejection, ReportContext, SizeLimits, exif_refusal
from services.media.imaging import ImageFacts
from services.media.settings import MediaSettings
from shared.db import enqueue
from shared.events import MediaAttached, MediaComparisonReady, MediaRejected, MediaStored, Payload, new_event, utcnow
from shared.loops import repeat_until_stopped
from shared.objects import ObjectChanged, ObjectStore
from shared.service import Runtime

log = logging.getLogger(__name__)


class NotFound(Exception):
    """The upload, media or comparison asked for does not exist."""


class Conflict(Exception):
    """The request contradicts the current state; the message is for people (Chinese)."""


class Unacceptable(Exception):
    """The media cannot serve as this evidence (a policy refuses it); the message is for people (Chinese)."""


class UploadNotFinished(Conflict):
    """A presigned upload is completed before its object is in the store: not counted, may retry."""


class UploadClosed(Exception):
    """A presigned upload that was already rejected or expired."""

    def __init__(self, upload: asyncpg.Record):
        super().__init__(upload["status"])
        self.upload = upload


def size_limits(settings: MediaSettings) -> SizeLimits:
    return SizeLimits(
        image=settings.media_image_max_bytes, video=settings.media_video_max_bytes, audio=settings.media_audio_max_bytes
    )


def retention_days(settings: MediaSettings) -> dict[str, int]:
    return {
        "image": settings.media_retention_days_image,
        "video": settings.media_retention_days_video,
        "audio": settings.media_retention_days_audio,
    }


async def _emit(
    conn: asyncpg.Connection,
    settings: MediaSettings,
    payload: Payload,
    *,
    key: UUID,
    case_jurisdiction: str | None = None,
    correlation_id: UUID | None = None,
) -> None:
    """Publish in the outbox; the envelope names the case's division, or this instance's for media
    that is no case's (yet)."""
    await enqueue(
        conn,
        settings,
        new_event(
            payload,
            producer=settings.service_name,
            jurisdiction_code=case_jurisdiction or settings.jurisdiction_code,
            key=str(key),
            correlation_id=correlation_id,
        ),
    )


async def record_rejection(
    *,
    runtime: Runtime[MediaSettings],
    upload_id: UUID,
    rejection: Rejection,
    filename: str | None,
    declared_type: str | None,
    head: bytes,
    size_bytes: int | None,
    conn: asyncpg.Connection | None = None,
    correlation_id: UUID | None = None,
) -> None:
    """Emit media.rejected (with the upload's row, for presigned uploads, in the same transaction)."""
    payload = MediaRejected(
        upload_id=upload_id,
        reason=rejection.reason,
        detail=rejection.detail,
        filename=filename,
        declared_content_type=domain.normalize_declared_type(declared_type) or None,
        detected_content_type=domain.sniff_content_type(head[: domain.SNIFF_BYTES]),
        size_bytes=size_bytes,
    )
    if conn is not None:
        await _emit(conn, runtime.settings, payload, key=upload_id, correlation_id=correlation_id)
        return
    async with runtime.pool.acquire() as conn, conn.transaction():
        await _emit(conn, runtime.settings, payload, key=upload_id, correlation_id=correlation_id)


T = TypeVar("T")

# Decode slots per event loop (one loop per process in production), then per limit (tests give
# apps different settings in one loop).
_DECODE_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


async def decoding(settings: MediaSettings, work: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run Pillow work in a worker thread, at most `media_decode_concurrency` at once in this
    process: a 50 MP image is ~150 MB once decoded (and its derived copies need it twice), so a
    burst of large uploads waits its turn instead of exhausting the pod's memory."""
    limit = settings.media_decode_concurrency
    slots = _DECODE_SLOTS.setdefault(asyncio.get_running_loop(), {})
    slot = slots.setdefault(limit, asyncio.Semaphore(limit))
    async with slot:
        return await asyncio.to_thread(work, *args, **kwargs)


async def _inspect(checked: Checked, data: bytes | None, settings: MediaSettings) -> ImageFacts | None:
    """Images are decoded in full (in a worker thread: it is CPU work); other kinds by magic bytes."""
    if checked.kind != "image":
        return None
    assert data is not None
    return await decoding(settings, imaging.inspect_image, data, max_pixels=settings.media_image_max_pixels)


async def store_direct(
    *,
    runtime: Runtime[MediaSettings],
    objects: ObjectStore,
    data: bytes,
    filename: str | None,
    declared_type: str | None,
    correlation_id: UUID | None = None,
) -> asyncpg.Record:
    """Validate and store one file sent to the API; raises Rejection after emitting media.rejected
    (with `correlation_id`, when the file came with a staff command)."""
    settings = runtime.settings
    upload_id = uuid4()
    try:
        if len(data) > settings.media_max_bytes:
            raise Rejection(
                "too-large",
                f"直接上传最大 {domain.format_bytes(settings.media_max_bytes)}；"
                "更大的文件请先申请预签名上传（POST /api/v1/uploads）。",
            )
        checked = domain.check_upload(
            head=data[: domain.SNIFF_BYTES], size=len(data), declared_type=declared_type, limits=size_limits(settings)
        )
        facts = await _inspect(checked, data, settings)
    except Rejection as rejection:
        size = len(data) if len(data) <= settings.media_max_bytes else None
        await record_rejection(
            runtime=runtime,
            upload_id=upload_id,
            rejection=rejection,
            filename=filename,
            declared_type=declared_type,
            head=data,
            size_bytes=size,
            correlation_id=correlation_id,
        )
        raise

    sha256 = hashlib.sha256(data).hexdigest()

    async def write_original() -> None:
        await objects.put(domain.object_key(sha256), data, checked.content_type)

    return await _record_stored(
        runtime=runtime,
        objects=objects,
        sha256=sha256,
        size=len(data),
        checked=checked,
        facts=facts,
        data=data,
        filename=filename,
        upload_id=None,
        write_original=write_original,
    )


async def _record_stored(
    *,
    runtime: Runtime[MediaSettings],
    objects: ObjectStore,
    sha256: str,
    size: int,
    checked: Checked,
    facts: ImageFacts | None,
    data: bytes | None,
    filename: str | None,
    upload_id: UUID | None,
    write_original: Callable[[], Awaitable[None]],
) -> asyncpg.Record:
    """Write the object (unless the same content is stored already) and its derived copies, then
    its rows and media.stored in one transaction. The object row stays locked meanwhile, so the
    retention purge cannot delete the object between our look and our row."""
    settings, now = runtime.settings, utcnow()
    media_id = uuid4()
    public_key = thumbnail_key = None
    async with runtime.pool.acquire() as conn, conn.transaction():
        existing = await store.lock_object(conn, sha256=sha256)
        # The object's row while its content is stored; a purged object is written again.
        stored = existing if existing is not None and existing["purged_at"] is None else None
        if stored is None:
            # The object is written before its row: a row never points at a missing object.
            await write_original()
        if checked.kind == "image":
            if stored is not None and stored["public_key"]:
                public_key, thumbnail_key = stored["public_key"], stored["thumbnail_key"]
            else:
                public_key, thumbnail_key = await _write_derived(objects, sha256, data, settings)
        await store.insert_object(
            conn,
            sha256=sha256,
            content_type=checked.content_type,
            kind=checked.kind,
            size_bytes=size,
            object_key=domain.object_key(sha256),
            width=facts.width if facts else None,
            height=facts.height if facts else None,
            captured_at=facts.captured_at if facts else None,
            latitude=facts.latitude if facts else None,
            longitude=facts.longitude if facts else None,
            dhash=facts.dhash if facts else None,
            public_key=public_key,
            thumbnail_key=thumbnail_key,
            retain_until=domain.retain_until(kind=checked.kind, stored_at=now, retention_days=retention_days(settings)),
        )
        await store.insert_media(conn, media_id=media_id, sha256=sha256, filename=filename, upload_id=upload_id)
        if upload_id is not None:
            await store.finish_upload(conn, upload_id=upload_id, status="completed", now=now, media_id=media_id)
        await _emit(
            conn,
            settings,
            MediaStored(
                media_id=media_id,
                sha256=sha256,
                content_type=checked.content_type,
                size_bytes=size,
                object_key=domain.object_key(sha256),
                filename=filename,
                kind=checked.kind,
                upload_id=upload_id,
                captured_at=facts.captured_at if facts else None,
                latitude=facts.latitude if facts else None,
                longitude=facts.longitude if facts else None,
            ),
            key=media_id,
        )
        return await store.find_media(conn, media_id=media_id)


async def _write_derived(
    objects: ObjectStore, sha256: str, data: bytes | None, settings: MediaSettings
) -> tuple[str, str]:
    """The stripped public copy and the thumbnail of an image."""
    assert data is not None
    max_pixels = settings.media_image_max_pixels
    public, thumb = await decoding(settings, imaging.derived_copies, data, max_pixels=max_pixels)
    public_key, thumbnail_key = domain.public_copy_key(sha256), domain.thumbnail_key(sha256)
    await objects.put(public_key, public, "image/jpeg")
    await objects.put(thumbnail_key, thumb, "image/jpeg")
    return public_key, thumbnail_key


async def create_upload(
    *,
    runtime: Runtime[MediaSettings],
    objects: ObjectStore,
    filename: str | None,
    content_type: str,
    size_bytes: int,
    sha256: str,
) -> tuple[asyncpg.Record, str]:
    """Announce a large file and get a presigned PUT URL for it; raises Rejection (emitted)."""
    settings = runtime.settings
    upload_id = uuid4()
    try:
        request = domain.check_upload_request(
            content_type=content_type, size_bytes=size_bytes, sha256=sha256, limits=size_limits(settings)
        )
    except Rejection as rejection:
        await record_rejection(
            runtime=runtime,
            upload_id=upload_id,
            rejection=rejection,
            filename=filename,
            declared_type=content_type,
            head=b"",
            size_bytes=size_bytes,
        )
        raise
    now = utcnow()
    key = domain.staging_key(upload_id)
    url = await objects.presigned_put(key, expires_s=settings.media_presign_put_expiry_s)
    async with runtime.pool.acquire() as conn, conn.transaction():
        await store.insert_upload(
            conn,
            upload_id=upload_id,
            staging_key=key,
            filename=filename,
            content_type=request.content_type,
            size_bytes=request.size_bytes,
            sha256=request.sha256,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.media_presign_put_expiry_s),
            complete_by=domain.completion_deadline(created_at=now, put_expiry_s=settings.media_presign_put_expiry_s),
        )
        return await store.find_upload(conn, upload_id=upload_id), url


async def complete_upload(
    *, runtime: Runtime[MediaSettings], objects: ObjectStore, upload_id: UUID
) -> tuple[asyncpg.Record, bool]:
    """Verify a presigned upload's object (size, SHA-256, content) and store it; (media, created).
    Raises NotFound, UploadNotFinished, UploadClosed, or Rejection (emitted, upload closed)."""
    async with runtime.pool.acquire() as conn:
        upload = await store.claim_upload(conn, upload_id=upload_id, now=utcnow())
        if upload is None:
            return await _completed_already(conn, upload_id), False
    try:
        media = await _verify_and_store(runtime=runtime, objects=objects, upload=upload)
    except BaseException:
        # Anything but a verdict (MinIO down, cancelled) leaves the upload open for another try.
        async with runtime.pool.acquire() as conn:
            await store.release_upload(conn, upload_id=upload_id)
        raise
    return media, True


async def _completed_already(conn: asyncpg.Connection, upload_id: UUID) -> asyncpg.Record:
    """Completing twice answers the same media; anything else says why it cannot be completed."""
    upload = await store.find_upload(conn, upload_id=upload_id)
    if upload is None:
        raise NotFound(f"没有上传 {upload_id}。")
    if upload["status"] == "completed":
        return await store.find_media(conn, media_id=upload["media_id"])
    if upload["status"] == "verifying":
        raise Conflict("该上传正在校验中，请稍后再试。")
    # Rejected, expired, or still pending past its deadline (the housekeeping loop will close it).
    raise UploadClosed(upload)


async def _verify_and_store(
    *, runtime: Runtime[MediaSettings], objects: ObjectStore, upload: asyncpg.Record
) -> asyncpg.Record:
    """Size first (a PUT cut short), then SHA-256 and content, all on the one version stat'ed."""
    settings, key = runtime.settings, upload["staging_key"]
    staged = await objects.stat(key)
    if staged is None:
        raise UploadNotFinished("文件尚未上传到存储（PUT 未完成），上传未计入；请完成 PUT 后重试。")
    head = b""
    try:
        domain.check_completed_size(expected=upload["size_bytes"], actual=staged.size)
        declared_kind = domain.kind_of(upload["content_type"])
        # Only images are needed whole (to decode them); they are small. Videos are just hashed.
        read = await objects.read_verified(key, etag=staged.etag, keep_data=declared_kind == "image")
        head = read.head
        domain.check_completed_size(expected=upload["size_bytes"], actual=read.size)
        domain.check_completed_sha256(expected=upload["sha256"], actual=read.sha256)
        checked = domain.check_upload(
            head=read.head, size=read.size, declared_type=upload["content_type"], limits=size_limits(settings)
        )
        facts = await _inspect(checked, read.data, settings)
    except ObjectChanged as exc:
        raise UploadNotFinished("校验期间文件被重新上传，请稍后再完成上传。") from exc
    except Rejection as rejection:
        await objects.remove(key)
        async with runtime.pool.acquire() as conn, conn.transaction():
            await store.finish_upload(
                conn, upload_id=upload["upload_id"], status="rejected", now=utcnow(), reason=rejection.reason
            )
            await record_rejection(
                runtime=runtime,
                upload_id=upload["upload_id"],
                rejection=rejection,
                filename=upload["filename"],
                declared_type=upload["content_type"],
                head=head,
                size_bytes=staged.size,
                conn=conn,
            )
        raise

    async def write_original() -> None:
        try:
            await objects.copy_verified(
                key, domain.object_key(read.sha256), etag=staged.etag, content_type=checked.content_type
            )
        except ObjectChanged as exc:
            raise UploadNotFinished("校验期间文件被重新上传，请稍后再完成上传。") from exc

    media = await _record_stored(
        runtime=runtime,
        objects=objects,
        sha256=read.sha256,
        size=read.size,
        checked=checked,
        facts=facts,
        data=read.data,
        filename=upload["filename"],
        upload_id=upload["upload_id"],
        write_original=write_original,
    )
    await objects.remove(key)
    return media


async def attach_media(
    *,
    runtime: Runtime[MediaSettings],
    case_id: UUID,
    media_id: UUID,
    role: str,
    device: tuple[float, float, float | None] | None = None,
    attached_by: str | None = None,
) -> tuple[asyncpg.Record, bool]:
    """Attach media to a case as 'before' or 'after' evidence; (media, newly attached).
    Attaching it again the same way changes nothing; another case or role is a Conflict.
    `device` is where the attaching phone was (WGS-84), kept as evidence metadata."""
    async with runtime.pool.acquire() as conn, conn.transaction():
        media = await store.find_media(conn, media_id=media_id)
        if media is None:
            raise NotFound(f"没有媒体 {media_id}。")
        if media["case_id"] is not None:
            if media["case_id"] == case_id and media["role"] == role:
                return media, False
            raise Conflict(f"该媒体已作为“{_role_name(media['role'])}”关联到案件 {media['case_id']}。")
        refusal = exif_refusal(
            role=role,
            kind=media["kind"],
            captured_at=media["captured_at"],
            required_for=runtime.settings.media_exif_required_for,
        )
        if refusal:
            raise Unacceptable(refusal)
        attached = await store.attach(
            conn,
            media_id=media_id,
            case_id=case_id,
            role=role,
            attached_at=utcnow(),
            device=device,
            attached_by=attached_by,
        )
        if not attached:
            raise Conflict("该媒体刚被关联到了其他案件。")  # a concurrent attach won
        await _attached(conn, runtime.settings, case_id=case_id, media_ids=[media_id])
        return await store.find_media(conn, media_id=media_id), True


def _role_name(role: str | None) -> str:
    return {"before": "整改前", "after": "整改后"}.get(role or "", "未知")


async def _attached(
    conn: asyncpg.Connection,
    settings: MediaSettings,
    *,
    case_id: UUID,
    media_ids: list[UUID],
    correlation_id: UUID | None = None,
) -> None:
    """Check the new evidence against the report and tell other services (media.attached)."""
    await apply_evidence_checks(conn, settings=settings, case_id=case_id)
    case = await store.find_case(conn, case_id=case_id)
    for media_id in media_ids:
        media = await store.find_media(conn, media_id=media_id)
        if media is None:  # attached in this transaction, so only a bug could lose it
            raise NotFound(f"media {media_id}")
        await _emit(
            conn,
            settings,
            MediaAttached(
                media_id=media_id,
                case_id=case_id,
                role=media["role"],
                content_type=media["content_type"],
                sha256=media["sha256"],
                flags=list(media["flags"]),
                attached_at=media["attached_at"],
            ),
            key=case_id,
            case_jurisdiction=case["jurisdiction_code"] if case else None,
            correlation_id=correlation_id,
        )


async def attach_staff_photo(
    conn: asyncpg.Connection, *, settings: MediaSettings, case_id: UUID, media_id: UUID, command_id: UUID
) -> None:
    """A photo staff sent with 办结 from WeCom is the case's "after" evidence; media.attached names
    the command (correlation id), so dispatch resolves the case with it."""
    if await store.attach(conn, media_id=media_id, case_id=case_id, role="after", attached_at=utcnow()):
        await _attached(conn, settings, case_id=case_id, media_ids=[media_id], correlation_id=command_id)


async def attach_report_media(
    conn: asyncpg.Connection,
    *,
    settings: MediaSettings,
    case_id: UUID,
    report_id: UUID,
    lat: float | None,
    lng: float | None,
    submitted_at: datetime,
    jurisdiction_code: str,
    media_ids: list[UUID],
    grid_code: str | None = None,
) -> None:
    """A submitted report's photos are its case's 'before' evidence; its place and time are what
    all of the case's evidence is checked against."""
    await store.save_report_facts(
        conn,
        case_id=case_id,
        report_id=report_id,
        lat=lat,
        lng=lng,
        submitted_at=submitted_at,
        jurisdiction_code=jurisdiction_code,
        grid_code=grid_code,
    )
    if not await attach_before_media(
        conn, settings=settings, case_id=case_id, report_id=report_id, submitted_at=submitted_at, media_ids=media_ids
    ):
        # Media attached before the report arrived is checked now that there is something to check against.
        await apply_evidence_checks(conn, settings=settings, case_id=case_id)


async def attach_before_media(
    conn: asyncpg.Connection,
    *,
    settings: MediaSettings,
    case_id: UUID,
    report_id: UUID,
    submitted_at: datetime,
    media_ids: list[UUID],
) -> bool:
    """A report's photos become its case's 'before' evidence (also a second report of the same
    problem, 一事多报); True if any was newly attached."""
    attached = [
        media_id
        for media_id in media_ids
        if await store.attach(
            conn, media_id=media_id, case_id=case_id, role="before", attached_at=submitted_at, report_id=report_id
        )
    ]
    if attached:
        await _attached(conn, settings, case_id=case_id, media_ids=attached)
    return bool(attached)


async def apply_evidence_checks(conn: asyncpg.Connection, *, settings: MediaSettings, case_id: UUID) -> None:
    """Recompute the EXIF flags of a case's media against its report (no report yet: no flags)."""
    case = await store.find_case(conn, case_id=case_id)
    if case is None or case["submitted_at"] is None:
        return
    context = ReportContext(lat=case["lat"], lng=case["lng"], submitted_at=case["submitted_at"])
    for media in await store.case_media(conn, case_id=case_id):
        flags = domain.evidence_flags(
            role=media["role"],
            captured_at=media["captured_at"],
            latitude=media["latitude"],
            longitude=media["longitude"],
            report=context,
            max_distance_m=settings.media_exif_max_distance_m,
            max_age=timedelta(hours=settings.media_exif_max_age_hours),
        )
        if media["dhash"] is not None and await store.reused_photo(
            conn,
            media_id=media["media_id"],
            case_id=case_id,
            role=media["role"],
            dhash=media["dhash"],
            max_distance=settings.media_reused_photo_max_distance,
        ):
            flags.append(domain.FLAG_REUSED_PHOTO)
        distance = None
        # Spelled out (not `None not in (...)`) so the type checker sees each one is a float.
        if (
            media["latitude"] is not None
            and media["longitude"] is not None
            and context.lat is not None
            and context.lng is not None
        ):
            distance = round(domain.distance_m(media["latitude"], media["longitude"], context.lat, context.lng), 1)
        await store.set_flags(conn, media_id=media["media_id"], flags=flags, distance_m=distance)


async def case_access(conn: asyncpg.Connection, *, case_id: UUID) -> domain.CaseAccess | None:
    """Whose the case is, or None when no report or case event for it has arrived."""
    case = await store.find_case(conn, case_id=case_id)
    if case is None:
        return None
    return domain.CaseAccess(
        jurisdiction_code=case["jurisdiction_code"],
        department_code=case["department_code"],
        co_department_codes=tuple(case["co_department_codes"]),
        grid_code=case["grid_code"],
    )


def evidence_items(rows: list[asyncpg.Record]) -> list[domain.EvidenceItem]:
    """A case's media as the domain sees it; purged media is no longer evidence."""
    return [
        domain.EvidenceItem(
            media_id=r["media_id"], role=r["role"], kind=r["kind"], sha256=r["sha256"], attached_at=r["attached_at"]
        )
        for r in rows
        if r["purged_at"] is None and r["kind"] is not None
    ]


async def generate_comparison(
    *, runtime: Runtime[MediaSettings], objects: ObjectStore, case_id: UUID
) -> tuple[asyncpg.Record, bool]:
    """整改前后对比 for a case's newest before and after photos; (comparison, newly generated)."""
    async with runtime.pool.acquire() as conn:
        rows = await store.case_media(conn, case_id=case_id)
    pair = domain.comparison_pair(evidence_items(rows))
    if pair is None:
        raise Conflict("生成整改前后对比需要至少一张“整改前”和一张“整改后”照片。")
    before, after = ({r["media_id"]: r for r in rows}[item.media_id] for item in pair)
    key = domain.comparison_key(case_id=case_id, before_sha256=before["sha256"], after_sha256=after["sha256"])
    async with runtime.pool.acquire() as conn:
        existing = await store.find_comparison(conn, object_key=key)
    if existing is not None:
        return existing, False
    # The public copies are already upright and stripped, and smaller than the originals.
    before_bytes, after_bytes = await asyncio.gather(
        objects.get(before["public_key"]), objects.get(after["public_key"])
    )
    image = await decoding(
        runtime.settings,
        imaging.comparison_image,
        before=before_bytes,
        after=after_bytes,
        before_caption=domain.caption(captured_at=before["captured_at"], uploaded_at=before["uploaded_at"]),
        after_caption=domain.caption(captured_at=after["captured_at"], uploaded_at=after["uploaded_at"]),
        max_pixels=runtime.settings.media_image_max_pixels,
    )
    await objects.put(key, image, "image/jpeg")
    async with runtime.pool.acquire() as conn, conn.transaction():
        await store.save_comparison(
            conn,
            object_key=key,
            case_id=case_id,
            before_media_id=before["media_id"],
            after_media_id=after["media_id"],
            generated_at=utcnow(),
        )
        return await store.find_comparison(conn, object_key=key), True


async def announce_comparison(
    conn: asyncpg.Connection, *, settings: MediaSettings, pool: asyncpg.Pool, objects: ObjectStore, case_id: UUID
) -> bool:
    """On 办结: make the case's 整改前后对比 image (unless it exists) and publish media.comparison_ready
    in the caller's transaction, so the reporter is shown it without anyone asking. False (nothing
    published) when the case lacks a before or an after photo."""
    runtime = _Images(settings=settings, pool=pool)
    try:
        comparison, _ = await generate_comparison(runtime=runtime, objects=objects, case_id=case_id)  # type: ignore[arg-type]
    except Conflict:
        return False
    case = await store.find_case(conn, case_id=case_id)
    expires_s = settings.media_comparison_link_expiry_s
    ready = MediaComparisonReady(
        case_id=case_id,
        before_media_id=comparison["before_media_id"],
        after_media_id=comparison["after_media_id"],
        object_key=comparison["object_key"],
        url=await objects.presigned_get(comparison["object_key"], expires_s=expires_s, content_type="image/jpeg"),
        url_expires_at=utcnow() + timedelta(seconds=expires_s),
        generated_at=comparison["generated_at"],
    )
    division = (case["jurisdiction_code"] if case else None) or settings.jurisdiction_code
    await enqueue(
        conn,
        settings,
        new_event(ready, producer=settings.service_name, jurisdiction_code=division, key=str(case_id)),
    )
    return True


@dataclass(frozen=True)
class _Images:
    """What generate_comparison uses of a runtime: the pool and the settings."""

    settings: MediaSettings
    pool: asyncpg.Pool


async def housekeep_once(*, runtime: Runtime[MediaSettings], objects: ObjectStore) -> dict[str, int]:
    """Close presigned uploads never completed in time, and delete objects past their retention."""
    settings, now = runtime.settings, utcnow()
    async with runtime.pool.acquire() as conn, conn.transaction():
        expired = await store.expire_uploads(conn, now=now)
        for upload in expired:
            await record_rejection(
                runtime=runtime,
                upload_id=upload["upload_id"],
                conn=conn,
                rejection=Rejection("upload-expired", "预签名上传在期限内未完成，未计入。"),
                filename=upload["filename"],
                declared_type=upload["content_type"],
                head=b"",
                size_bytes=None,
            )
    for upload in expired:
        # A partial or complete object left behind by an abandoned PUT never becomes evidence.
        await objects.remove(upload["staging_key"])
    purged = 0
    async with runtime.pool.acquire() as conn, conn.transaction():
        for row in await store.due_for_purge(conn, now=now):
            comparison_keys = await store.mark_purged(conn, sha256=row["sha256"], now=now)
            keys = [k for k in (row["object_key"], row["public_key"], row["thumbnail_key"]) if k]
            # Deleted while the row is locked; if deleting fails the transaction rolls back and retries.
            await objects.remove(*keys, *comparison_keys)
            purged += 1
    if expired or purged:
        log.info(
            "housekeeping in %s: %d uploads expired, %d objects purged", settings.media_bucket, len(expired), purged
        )
    return {"expired_uploads": len(expired), "purged_objects": purged}


FETCH_ATTEMPTS = 5


class Unfetchable(Exception):
    """A photo URL media may not or cannot fetch; `retry` says whether trying later can help."""

    def __init__(self, reason: str, *, retry: bool):
        super().__init__(reason)
        self.retry = retry


async def fetch_photo(http: httpx.AsyncClient, url: str, settings: MediaSettings) -> tuple[bytes, str | None]:
    """A report photo from its channel's host: only allowed hosts, only up to the image limit."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or parsed.hostname not in settings.media_fetch_hosts:
        raise Unfetchable(f"host {parsed.hostname} is not one media fetches from", retry=False)
    try:
        async with http.stream("GET", url, timeout=settings.media_fetch_timeout_s) as response:
            if response.status_code >= 400:
                raise Unfetchable(f"HTTP {response.status_code}", retry=response.status_code >= 500)
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > settings.media_image_max_bytes:
                    raise Unfetchable("larger than the image limit", retry=False)
            return bytes(data), response.headers.get("content-type")
    except httpx.HTTPError as error:
        raise Unfetchable(f"{type(error).__name__}: {error}", retry=True) from None


async def take_in_incoming(
    *, runtime: Runtime[MediaSettings], objects: ObjectStore, incoming: ObjectStore, http: httpx.AsyncClient
) -> int:
    """Validate and store the photos reports brought along (parked by intake, or held by the
    channel at a URL), as their cases' 'before' evidence; a refused photo is recorded
    (media.rejected) and the report stands. Returns how many were looked at."""
    settings = runtime.settings
    async with runtime.pool.acquire() as conn:
        photos = await store.claim_incoming(conn, now=utcnow(), lease_s=120, limit=10)
    for photo in photos:
        key, url = photo["object_key"], photo["url"]
        filename, declared = photo["filename"], photo["content_type"]
        command_id = domain.staff_command_of(key)  # a photo staff sent with 办结: "after", not "before"
        media_id = reason = None
        try:
            if url:
                data, declared = await fetch_photo(http, url, settings)
                filename = urlsplit(url).path.rsplit("/", 1)[-1] or None
            elif await incoming.exists(key):
                data = await incoming.get(key)
            else:
                raise Unfetchable("the parked photo is gone", retry=False)
            row = await store_direct(
                runtime=runtime,
                objects=objects,
                data=data,
                filename=filename,
                declared_type=declared,
                correlation_id=command_id,
            )
            status, media_id = "stored", row["media_id"]
        except Rejection as rejection:
            status, reason = "rejected", rejection.reason
        except Unfetchable as problem:
            if problem.retry and photo["attempts"] < FETCH_ATTEMPTS:
                continue  # the lease runs out and the photo is tried again
            status, reason = "unfetchable", str(problem)
        async with runtime.pool.acquire() as conn, conn.transaction():
            if media_id is not None and command_id is not None:
                await attach_staff_photo(
                    conn, settings=settings, case_id=photo["case_id"], media_id=media_id, command_id=command_id
                )
            elif media_id is not None:
                await attach_before_media(
                    conn,
                    settings=settings,
                    case_id=photo["case_id"],
                    report_id=photo["report_id"],
                    submitted_at=photo["submitted_at"],
                    media_ids=[media_id],
                )
            await store.finish_incoming(conn, object_key=key, status=status, media_id=media_id, reason=reason)
        if not url:
            await incoming.remove(key)
    return len(photos)


def make_incoming_loop(objects: ObjectStore, incoming: ObjectStore):
    """The background loop taking in the photos reports brought along."""

    async def incoming_loop(runtime: Runtime[MediaSettings]) -> None:
        async with httpx.AsyncClient(follow_redirects=False) as http:
            await repeat_until_stopped(
                runtime.stopping,
                runtime.settings.outbox_poll_interval_s,
                lambda: take_in_incoming(runtime=runtime, objects=objects, incoming=incoming, http=http),
                what="taking in photos",
            )

    return incoming_loop


def make_housekeeping(objects: ObjectStore):
    """The background loop running housekeep_once every media_housekeeping_interval_s."""

    async def housekeeping(runtime: Runtime[MediaSettings]) -> None:
        async def step() -> None:
            await housekeep_once(runtime=runtime, objects=objects)

        await repeat_until_stopped(
            runtime.stopping, runtime.settings.media_housekeeping_interval_s, step, what="media housekeeping"
        )

    return housekeeping
