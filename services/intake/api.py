"""Intake's HTTP routes: reports, triage, corrections and the public query (我要查询)."""

import hmac
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from services.intake import privacy, store
from services.intake.captcha import data_url, new_challenge, render_png
from services.intake.domain import (
    MAX_DESCRIPTION_CHARS,
    PHONE_PATTERN,
    OutsideCounty,
    PlacedPoint,
    Placement,
    ReportIn,
    captcha_answer_hash,
    china_day_start,
    code_request_refusal,
    confirmation_token_valid,
    division_of,
    needs_captcha,
    new_query_code,
    place_point,
    place_report,
    query_code_hash,
    relocation_refusal,
)
from services.intake.reports import (
    Intake,
    ReportAccepted,
    apply_new_corrections,
    check_rate_limit,
    client_ip,
    enqueue_reporter_verified,
    submit_report,
)
from shared.db import enqueue
from shared.events import (
    IncomingPhoto,
    QueryCodeRequested,
    ReporterRated,
    ReportLocated,
    TriageCorrected,
    new_event,
    utcnow,
)
from shared.geo import CoordSystem
from shared.phones import mask_phone, phone_hash, phone_token
from shared.problems import Problem
from shared.web import CurrentActor, public

router = APIRouter(prefix="/api/v1")


class ReportOut(BaseModel):
    """A report as staff see it (and its reporter, when the same Idempotency-Key comes again)."""

    report_id: UUID
    case_id: UUID
    case_no: str | None
    status: str = Field(description="its case's status, as intake last heard it")
    attached_to_case: bool
    description: str = Field(description="what the reporter wrote")
    category: str | None
    priority: str | None
    confidence: float | None = Field(description="triage's probability of the category; None when the reporter chose")
    needs_manual_triage: bool
    triage_model_version: str | None = Field(description="the triage model that judged the text")
    department_code: str | None
    channel: str
    lat: float | None
    lng: float | None
    address: str | None
    needs_locating: bool = Field(description="only an address came: a grid worker places it on the map")
    grid_code: str | None
    village_code: str | None
    town_code: str | None
    reporter_phone: str | None = Field(description="masked, e.g. 138****5678")
    submitted_at: datetime
    media_ids: list[UUID] = Field(default=[], description="the report's photos (media ids), as it came")


class ReportList(BaseModel):
    reports: list[ReportOut]


def _report_view(row) -> ReportOut:
    return ReportOut(
        report_id=row["report_id"],
        case_id=row["case_id"],
        case_no=row["case_no"],
        status=row["status"],
        attached_to_case=row["attached_to_case"],
        description=row["description"],
        category=row["category"],
        priority=row["priority"],
        confidence=row["confidence"],
        needs_manual_triage=row["needs_manual_triage"],
        triage_model_version=row["triage_model_version"],
        department_code=row["department_code"],
        channel=row["channel"],
        lat=row["lat"],
        lng=row["lng"],
        address=row["address"],
        needs_locating=row["needs_locating"],
        grid_code=row["grid_code"],
        village_code=row["village_code"],
        town_code=row["town_code"],
        reporter_phone=row["reporter_phone_masked"],
        submitted_at=row["submitted_at"],
        media_ids=row["media_ids"] or [],
    )


def _intake(request: Request) -> Intake:
    return request.app.state.intake


def outside_county(intake: Intake, exc: OutsideCounty) -> Problem:
    """The 422 problem+json answer to a point outside the county."""
    return Problem(
        422,
        "Location outside the county",
        f"位置不在{intake.county.name}（{intake.county.code}）辖区内，请确认定位。",
        kind="outside-county",
        reason=str(exc),
    )


def locate(intake: Intake, *, lat: float | None, lng: float | None, coord_system: CoordSystem | str) -> Placement:
    """Place a report in the county (nowhere yet when it has no point), or answer 422 when it is outside."""
    try:
        return place_report(lat=lat, lng=lng, coord_system=coord_system, county=intake.county)
    except OutsideCounty as exc:
        raise outside_county(intake, exc) from exc


def point_in_county(intake: Intake, *, lat: float, lng: float, coord_system: CoordSystem | str) -> PlacedPoint:
    """Place a point in the county, or answer 422 when it is outside."""
    try:
        return place_point(lat=lat, lng=lng, coord_system=coord_system, county=intake.county)
    except OutsideCounty as exc:
        raise outside_county(intake, exc) from exc


async def read_report(request: Request, settings) -> tuple[ReportIn, list[tuple[bytes, str | None, str | None]]]:
    """The report of a JSON body (photos already uploaded to media, by id) or of a multipart form
    whose `photos` files come along; invalid input answers 422 like any other body."""
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_files=settings.intake_max_photos, max_fields=50)
            photos = [f for f in form.getlist("photos") if isinstance(f, UploadFile)]
            fields = {k: v for k, v in form.multi_items() if k not in ("photos", "media_ids")}
            report = ReportIn.model_validate({**fields, "media_ids": form.getlist("media_ids")})
            files = [(await f.read(settings.media_image_max_bytes + 1), f.filename, f.content_type) for f in photos]
        else:
            report, files = ReportIn.model_validate_json(await request.body()), []
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None
    if any(len(data) > settings.media_image_max_bytes for data, _, _ in files):
        raise Problem(
            413,
            "Photo too large",
            f"每张照片不超过 {settings.media_image_max_bytes // (1024 * 1024)} MB。",
            kind="photo-too-large",
        )
    if any(not data for data, _, _ in files):
        raise Problem(422, "Empty photo", "上传的照片是空文件。", kind="empty-photo")
    return report, files


@router.post(
    "/reports",
    status_code=201,
    response_model=ReportAccepted,
    responses={200: {"model": ReportOut, "description": "the same Idempotency-Key again: the report it made"}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": ReportIn.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            **ReportIn.model_json_schema()["properties"],
                            "photos": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        },
                    }
                },
            }
        }
    },
)
@public("residents report from the H5 form and apps without an account; limited per IP and phone")
async def post_report(request: Request, idempotency_key: str | None = Header(default=None, max_length=200)):
    """Accept a report: it and its event are committed together before we answer."""
    intake, pool = _intake(request), request.app.state.runtime.pool
    report, files = await read_report(request, intake.settings)
    if report.category is not None and report.category not in intake.taxonomy.categories:
        raise Problem(
            422, "Unknown category", f"'{report.category}' is not a category of the taxonomy.", kind="unknown-category"
        )
    placement = locate(intake, lat=report.lat, lng=report.lng, coord_system=report.coord_system)
    async with pool.acquire() as conn:
        if idempotency_key:
            existing = await store.find_report_by_idempotency_key(conn, key=idempotency_key)
            if existing:
                return _repeated_report(intake, report, existing)
        await check_rate_limit(
            conn,
            settings=intake.settings,
            ip=client_ip(request, intake.settings),
            phone=report.reporter_phone,
        )
        # Photos are parked before the report commits, so the event never names a missing object.
        incoming = []
        for data, filename, content_type in files:
            key = str(uuid4())
            await request.app.state.incoming.put(key, data, content_type or "application/octet-stream")
            incoming.append(
                IncomingPhoto(object_key=key, filename=filename, content_type=content_type, size_bytes=len(data))
            )
        try:
            async with conn.transaction():
                accepted = await submit_report(
                    conn,
                    intake=intake,
                    description=report.description,
                    category=report.category,
                    placement=placement,
                    input_lat=report.lat,
                    input_lng=report.lng,
                    coord_system=report.coord_system.value if report.lat is not None else None,
                    address=report.address,
                    channel=report.channel.value,
                    reporter_phone=report.reporter_phone,
                    media_ids=report.media_ids,
                    idempotency_key=idempotency_key,
                    incoming_photos=tuple(incoming),
                    seen_at=report.seen_at,
                )
        except asyncpg.UniqueViolationError as exc:
            # The same key raced in on another connection (a retry while the first try was still
            # running, perhaps in another worker): answer as for any repeat, once it committed.
            if not idempotency_key or exc.constraint_name != "reports_idempotency_key_key":
                raise
            existing = await store.find_report_by_idempotency_key(conn, key=idempotency_key)
            if existing is None:
                raise
            return _repeated_report(intake, report, existing)
    return accepted.answer()


def _repeated_report(intake: Intake, report: ReportIn, existing) -> JSONResponse:
    """A retry of the same report gets its answer again; a key reused for another report must not
    show someone else's (keys are chosen by clients, and may be guessed)."""
    phone = report.reporter_phone
    same = existing["description"] == report.description and existing["reporter_phone_hash"] == (
        phone_hash(phone, intake.settings.phone_hash_key) if phone else None
    )
    if not same:
        raise Problem(
            422,
            "Idempotency-Key reused",
            "这个 Idempotency-Key 已用于另一条反映；每条新反映请使用新的键。",
            kind="idempotency-key-reused",
        )
    return JSONResponse(_report_view(existing).model_dump(mode="json"), status_code=200)


@router.get("/reports/{report_id}", response_model=ReportOut)
async def get_report(report_id: UUID, request: Request, actor: CurrentActor):
    """One report as staff see it (masked phone, address, exact point): the read is recorded."""
    async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
        row = await store.find_report(conn, report_id=report_id)
        if row is None:
            raise Problem(404, "Report not found", f"No report {report_id}.", kind="not-found")
        await privacy.record_reads(conn, actor=actor, route="GET /api/v1/reports/{report_id}", rows=[row])
    return _report_view(row)


# Who may place a report on the map: the grid worker first, and the centres above them.
LOCATING_ROLES = ("grid_worker", "dispatcher", "supervisor", "admin")


@router.get("/reports-to-locate", response_model=ReportList)
async def list_reports_to_locate(request: Request, actor: CurrentActor):
    """Reports that came with only an address, for the grid workers (and centres) of the actor's division."""
    if actor.role not in LOCATING_ROLES:
        raise Problem(403, "Forbidden", f"A {actor.role} does not locate reports.", kind="forbidden")
    intake = _intake(request)
    # The county sees everything; a town, village or grid sees its own and the not yet placed.
    prefix = "" if actor.jurisdiction_code == intake.settings.jurisdiction_code else actor.jurisdiction_code
    async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
        rows = await store.reports_to_locate(conn, code_prefix=prefix)
        await privacy.record_reads(conn, actor=actor, route="GET /api/v1/reports-to-locate", rows=rows)
    return ReportList(reports=[_report_view(r) for r in rows])


# Who may read the audit of personal-data reads: supervisors (纪检/督查) and admins.
AUDIT_ROLES = ("supervisor", "admin")


class PersonalDataRead(BaseModel):
    actor: str = Field(description="role:subject of the staff member shown the data")
    role: str
    jurisdiction_code: str = Field(description="the reader's division")
    report_id: UUID
    case_id: UUID
    route: str = Field(description="the API route that showed it")
    read_at: datetime


class PersonalDataReads(BaseModel):
    reads: list[PersonalDataRead]


@router.get("/personal-data-reads", response_model=PersonalDataReads)
async def list_personal_data_reads(
    request: Request,
    actor: CurrentActor,
    case_id: UUID | None = None,
    reader: str | None = Query(default=None, max_length=200, description="role:subject of one reader"),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
):
    """PIPL audit: who was shown which reporter's personal data, when (newest first). Supervisors
    see the reads of staff in their division and below; admins and the county see all."""
    if actor.role not in AUDIT_ROLES:
        raise Problem(403, "Forbidden", "只有督查人员和管理员可以查看个人信息查阅记录。", kind="forbidden")
    county = _intake(request).settings.jurisdiction_code
    prefix = "" if actor.role == "admin" or actor.jurisdiction_code == county else actor.jurisdiction_code
    async with request.app.state.runtime.pool.acquire() as conn:
        rows = await store.personal_data_reads(
            conn, case_id=case_id, actor=reader, since=since, until=until, limit=limit, jurisdiction_prefix=prefix
        )
    return PersonalDataReads(reads=[PersonalDataRead(**dict(r)) for r in rows])


class LocationIn(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    coord_system: CoordSystem = CoordSystem.wgs84


@router.post("/reports/{report_id}/location", response_model=ReportOut)
async def locate_report(report_id: UUID, body: LocationIn, request: Request, actor: CurrentActor):
    """A grid worker places a report that had only an address; its case learns where it is (report.located).

    Who: a grid worker, only a report still waiting to be located and only into their own area;
    dispatchers, supervisors and admins may also correct a placed report within their jurisdiction."""
    if actor.role not in LOCATING_ROLES:
        raise Problem(403, "Forbidden", f"A {actor.role} does not locate reports.", kind="forbidden")
    intake = _intake(request)
    point = point_in_county(intake, lat=body.lat, lng=body.lng, coord_system=body.coord_system)
    grid = point.grid
    if actor.jurisdiction_code != intake.settings.jurisdiction_code and not grid.grid_code.startswith(
        actor.jurisdiction_code
    ):
        # Say where the point fell and what to do: a mis-tap is fixed on the map, a report from
        # another area is the centre's to place.
        elsewhere = intake.county.grids[grid.grid_code].name
        raise Problem(
            403,
            "Forbidden",
            f"所选位置在「{elsewhere}」，不在您负责的区域内。请在地图上重新点选；如问题确实在其他网格，请联系调度员处理。",
            kind="forbidden",
        )
    async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
        row = await store.find_report(conn, report_id=report_id, for_update=True)
        if row is None:
            raise Problem(404, "Report not found", f"No report {report_id}.", kind="not-found")
        refusal = relocation_refusal(
            role=actor.role,
            jurisdiction_code=actor.jurisdiction_code,
            county_code=intake.settings.jurisdiction_code,
            needs_locating=row["needs_locating"],
            placed_in=row["grid_code"] or row["village_code"] or row["town_code"],
        )
        if refusal:
            raise Problem(403, "Forbidden", refusal, kind="forbidden")
        now = utcnow()
        await store.set_report_location(
            conn,
            report_id=report_id,
            lat=point.lat,
            lng=point.lng,
            input_lat=body.lat,
            input_lng=body.lng,
            coord_system=body.coord_system.value,
            grid_code=grid.grid_code,
            village_code=grid.village_code,
            town_code=grid.town_code,
            at=now,
        )
        located = ReportLocated(
            report_id=report_id,
            case_id=row["case_id"],
            lat=point.lat,
            lng=point.lng,
            grid_code=grid.grid_code,
            village_code=grid.village_code,
            town_code=grid.town_code,
            located_by=actor.label,
            located_at=now,
        )
        await enqueue(
            conn,
            intake.settings,
            new_event(
                located,
                producer=intake.settings.service_name,
                jurisdiction_code=grid.village_code,
                key=str(row["case_id"]),
                correlation_id=report_id,
            ),
        )
        row = await store.find_report(conn, report_id=report_id)
    return _report_view(row)


class TriageIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_DESCRIPTION_CHARS)


class Alternative(BaseModel):
    category: str
    confidence: float


class TriageOut(BaseModel):
    """Triage's guess for a text (TriageResult.as_dict(), as stored with each report)."""

    category: str = Field(description="the best guess, also when manual triage is needed")
    category_name: str
    department: str
    priority: str = Field(description="urgent or normal")
    confidence: float = Field(description="probability of the category, 0..1")
    needs_manual_triage: bool
    urgent_cues: list[str] = Field(description="the danger, vulnerable-people and happening-now cues of an urgent text")
    alternatives: list[Alternative] = Field(description="the next best categories")
    urgency: float = Field(description="the urgency model's probability that someone is in danger now, 0..1")
    top_terms: list[str] = Field(description="the text's terms that weighed most for the category, for the dispatcher")
    model_version: str = Field(description="the triage model that judged the text")


def _triage_view(intake: Intake, text: str) -> TriageOut:
    return TriageOut.model_validate(intake.model.classify(text).as_dict())


@router.post("/triage", response_model=TriageOut)
@public("the H5 form suggests a category while the resident types; returns only the guess")
async def post_triage(body: TriageIn, request: Request):
    """Classify a text without creating anything."""
    return _triage_view(_intake(request), body.text)


class CorrectionIn(BaseModel):
    text: str | None = Field(default=None, min_length=1, max_length=MAX_DESCRIPTION_CHARS)
    report_id: UUID | None = None
    category: str = Field(max_length=64)
    priority: str | None = Field(default=None, pattern="^(urgent|normal)$")


class CorrectionOut(BaseModel):
    stored: bool
    learned: int = Field(description="corrections the model learned now, this one and any others not learned yet")
    now: TriageOut = Field(description="the text's triage after learning")


# Only people who classify cases may teach the model: a correction changes every later triage.
CORRECTING_ROLES = ("dispatcher", "supervisor", "admin")


@router.post("/triage/corrections", status_code=201, response_model=CorrectionOut)
async def post_correction(body: CorrectionIn, request: Request, actor: CurrentActor):
    """A dispatcher's correction: stored, published as triage.corrected, and learned at once."""
    if actor.role not in CORRECTING_ROLES:
        raise Problem(403, "Forbidden", f"A {actor.role} may not correct triage.", kind="forbidden")
    intake, runtime = _intake(request), request.app.state.runtime
    if body.category not in intake.taxonomy.categories:
        raise Problem(
            422, "Unknown category", f"'{body.category}' is not a category of the taxonomy.", kind="unknown-category"
        )
    async with runtime.pool.acquire() as conn, conn.transaction():
        report = await store.find_report(conn, report_id=body.report_id) if body.report_id else None
        if body.report_id and report is None:
            raise Problem(404, "Report not found", f"No report {body.report_id}.", kind="not-found")
        text = body.text or (report["description"] if report else None)
        if not text:
            raise Problem(422, "Text required", "Give the report's text or its report_id.", kind="validation-error")
        corrected = TriageCorrected(
            report_id=body.report_id,
            case_id=report["case_id"] if report else None,
            text=text,
            category=body.category,
            priority=body.priority,
            previous_category=report["category"] if report else None,
            corrected_by=actor.label,
            corrected_at=utcnow(),
        )
        event = new_event(
            corrected,
            producer=intake.settings.service_name,
            jurisdiction_code=division_of(
                report["village_code"] if report else None, instance_code=intake.settings.jurisdiction_code
            ),
            key=str(corrected.case_id or corrected.report_id or "triage"),
        )
        await store.insert_correction(
            conn,
            report_id=corrected.report_id,
            case_id=corrected.case_id,
            text=text,
            category=body.category,
            priority=body.priority,
            previous_category=corrected.previous_category,
            corrected_by=actor.label,
            corrected_at=corrected.corrected_at,
            source_event_id=event.event_id,
        )
        # Published for other consumers (scores, audit); our own consumer skips it by event id.
        await enqueue(conn, intake.settings, event)
    learned = await apply_new_corrections(runtime.pool, intake)
    return CorrectionOut(stored=True, learned=learned, now=_triage_view(intake, text))


class QueryIn(BaseModel):
    case_no: str = Field(min_length=6, max_length=40)
    phone: str = Field(pattern=PHONE_PATTERN)


class ReporterReport(BaseModel):
    submitted_at: datetime
    description: str
    reporter_phone: str | None = Field(description="masked, e.g. 138****5678")
    attached_to_case: bool


class PublicCase(BaseModel):
    """What a reporter sees of a case: its status and category, and only their own reports (oldest first)."""

    case_no: str
    status: str
    status_text: str = Field(description="the status in words, e.g. 处置中")
    category_name: str = Field(description="待分拨 while the grid centre decides")
    reports: list[ReporterReport]


class PublicCases(BaseModel):
    cases: list[PublicCase]


@router.post("/query", response_model=PublicCase)
@public("我要查询: a resident follows their case with its number and query code")
async def query_case(body: QueryIn, request: Request):
    """我要查询: a case by its number and the reporter's phone; only that reporter's own reports."""
    intake, pool = _intake(request), request.app.state.runtime.pool
    async with pool.acquire() as conn:
        await check_rate_limit(conn, settings=intake.settings, ip=client_ip(request, intake.settings), phone=body.phone)
        rows = await store.find_reports_of_reporter(
            conn, case_no=body.case_no.strip(), phone_hash=phone_hash(body.phone, intake.settings.phone_hash_key)
        )
    if not rows:
        # The same answer whether the case does not exist or is someone else's.
        raise Problem(404, "Not found", "未找到该手机号提交的此案件，请核对案件编号和手机号。", kind="not-found")
    return _public_case(intake, body.case_no.strip(), rows)


def _public_case(intake: Intake, case_no: str, rows: list) -> PublicCase:
    latest = max(rows, key=lambda r: r["submitted_at"])
    category = intake.taxonomy.categories.get(latest["category"]) if latest["category"] else None
    return PublicCase(
        case_no=case_no,
        status=latest["status"],
        status_text=STATUS_TEXT.get(latest["status"], latest["status"]),
        category_name=category.name if category else "待分拨",
        reports=[
            ReporterReport(
                submitted_at=r["submitted_at"],
                description=r["description"],
                reporter_phone=r["reporter_phone_masked"],
                attached_to_case=r["attached_to_case"],
            )
            for r in sorted(rows, key=lambda r: r["submitted_at"])
        ],
    )


@asynccontextmanager
async def _phone_query(request: Request, phone: str):
    """A connection in a transaction for a 我要查询-by-phone step, once the rate limits allow it."""
    intake = _intake(request)
    async with request.app.state.runtime.pool.acquire() as conn:
        await check_rate_limit(conn, settings=intake.settings, ip=client_ip(request, intake.settings), phone=phone)
        async with conn.transaction():
            yield conn


class CaptchaOut(BaseModel):
    captcha_id: UUID
    image: str = Field(description="the challenge as a PNG data URL, for an <img src>")
    question: str = Field(description="what to do, in Simplified Chinese")
    expires_in_s: int


@router.get("/captcha", response_model=CaptchaOut)
@public("我要查询 asks residents for this image CAPTCHA after repeated code requests; it holds no data")
async def new_captcha(request: Request):
    """A new image CAPTCHA (a small sum). Its answer goes with the next 我要查询 request and is
    checked once; only its keyed hash is stored."""
    settings = _intake(request).settings
    captcha_id = uuid4()
    text, answer = new_challenge()
    async with request.app.state.runtime.pool.acquire() as conn:
        await check_rate_limit(conn, settings=settings, ip=client_ip(request, settings), phone=None)
        await store.insert_captcha(
            conn,
            captcha_id=captcha_id,
            answer_hash=captcha_answer_hash(answer, key=settings.phone_hash_key, captcha_id=captcha_id),
            expires_at=utcnow() + timedelta(seconds=settings.intake_captcha_ttl_s),
        )
    return CaptchaOut(
        captcha_id=captcha_id,
        image=data_url(render_png(text)),
        question="请计算图中算式，填写结果",
        expires_in_s=settings.intake_captcha_ttl_s,
    )


class CaptchaAnswer(BaseModel):
    """Needed only once 我要查询 answers kind captcha-required."""

    captcha_id: UUID | None = None
    captcha_answer: str | None = Field(default=None, max_length=10)


async def _require_captcha_when_due(request: Request, *, body: CaptchaAnswer, hashed: bytes, ip: str | None) -> None:
    """After repeated attempts from this address or for this phone, the request must carry a solved
    CAPTCHA (403 captcha-required otherwise; the page then shows one). Honest residents, who ask
    for one code and type it, never see it."""
    settings = _intake(request).settings
    since = utcnow() - timedelta(seconds=settings.intake_captcha_window_s)
    # No transaction: a CAPTCHA is spent by its check even when the answer is wrong and we refuse,
    # so each one gets a single guess.
    async with request.app.state.runtime.pool.acquire() as conn:
        from_ip, for_phone = await store.attempts_since(conn, phone_hash=hashed, ip=ip, since=since)
        if not needs_captcha(
            attempts_from_ip=from_ip,
            attempts_for_phone=for_phone,
            ip_threshold=settings.intake_captcha_after_attempts_per_ip,
            phone_threshold=settings.intake_captcha_after_attempts_per_phone,
        ):
            return
        if body.captcha_id is None or not body.captcha_answer:
            raise Problem(403, "CAPTCHA required", "操作次数较多，请先填写图形验证码再提交。", kind="captcha-required")
        stored = await store.use_captcha(conn, captcha_id=body.captcha_id, now=utcnow())
    given = captcha_answer_hash(body.captcha_answer, key=settings.phone_hash_key, captcha_id=body.captcha_id)
    if stored is None or not hmac.compare_digest(stored, given):
        raise Problem(
            403, "CAPTCHA required", "图形验证码错误或已过期，请看新的图片重新填写。", kind="captcha-required"
        )


class CodeRequestIn(CaptchaAnswer):
    phone: str = Field(pattern=PHONE_PATTERN)


class Notice(BaseModel):
    message: str = Field(description="shown to the resident, in Simplified Chinese")


@router.post("/query/codes", status_code=202, response_model=Notice)
@public("我要查询 by phone: texts a one-time code; cooldown, daily cap, SMS budget, CAPTCHA when repeated")
async def request_query_code(body: CodeRequestIn, request: Request):
    """我要查询 by phone, step 1: a one-time code is texted (through notify) to a phone that reported.
    Every phone is limited alike (cooldown, daily cap, the service's hourly SMS budget, a CAPTCHA
    after repeated attempts), so neither the limits nor the answer tell whether it has reports."""
    settings = _intake(request).settings
    hashed = phone_hash(body.phone, settings.phone_hash_key)
    ip = client_ip(request, settings)
    async with _phone_query(request, body.phone) as conn:
        await _refuse_code_when_due(conn, settings, hashed=hashed)
    # Only then the CAPTCHA, so a resident told to wait does not lose the one they solved.
    await _require_captcha_when_due(request, body=body, hashed=hashed, ip=ip)
    async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
        # Again, under the budget's lock (held to the commit): concurrent requests cannot both pass.
        await _refuse_code_when_due(conn, settings, hashed=hashed)
        await store.record_query_attempt(conn, kind="code", phone_hash=hashed, ip=ip)
        if await store.has_reports_from(conn, phone_hash=hashed):
            request_id, code = uuid4(), new_query_code()
            expires_at = utcnow() + timedelta(seconds=settings.intake_query_code_ttl_s)
            await store.insert_query_code(
                conn,
                request_id=request_id,
                phone_hash=hashed,
                expires_at=expires_at,
                code_hash=query_code_hash(code, key=settings.phone_hash_key, request_id=request_id),
            )
            requested = QueryCodeRequested(
                request_id=request_id,
                phone_masked=mask_phone(body.phone),
                code=code,
                expires_at=expires_at,
                phone_encrypted=phone_token(body.phone, settings.phone_keys()),
            )
            await enqueue(
                conn,
                settings,
                new_event(
                    # A phone has no place: the envelope names the division this instance serves.
                    requested,
                    producer=settings.service_name,
                    jurisdiction_code=settings.jurisdiction_code,
                    key=hashed.hex()[:16],
                ),
            )
    # The same answer whether or not the phone ever reported.
    return Notice(
        message=f"如该手机号提交过反映，验证码已通过短信发送，{settings.intake_query_code_ttl_s // 60}分钟内有效。"
    )


async def _refuse_code_when_due(conn, settings, *, hashed: bytes) -> None:
    """429 when this phone must wait (cooldown, daily cap) or the service's SMS budget is spent."""
    now = utcnow()
    texted = await store.codes_texted_since(conn, since=now - timedelta(hours=1))  # takes the lock
    mine = await store.code_requests_of_phone(conn, phone_hash=hashed, since=china_day_start(now))
    refusal = code_request_refusal(
        now=now,
        last_request_at=mine["last_at"],
        requests_today=mine["since_count"],
        texted_last_hour=texted["n"],
        oldest_texted_last_hour=texted["oldest"],
        cooldown_s=settings.intake_query_code_cooldown_s,
        daily_cap=settings.intake_query_code_daily_cap,
        hourly_budget=settings.intake_sms_budget_per_hour,
    )
    if refusal is not None:
        raise Problem(
            429, "Too many code requests", refusal.detail, kind=refusal.kind, retry_after_s=refusal.retry_after_s
        )


class PhoneQueryIn(CaptchaAnswer):
    phone: str = Field(pattern=PHONE_PATTERN)
    code: str = Field(pattern=r"^\d{6}$")


@router.post("/query/by-phone", response_model=PublicCases)
@public("我要查询 by phone: needs the texted one-time code")
async def query_by_phone(body: PhoneQueryIn, request: Request):
    """我要查询 by phone, step 2: with the texted code, the reporter's own cases and reports. A right
    code also proves the phone is the reporter's: from then on its cases' updates may go by SMS."""
    settings = _intake(request).settings
    hashed = phone_hash(body.phone, settings.phone_hash_key)
    ip = client_ip(request, settings)
    await _require_captcha_when_due(request, body=body, hashed=hashed, ip=ip)
    async with _phone_query(request, body.phone) as conn:
        row = await store.latest_query_code(conn, phone_hash=hashed, now=utcnow())
        valid = False
        if row is not None and row["attempts"] < settings.intake_query_code_max_attempts:
            expected = query_code_hash(body.code, key=settings.phone_hash_key, request_id=row["request_id"])
            valid = hmac.compare_digest(bytes(row["code_hash"]), expected)
        if row is not None:
            await store.count_query_attempt(conn, request_id=row["request_id"], used_at=utcnow() if valid else None)
        if valid:
            await _verify_phone(conn, settings, hashed=hashed)
        else:
            await store.record_query_attempt(conn, kind="wrong-code", phone_hash=hashed, ip=ip)
        rows = await store.reports_from(conn, phone_hash=hashed) if valid else []
    if not valid:  # the attempt is counted (committed) before the refusal
        raise Problem(403, "Invalid code", "验证码错误或已过期，请重新获取。", kind="invalid-code")
    cases: dict[str, list] = {}
    for r in rows:
        cases.setdefault(r["case_no"], []).append(r)
    return PublicCases(cases=[_public_case(_intake(request), case_no, reports) for case_no, reports in cases.items()])


async def _verify_phone(conn, settings, *, hashed: bytes) -> None:
    """The code was texted to this phone and typed back: its owner is the reporter. Notify hears it
    (reporter.verified, with the cases the phone opened) and may then text those cases' updates."""
    now = utcnow()
    await store.mark_phone_verified(conn, phone_hash=hashed, at=now)
    case_ids = await store.cases_opened_by(conn, phone_hash=hashed)
    report_ids = await store.reports_made_by(conn, phone_hash=hashed)
    if case_ids or report_ids:
        await enqueue_reporter_verified(conn, settings, hashed=hashed, case_ids=case_ids, report_ids=report_ids, at=now)


class ConfirmationIn(BaseModel):
    report_id: UUID
    token: str = Field(min_length=16, max_length=128, description="the secret of the link in the 回访 message")
    solved: bool = Field(True, description="true: 问题已解决 (满意); false: 仍未解决 (the case is handled again)")


class ConfirmationOut(BaseModel):
    case_no: str | None
    message: str


@router.post("/confirmations", status_code=202, response_model=ConfirmationOut)
@public("办结确认: the reporter's one tap on the link in their 回访 message, whose secret is bound to their report")
async def confirm_resolution(body: ConfirmationIn, request: Request):
    """The reporter confirms (or denies) the 办结 of their case with one tap: dispatch takes it as
    the reporter's 回访 answer (reporter.rated), so the case counts as verified — or is handled
    again. Only the link sent to that report's reporter confirms; only a case waiting for its
    回访 (办结, not yet verified) can be confirmed. Without a confirmation the case is verified
    automatically after the configured days."""
    intake = _intake(request)
    settings = intake.settings
    async with request.app.state.runtime.pool.acquire() as conn:
        await check_rate_limit(conn, settings=settings, ip=client_ip(request, settings), phone=None)
        async with conn.transaction():
            row = await store.find_report(conn, report_id=body.report_id)
            if row is None or not confirmation_token_valid(body.report_id, body.token, key=settings.phone_hash_key):
                # The same answer for a report that does not exist: a guess learns nothing.
                raise Problem(
                    403,
                    "Not the reporter",
                    "只有反映人本人可以确认办结：此确认链接与该反映记录不符，请使用回访消息中发给您的链接。",
                    kind="not-reporter",
                )
            if row["status"] != "resolved":
                status = STATUS_TEXT.get(row["status"], row["status"])
                raise Problem(
                    409,
                    "Not awaiting confirmation",
                    f"案件当前状态为「{status}」，不是待确认的办结，无需确认。",
                    kind="not-awaiting-confirmation",
                )
            rated = ReporterRated(
                report_id=row["report_id"],
                case_id=row["case_id"],
                rating="satisfied" if body.solved else "dissatisfied",
                channel=row["channel"],
                rated_at=utcnow(),
            )
            division = row["village_code"] or row["town_code"] or settings.jurisdiction_code
            await enqueue(
                conn,
                settings,
                new_event(rated, producer=settings.service_name, jurisdiction_code=division, key=str(row["case_id"])),
            )
    message = "感谢确认，问题已解决。" if body.solved else "已收到，问题仍未解决：案件将重新办理。"
    return ConfirmationOut(case_no=row["case_no"], message=message)


STATUS_TEXT = {
    "submitted": "已受理",
    "triaged": "待派单",
    "dispatched": "已派单",
    "acknowledged": "已接单",
    "in_progress": "处置中",
    "returned": "退回重派",
    "escalated": "已上报",
    "resolved": "已办结待核查",
    "verified": "已核查",
    "closed": "已办结",
    "cancelled": "已撤销",
    "merged": "已合并",
}


class LocatedPoint(BaseModel):
    """Where a point is: its grid, village and town, and the grid's worker (网格员)."""

    lat: float
    lng: float
    grid_code: str
    grid_name: str
    village_code: str
    village_name: str
    town_code: str
    town_name: str
    grid_worker: str


@router.get("/locate", response_model=LocatedPoint)
@public("the H5 form shows the resident which grid their point is in; no personal data")
async def locate_point(
    request: Request,
    lat: float = Query(ge=-90, le=90),
    lng: float = Query(ge=-180, le=180),
    coord_system: CoordSystem = CoordSystem.wgs84,
):
    """Which grid, village and town a point is in (the H5 form shows it before submitting)."""
    intake = _intake(request)
    async with request.app.state.runtime.pool.acquire() as conn:
        await check_rate_limit(conn, settings=intake.settings, ip=client_ip(request, intake.settings), phone=None)
    point = point_in_county(intake, lat=lat, lng=lng, coord_system=coord_system)
    grid = intake.county.grids[point.grid.grid_code]
    village = intake.county.villages[grid.village_code]
    town = intake.county.towns[grid.town_code]
    return LocatedPoint(
        lat=point.lat,
        lng=point.lng,
        grid_code=grid.code,
        grid_name=grid.name,
        village_code=village.code,
        village_name=village.name,
        town_code=town.code,
        town_name=town.name,
        grid_worker=grid.worker.name,
    )
