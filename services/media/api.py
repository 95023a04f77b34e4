"""Media's HTTP routes: uploads (direct and presigned), media, and a case's before/after evidence."""

from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Request, Response, UploadFile
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from services.media import domain, store, workflow
from services.media.domain import Rejection
from services.media.settings import MediaSettings
from shared.auth import Actor
from shared.events import utcnow
from shared.objects import ObjectStore
from shared.problems import Problem
from shared.web import CurrentActor, OptionalActor, public

router = APIRouter(prefix="/api/v1")


async def _may_view(runtime, actor: Actor | None, case_id: UUID) -> bool:
    """Whether the actor may see a case's evidence (anonymous callers never may)."""
    async with runtime.pool.acquire() as conn:
        access = await workflow.case_access(conn, case_id=case_id)
    return (
        actor is not None
        and access is not None
        and domain.can_view_case(
            role=actor.role,
            jurisdiction_code=actor.jurisdiction_code,
            department_code=actor.department_code,
            case=access,
        )
    )


async def _authorize_case(runtime, actor: Actor, case_id: UUID) -> None:
    """404 for a case media has not heard of, 403 for one outside the actor's division or department."""
    async with runtime.pool.acquire() as conn:
        access = await workflow.case_access(conn, case_id=case_id)
    if access is None:
        raise Problem(404, "未找到", f"没有案件 {case_id}（尚未收到它的上报或案件事件）。", kind="not-found")
    if not domain.can_view_case(
        role=actor.role, jurisdiction_code=actor.jurisdiction_code, department_code=actor.department_code, case=access
    ):
        raise Problem(403, "无权查看", "该案件不在您的辖区或部门范围内。", kind="forbidden")


def _problem(exc: Exception) -> Problem:
    """The problem+json answer for a workflow outcome."""
    if isinstance(exc, Rejection):
        return Problem(exc.status, exc.title, exc.detail, kind=exc.reason, reason=exc.reason)
    if isinstance(exc, workflow.NotFound):
        return Problem(404, "未找到", str(exc), kind="not-found")
    if isinstance(exc, workflow.UploadNotFinished):
        return Problem(409, "上传尚未完成", str(exc), kind="upload-not-finished")
    if isinstance(exc, workflow.UploadClosed):
        status = exc.upload["status"]
        detail = {"rejected": f"该上传已被拒收（{exc.upload['reason']}），请重新申请上传。"}.get(
            status, "该上传已过期，未计入，请重新申请上传。"
        )
        return Problem(410, "上传已关闭", detail, kind="upload-closed", upload_status=status)
    if isinstance(exc, workflow.Conflict):
        return Problem(409, "状态冲突", str(exc), kind="conflict")
    if isinstance(exc, workflow.Unacceptable):
        return Problem(422, "不符合证据要求", str(exc), kind="exif-required")
    raise exc


def _context(request: Request):
    runtime = request.app.state.runtime
    objects: ObjectStore = request.app.state.objects
    return runtime, objects


Kind = Literal["image", "video", "audio"]
Role = Literal["before", "after"]  # 整改前 / 整改后


class MediaUrls(TypedDict, total=False):
    """Short-lived download URLs, only those that exist (none once purged)."""

    original: str  # keeps its EXIF (GPS, device) as evidence: pages for the public use "public"
    public: str  # a copy without EXIF
    thumbnail: str


class DeviceLocation(BaseModel):
    """Where the phone was when the photo was attached (the browser's navigator.geolocation: WGS-84)."""

    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(None, ge=0, le=100_000, description="the browser's accuracy estimate")


class MediaOut(BaseModel):
    """A media item with its evidence metadata and short-lived download URLs."""

    media_id: UUID
    sha256: str
    filename: str | None
    content_type: str
    kind: Kind | None
    size_bytes: int
    width: int | None
    height: int | None
    captured_at: datetime | None = Field(description="from EXIF, when it says")
    latitude: float | None = Field(description="from EXIF, when it says")
    longitude: float | None
    case_id: UUID | None
    report_id: UUID | None
    role: Role | None
    attached_at: datetime | None
    flags: list[str] = Field(description="failed evidence checks, for a reviewer")
    flag_texts: list[str] = Field(description="the flags in words")
    distance_m: float | None = Field(description="from where the case was reported to where the photo was taken")
    device_location: DeviceLocation | None = Field(
        None, description="where the attaching phone was (WGS-84), as its browser said"
    )
    uploaded_at: datetime
    retain_until: datetime | None = Field(description="None: kept forever")
    purged: bool
    urls: MediaUrls
    urls_expire_at: datetime | None
    restricted: Literal[False] = False


class RestrictedMediaOut(BaseModel):
    """What anyone may know of evidence they may not see: that it exists, and of which case."""

    media_id: UUID
    content_type: str
    kind: Kind | None
    case_id: UUID
    role: Role | None
    uploaded_at: datetime
    restricted: Literal[True] = True


def _device_location(row: asyncpg.Record) -> DeviceLocation | None:
    if row["device_lat"] is None:
        return None
    return DeviceLocation(lat=row["device_lat"], lng=row["device_lng"], accuracy_m=row["device_accuracy_m"])


async def _media_view(row: asyncpg.Record, objects: ObjectStore, settings: MediaSettings) -> MediaOut:
    """A media item as pages see it, with short-lived download URLs (none once purged)."""
    expires_s = settings.media_presign_get_expiry_s
    urls: MediaUrls = {}
    if row["purged_at"] is None:
        urls["original"] = await objects.presigned_get(
            row["object_key"], expires_s=expires_s, content_type=row["content_type"]
        )
        if row["public_key"]:
            urls["public"] = await objects.presigned_get(
                row["public_key"], expires_s=expires_s, content_type="image/jpeg"
            )
        if row["thumbnail_key"]:
            urls["thumbnail"] = await objects.presigned_get(
                row["thumbnail_key"], expires_s=expires_s, content_type="image/jpeg"
            )
    return MediaOut(
        media_id=row["media_id"],
        sha256=row["sha256"],
        filename=row["filename"],
        content_type=row["content_type"],
        kind=row["kind"],
        size_bytes=row["size_bytes"],
        width=row["width"],
        height=row["height"],
        captured_at=row["captured_at"],
        latitude=row["latitude"],
        longitude=row["longitude"],
        case_id=row["case_id"],
        report_id=row["report_id"],
        role=row["role"],
        attached_at=row["attached_at"],
        flags=list(row["flags"]),
        flag_texts=[domain.FLAG_TEXT[f] for f in row["flags"]],
        distance_m=row["distance_m"],
        device_location=_device_location(row),
        uploaded_at=row["uploaded_at"],
        retain_until=row["retain_until"],
        purged=row["purged_at"] is not None,
        urls=urls,
        urls_expire_at=utcnow() + timedelta(seconds=expires_s) if urls else None,
    )


def _restricted_view(row: asyncpg.Record) -> RestrictedMediaOut:
    return RestrictedMediaOut(
        media_id=row["media_id"],
        content_type=row["content_type"],
        kind=row["kind"],
        case_id=row["case_id"],
        role=row["role"],
        uploaded_at=row["uploaded_at"],
    )


@router.post("/media", status_code=201, response_model=MediaOut)
@public("residents attach photos from the H5 form without an account")
async def upload_media(file: UploadFile, request: Request):
    """Store one small photo, video or voice note; the same content is stored once and linked again."""
    runtime, objects = _context(request)
    # One byte over the limit is enough to know it is too large.
    data = await file.read(runtime.settings.media_max_bytes + 1)
    try:
        row = await workflow.store_direct(
            runtime=runtime, objects=objects, data=data, filename=file.filename, declared_type=file.content_type
        )
    except Rejection as exc:
        raise _problem(exc) from exc
    return await _media_view(row, objects, runtime.settings)


@router.get("/media/{media_id}", response_model=MediaOut | RestrictedMediaOut)
@public("an uploader holding the id sees their upload; attached media is restricted in the route")
async def get_media(media_id: UUID, request: Request, actor: OptionalActor):
    """One media item with its evidence metadata and short-lived download URLs. Until it is attached
    to a case it is its uploader's (who holds its id); then only those who may see the case see it."""
    runtime, objects = _context(request)
    async with runtime.pool.acquire() as conn:
        row = await store.find_media(conn, media_id=media_id)
    if row is None:
        raise Problem(404, "未找到", f"没有媒体 {media_id}。", kind="not-found")
    if row["case_id"] is not None and not await _may_view(runtime, actor, row["case_id"]):
        return _restricted_view(row)
    return await _media_view(row, objects, runtime.settings)


class UploadRequest(BaseModel):
    filename: str | None = Field(default=None, max_length=255)
    content_type: str = Field(max_length=100)
    size_bytes: int
    sha256: str = Field(pattern="^[0-9a-fA-F]{64}$", description="SHA-256 of the whole file, in hex")


class UploadOut(BaseModel):
    """A presigned upload: pending until completed (or rejected, with the reason, or expired)."""

    upload_id: UUID
    status: Literal["pending", "verifying", "completed", "rejected", "expired"]
    reason: str | None
    filename: str | None
    content_type: str
    size_bytes: int
    sha256: str
    media_id: UUID | None = Field(description="the stored media, once completed")
    expires_at: datetime = Field(description="when the PUT URL expires")
    complete_by: datetime


class UploadStarted(UploadOut):
    method: Literal["PUT"]
    url: str = Field(description="the presigned URL to PUT the file to")
    complete_url: str = Field(description="POST here once the file is PUT")


def _upload_view(upload: asyncpg.Record) -> UploadOut:
    return UploadOut(
        upload_id=upload["upload_id"],
        status=upload["status"],
        reason=upload["reason"],
        filename=upload["filename"],
        content_type=upload["content_type"],
        size_bytes=upload["size_bytes"],
        sha256=upload["sha256"],
        media_id=upload["media_id"],
        expires_at=upload["expires_at"],
        complete_by=upload["complete_by"],
    )


@router.post("/uploads", status_code=201, response_model=UploadStarted)
@public("residents upload large files (video) from the H5 form without an account")
async def create_upload(body: UploadRequest, request: Request):
    """Announce a large file (type, size, SHA-256) and get a presigned PUT URL for it."""
    runtime, objects = _context(request)
    try:
        upload, url = await workflow.create_upload(
            runtime=runtime,
            objects=objects,
            filename=body.filename,
            content_type=body.content_type,
            size_bytes=body.size_bytes,
            sha256=body.sha256,
        )
    except Rejection as exc:
        raise _problem(exc) from exc
    return UploadStarted(
        **_upload_view(upload).model_dump(),
        method="PUT",
        url=url,
        complete_url=f"/api/v1/uploads/{upload['upload_id']}/complete",
    )


@router.get("/uploads/{upload_id}", response_model=UploadOut)
@public("the uploader holding the id follows their presigned upload")
async def get_upload(upload_id: UUID, request: Request):
    """Where a presigned upload stands: pending, completed, rejected (with the reason) or expired."""
    runtime, _ = _context(request)
    async with runtime.pool.acquire() as conn:
        upload = await store.find_upload(conn, upload_id=upload_id)
    if upload is None:
        raise Problem(404, "未找到", f"没有上传 {upload_id}。", kind="not-found")
    return _upload_view(upload)


@router.post(
    "/uploads/{upload_id}/complete",
    status_code=201,
    response_model=MediaOut,
    responses={200: {"model": MediaOut, "description": "completed already: the media it stored"}},
)
@public("the uploader holding the id completes their presigned upload")
async def complete_upload(upload_id: UUID, request: Request, response: Response):
    """Verify the PUT object (size, SHA-256, content) and store it; only then does it count."""
    runtime, objects = _context(request)
    try:
        row, created = await workflow.complete_upload(runtime=runtime, objects=objects, upload_id=upload_id)
    except (Rejection, workflow.NotFound, workflow.Conflict, workflow.UploadClosed) as exc:
        raise _problem(exc) from exc
    if not created:
        response.status_code = 200
    return await _media_view(row, objects, runtime.settings)


class AttachRequest(BaseModel):
    media_id: UUID
    role: Literal["before", "after"]
    device_location: DeviceLocation | None = None


@router.post(
    "/cases/{case_id}/media",
    status_code=201,
    response_model=MediaOut,
    responses={200: {"model": MediaOut, "description": "attached already, in the same role"}},
)
async def attach_media(case_id: UUID, body: AttachRequest, request: Request, response: Response, actor: CurrentActor):
    """Attach media to a case as 整改前 (before) or 整改后 (after) evidence."""
    runtime, objects = _context(request)
    await _authorize_case(runtime, actor, case_id)
    try:
        where = body.device_location
        row, created = await workflow.attach_media(
            runtime=runtime,
            case_id=case_id,
            media_id=body.media_id,
            role=body.role,
            device=(where.lat, where.lng, where.accuracy_m) if where else None,
            attached_by=actor.label,
        )
    except (workflow.NotFound, workflow.Conflict, workflow.Unacceptable) as exc:
        raise _problem(exc) from exc
    if not created:
        response.status_code = 200
    return await _media_view(row, objects, runtime.settings)


class CaseMediaList(BaseModel):
    case_id: UUID
    items: list[MediaOut]


@router.get("/cases/{case_id}/media", response_model=CaseMediaList)
async def case_media(
    case_id: UUID, request: Request, actor: CurrentActor, role: Literal["before", "after"] | None = None
):
    """A case's evidence, oldest first, optionally one role only."""
    runtime, objects = _context(request)
    await _authorize_case(runtime, actor, case_id)
    async with runtime.pool.acquire() as conn:
        rows = await store.case_media(conn, case_id=case_id, role=role)
    return CaseMediaList(case_id=case_id, items=[await _media_view(r, objects, runtime.settings) for r in rows])


class CaseEvidence(BaseModel):
    case_id: UUID
    before: int = Field(description="整改前 items (photos, videos, voice notes), purged ones not counted")
    after: int = Field(description="整改后 items, purged ones not counted")
    has_after_photo: bool = Field(description="closing the case needs one")
    flagged: int = Field(description="items with failed evidence checks")


@router.get("/cases/{case_id}/evidence", response_model=CaseEvidence)
async def case_evidence(case_id: UUID, request: Request, actor: CurrentActor):
    """Whether a case has its before/after evidence; closing a case needs has_after_photo."""
    runtime, _ = _context(request)
    await _authorize_case(runtime, actor, case_id)
    async with runtime.pool.acquire() as conn:
        rows = await store.case_media(conn, case_id=case_id)
    items = workflow.evidence_items(rows)
    flagged = sum(1 for r in rows if r["flags"])
    return CaseEvidence(case_id=case_id, **domain.evidence_summary(items), flagged=flagged)


class ComparisonOut(BaseModel):
    """A 整改前后对比 image: the case's before and after photos side by side."""

    case_id: UUID
    before_media_id: UUID
    after_media_id: UUID
    object_key: str
    generated_at: datetime
    url: str = Field(description="a short-lived download URL")
    url_expires_at: datetime


async def _comparison_view(comparison: asyncpg.Record, objects: ObjectStore, settings: MediaSettings) -> ComparisonOut:
    expires_s = settings.media_presign_get_expiry_s
    return ComparisonOut(
        case_id=comparison["case_id"],
        before_media_id=comparison["before_media_id"],
        after_media_id=comparison["after_media_id"],
        object_key=comparison["object_key"],
        generated_at=comparison["generated_at"],
        url=await objects.presigned_get(comparison["object_key"], expires_s=expires_s, content_type="image/jpeg"),
        url_expires_at=utcnow() + timedelta(seconds=expires_s),
    )


@router.post(
    "/cases/{case_id}/comparison",
    status_code=201,
    response_model=ComparisonOut,
    responses={200: {"model": ComparisonOut, "description": "generated already for the same two photos"}},
)
async def generate_comparison(case_id: UUID, request: Request, response: Response, actor: CurrentActor):
    """Generate the 整改前后对比 image from the case's newest before and after photos."""
    runtime, objects = _context(request)
    await _authorize_case(runtime, actor, case_id)
    try:
        comparison, created = await workflow.generate_comparison(runtime=runtime, objects=objects, case_id=case_id)
    except workflow.Conflict as exc:
        raise _problem(exc) from exc
    if not created:
        response.status_code = 200
    return await _comparison_view(comparison, objects, runtime.settings)


@router.get("/cases/{case_id}/comparison", response_model=ComparisonOut)
async def get_comparison(case_id: UUID, request: Request, actor: CurrentActor):
    """The newest comparison image generated for a case."""
    runtime, objects = _context(request)
    await _authorize_case(runtime, actor, case_id)
    async with runtime.pool.acquire() as conn:
        comparison = await store.latest_comparison(conn, case_id=case_id)
    if comparison is None:
        raise Problem(404, "未找到", "该案件还没有生成整改前后对比图。", kind="not-found")
    return await _comparison_view(comparison, objects, runtime.settings)
