"""Intake's service functions: one path from any channel to a stored, triaged, located report
(and its event), rate limits, and replaying dispatchers' corrections into the triage model."""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID, uuid4

import asyncpg
from fastapi import Request
from pydantic import BaseModel, Field

from services.intake import store
from services.intake.domain import (
    OpenCase,
    Placement,
    client_address,
    confirmation_token,
    division_of,
    duplicate_lock_keys,
    format_case_no,
    matching_open_case,
    window_start,
)
from services.intake.settings import IntakeSettings
from services.intake.triage import TriageModel, TriageResult
from services.intake.triage_models import accepted_model
from shared.db import enqueue
from shared.events import (
    IncomingPhoto,
    ReportAttached,
    ReporterContactGiven,
    ReporterVerified,
    ReportPlace,
    ReportSubmitted,
    new_event,
    utcnow,
)
from shared.jurisdictions import County
from shared.phones import mask_phone, phone_hash, phone_token
from shared.problems import Problem
from shared.taxonomy import Taxonomy


@dataclass
class Intake:
    """What intake's routes, handlers and loops share (one per app)."""

    settings: IntakeSettings
    taxonomy: Taxonomy
    county: County
    model: TriageModel
    last_correction_id: int = 0
    corrections_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ReportAccepted(BaseModel):
    """The answer to a submitted report (POST /api/v1/reports)."""

    report_id: UUID
    case_id: UUID
    case_no: str | None = Field(
        description="the case to quote in 我要查询; None only for cases older than case numbers"
    )
    status: Literal["submitted", "attached"] = Field(description="attached: joined an open case on the same problem")
    attached_to_case: bool
    category: str | None = Field(description="None while the grid centre decides (needs_manual_triage)")
    priority: str
    needs_manual_triage: bool
    needs_locating: bool = Field(description="only an address came: a grid worker places it on the map")
    grid_code: str | None
    village_code: str | None
    town_code: str | None
    message: str = Field(description="the notice shown to the reporter, in Simplified Chinese")


@dataclass(frozen=True)
class Accepted:
    report_id: UUID
    case_id: UUID
    case_no: str | None  # None only for a case first reported before case numbers existed
    attached: bool
    category: str | None
    priority: str
    triage: TriageResult | None
    placement: Placement
    distance_m: float | None = None

    def answer(self) -> ReportAccepted:
        """The reporter's answer, in Simplified Chinese where it is shown to people."""
        if self.attached:
            notice = (
                f"该问题已有人反映，您的反映已并入案件 {self.case_no}，"
                "我们会一并处理，您可凭案件编号和手机号在“我要查询”跟踪进度。"
            )
        elif self.placement.needs_locating:
            notice = f"已受理，案件编号 {self.case_no}。网格员将根据您填写的地址核实位置。"
        else:
            notice = f"已受理，案件编号 {self.case_no}。"
        grid = self.placement.grid
        return ReportAccepted(
            report_id=self.report_id,
            case_id=self.case_id,
            case_no=self.case_no,
            status="attached" if self.attached else "submitted",
            attached_to_case=self.attached,
            category=self.category,
            priority=self.priority,
            needs_manual_triage=bool(self.triage and self.triage.needs_manual_triage),
            needs_locating=self.placement.needs_locating,
            grid_code=grid.grid_code if grid else None,
            village_code=grid.village_code if grid else None,
            town_code=grid.town_code if grid else None,
            message=notice,
        )


def client_ip(request: Request, settings: IntakeSettings) -> str | None:
    """The client's address, through the trusted proxies' X-Forwarded-For (see `client_address`)."""
    return client_address(
        peer=request.client.host if request.client else None,
        forwarded_for=request.headers.get("x-forwarded-for"),
        trusted_proxies=settings.intake_trusted_proxies,
    )


async def check_rate_limit(
    conn: asyncpg.Connection, *, settings: IntakeSettings, ip: str | None, phone: str | None
) -> None:
    """Count this request against its IP (per minute) and phone (per hour); 429 when over.
    Refused requests count too, so hammering a limit does not reopen it."""
    now = utcnow()
    limits = []
    if ip:
        limits.append((f"ip:{ip}", window_start(now, 60), settings.intake_rate_limit_ip_per_minute, 60))
    if phone:
        # The key holds the phone's keyed hash, never the number.
        key = "phone:" + phone_hash(phone, settings.phone_hash_key).hex()
        limits.append((key, window_start(now, 3600), settings.intake_rate_limit_phone_per_hour, 3600))
    if not limits:
        return
    hits = await store.hit_rate_limits(conn, windows=[(key, start) for key, start, _, _ in limits])
    exceeded = [
        int((start + timedelta(seconds=seconds) - now).total_seconds()) + 1
        for key, start, limit, seconds in limits
        if hits[key] > limit
    ]
    if exceeded:
        raise Problem(
            429, "Too many requests", "提交过于频繁，请稍后再试。", kind="rate-limited", retry_after_s=max(exceeded)
        )


def classify(intake: Intake, *, text: str, category: str | None) -> tuple[str | None, str, TriageResult, bool]:
    """(category, priority, triage, by_triage). Every text is triaged (kept for audit and learning);
    a category the reporter chose wins over triage's. Urgency is judged from the text whoever chose
    the category: a reporter's choice says what the problem is, not whether someone is in danger."""
    result = intake.model.classify(text)
    if category is not None:
        return category, result.priority, result, False
    # Manual triage means no category is claimed: the grid centre decides (dispatch routes None there).
    return (None if result.needs_manual_triage else result.category), result.priority, result, True


async def submit_report(
    conn: asyncpg.Connection,
    *,
    intake: Intake,
    description: str,
    category: str | None,
    placement: Placement,
    input_lat: float | None,
    input_lng: float | None,
    coord_system: str | None,
    address: str | None,
    channel: str,
    reporter_phone: str | None,
    media_ids: list[UUID],
    idempotency_key: str | None = None,
    reporter_ref: str | None = None,
    open311_token: str | None = None,
    external_media: tuple[str, ...] = (),
    reporter_openid: str | None = None,
    reporter_wecom_userid: str | None = None,
    incoming_photos: tuple[IncomingPhoto, ...] = (),
    seen_at: datetime | None = None,
    reporter_group_id: str | None = None,
) -> Accepted:
    """Triage, de-duplicate, store and publish one report, inside the caller's transaction."""
    settings = intake.settings
    category, priority, triage, by_triage = classify(intake, text=description, category=category)
    report_id, now = uuid4(), utcnow()
    masked = mask_phone(reporter_phone) if reporter_phone else None

    match = None
    if category is not None and placement.lat is not None and placement.lng is not None:
        radius_deg = settings.intake_duplicate_distance_m / 111_000 * 1.5
        await store.lock_duplicates_check(
            conn,
            keys=duplicate_lock_keys(category=category, lat=placement.lat, lng=placement.lng, radius_deg=radius_deg),
        )
        since = now - timedelta(hours=settings.intake_duplicate_window_hours)
        rows = await store.find_open_cases_near(
            conn, category=category, since=since, lat=placement.lat, lng=placement.lng, radius_deg=radius_deg
        )
        candidates = [OpenCase(r["case_id"], r["case_no"], r["lat"], r["lng"], r["status"]) for r in rows]
        match = matching_open_case(
            candidates, lat=placement.lat, lng=placement.lng, max_distance_m=settings.intake_duplicate_distance_m
        )
    if match:
        case, distance = match
        case_id, case_no = case.case_id, case.case_no
    else:
        case_id, distance = uuid4(), None
        case_no = format_case_no(now, await store.next_case_seq(conn))

    grid = placement.grid
    place = ReportPlace(
        division_code=division_of(grid.village_code if grid else None, instance_code=settings.jurisdiction_code),
        town_code=grid.town_code if grid else None,
        village_code=grid.village_code if grid else None,
        grid_code=grid.grid_code if grid else None,
        lat=placement.lat,
        lng=placement.lng,
    )
    photo_urls = [m for m in external_media if m.startswith(("https://", "http://"))]
    encrypted_phone = phone_token(reporter_phone, settings.phone_keys()) if reporter_phone else None
    await store.insert_report(
        conn,
        report_id=report_id,
        case_id=case_id,
        case_no=case_no,
        description=description,
        category=category,
        lat=placement.lat,
        lng=placement.lng,
        input_lat=input_lat,
        input_lng=input_lng,
        coord_system=coord_system,
        address=address,
        needs_locating=placement.needs_locating,
        grid_code=grid.grid_code if grid else None,
        village_code=grid.village_code if grid else None,
        town_code=grid.town_code if grid else None,
        priority=priority,
        confidence=triage.confidence if by_triage else None,
        category_source="triage" if by_triage else "reporter",
        needs_manual_triage=by_triage and triage.needs_manual_triage,
        triage=triage.as_dict(),
        triage_model_version=triage.model_version,
        attached_to_case=match is not None,
        duplicate_distance_m=distance,
        channel=channel,
        reporter_phone_hash=phone_hash(reporter_phone, settings.phone_hash_key) if reporter_phone else None,
        reporter_phone_token=encrypted_phone,
        reporter_phone_masked=masked,
        reporter_ref=reporter_ref,
        media_ids=media_ids,
        external_media=list(external_media),
        idempotency_key=idempotency_key,
        open311_token=open311_token,
        status=match[0].status if match else "submitted",
        submitted_at=now,
    )
    payload: ReportAttached | ReportSubmitted
    if match:
        if category is None:  # cannot happen: duplicates are only looked for within a category (above)
            raise RuntimeError(f"report {report_id} matched case {case_id} without a category")
        payload = ReportAttached(
            report_id=report_id,
            case_id=case_id,
            case_no=case_no,
            description=description,
            category=category,
            lat=placement.lat,
            lng=placement.lng,
            distance_m=round(match[1], 1),
            channel=channel,
            reporter_phone_masked=masked,
            media_ids=media_ids,
            submitted_at=now,
            incoming_photos=list(incoming_photos),
            photo_urls=photo_urls,
        )
    else:
        payload = ReportSubmitted(
            report_id=report_id,
            case_id=case_id,
            description=description,
            category=category,
            place=place,
            channel=channel,
            reporter_phone_masked=masked,
            media_ids=media_ids,
            incoming_photos=list(incoming_photos),
            photo_urls=photo_urls,
            submitted_at=now,
            seen_at=seen_at,
            priority=priority,
            confidence=round(triage.confidence, 4) if by_triage else None,
            category_source="triage" if by_triage else "reporter",
            needs_manual_triage=by_triage and triage.needs_manual_triage,
            triage_model_version=triage.model_version,
            address=address,
            needs_locating=placement.needs_locating,
            case_no=case_no,
        )
    await enqueue(
        conn,
        settings,
        new_event(
            payload,
            producer=settings.service_name,
            jurisdiction_code=place.division_code,
            key=str(case_id),
            correlation_id=report_id,
        ),
    )
    if reporter_openid or reporter_wecom_userid or encrypted_phone or reporter_group_id:
        # Only notify may reach the reporter: their contact goes on its private topic, never with the
        # report. A report attached to an open case (一事多报) gives its reporter that case to follow.
        contact = ReporterContactGiven(
            report_id=report_id,
            case_id=case_id,
            openid=reporter_openid,
            wecom_userid=reporter_wecom_userid,
            phone_encrypted=encrypted_phone,
            attached=match is not None,
            confirm_token=confirmation_token(report_id, key=settings.phone_hash_key),
            group_id=reporter_group_id,  # a WeCom group's @-bot report: the answers go back to that group
            case_no=case_no,
        )
        await enqueue(
            conn,
            settings,
            new_event(
                contact,
                producer=settings.service_name,
                jurisdiction_code=place.division_code,
                key=str(case_id),
                correlation_id=report_id,
            ),
        )
    if reporter_phone and await store.is_phone_verified(
        conn, phone_hash=phone_hash(reporter_phone, settings.phone_hash_key)
    ):
        # A phone its owner proved earlier covers the cases it opens later too, and the reports it
        # attaches to another's case (一事多报).
        await enqueue_reporter_verified(
            conn,
            settings,
            hashed=phone_hash(reporter_phone, settings.phone_hash_key),
            case_ids=[] if match else [case_id],
            report_ids=[report_id],
            at=now,
        )
    return Accepted(
        report_id,
        case_id,
        case_no,
        match is not None,
        category,
        priority,
        triage if by_triage else None,
        placement,
        distance,
    )


async def enqueue_reporter_verified(
    conn: asyncpg.Connection,
    settings: IntakeSettings,
    *,
    hashed: bytes,
    case_ids: list[UUID],
    report_ids: list[UUID],
    at: datetime,
) -> None:
    """Tell notify the phone of these cases and reports is its reporter's own: their updates may go
    by SMS."""
    verified = ReporterVerified(phone_hash=hashed.hex(), case_ids=case_ids, report_ids=report_ids, verified_at=at)
    # A phone has no place: the envelope names the division this instance serves.
    event = new_event(
        verified, producer=settings.service_name, jurisdiction_code=settings.jurisdiction_code, key=hashed.hex()[:16]
    )
    await enqueue(conn, settings, event)


async def apply_new_corrections(pool: asyncpg.Pool, intake: Intake) -> int:
    """Teach the model every stored correction it has not learned yet (this replica's or another's)."""
    async with intake.corrections_lock:
        async with pool.acquire() as conn:
            rows = await store.corrections_after(conn, after_id=intake.last_correction_id)
        for row in rows:
            if row["category"] in intake.taxonomy.categories:
                intake.model.learn(text=row["text"], category=row["category"])
            intake.last_correction_id = row["id"]
        return len(rows)


async def use_accepted_model(pool: asyncpg.Pool, intake: Intake) -> bool:
    """Switch to the model the retraining job accepted last, if it is not the one in use; the
    corrections stored after it are learned again into the new model's correction memory."""
    async with pool.acquire() as conn:
        accepted = await store.accepted_triage_model(conn)
        if accepted is None or accepted["version"] == intake.model.version:
            return False
        model = await accepted_model(conn, intake.settings, intake.taxonomy)
    async with intake.corrections_lock:
        intake.model, intake.last_correction_id = model, accepted["corrections_through"]
    await apply_new_corrections(pool, intake)
    return True
