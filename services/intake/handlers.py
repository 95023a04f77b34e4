"""Intake's event handlers and background loops.

- Case events: follow each case's status, so 我要查询 and duplicate checks see the current one.
- triage.corrected: store the correction; every replica's loop teaches its model from the table.
- message.received: WeChat messages (text, image, location) from one sender in one group are
  bundled; when the sender has been quiet for the window, the bundle becomes one report. A reply
  of 1/2/3 from someone whose case waits for their 回访 is their rating (reporter.rated) instead.
"""

from datetime import timedelta
from uuid import uuid4

import asyncpg

from services.intake import store
from services.intake.domain import (
    Bundle,
    Channel,
    OutsideCounty,
    Placement,
    bundle_description,
    place_report,
    rating_reply,
)
from services.intake.reports import Intake, apply_new_corrections, submit_report, use_accepted_model
from shared.case_actions import CASE_TRANSITION_TYPES
from shared.db import enqueue
from shared.events import (
    CaseDispatched,
    CaseTransitioned,
    Event,
    MessageReceived,
    ReporterRated,
    TriageCorrected,
    new_event,
    utcnow,
)
from shared.loops import repeat_until_stopped
from shared.service import Runtime

# notify's `source` → the report channel.
MESSAGE_CHANNELS = {
    "wecom_app": Channel.wechat_group,
    "wecom_aibot": Channel.wechat_group,
    "wechat_mp": Channel.official_account,
}
# Sources whose sender id is a WeCom user id (the rest are official-account openids).
WECOM_SOURCES = ("wecom_app", "wecom_aibot")


def make_handlers(intake: Intake):
    """Handlers bound to this app's intake state."""

    async def on_case_dispatched(conn: asyncpg.Connection, event: Event) -> None:
        case = event.payload_as(CaseDispatched)
        await store.update_case_status(
            conn,
            case_id=case.case_id,
            status=case.status or "dispatched",
            department_code=case.department_code,
            at=case.dispatched_at,
        )

    async def on_case_transitioned(conn: asyncpg.Connection, event: Event) -> None:
        step = event.payload_as(CaseTransitioned)
        await store.set_case_status(conn, case_id=step.case_id, status=step.status, at=step.at)

    async def on_triage_corrected(conn: asyncpg.Connection, event: Event) -> None:
        c = event.payload_as(TriageCorrected)
        await store.insert_correction(
            conn,
            report_id=c.report_id,
            case_id=c.case_id,
            text=c.text,
            category=c.category,
            priority=c.priority,
            previous_category=c.previous_category,
            corrected_by=c.corrected_by,
            corrected_at=c.corrected_at,
            source_event_id=event.event_id,
        )

    async def on_message_received(conn: asyncpg.Connection, event: Event) -> None:
        m = event.payload_as(MessageReceived)
        if m.msg_type not in ("text", "image", "location"):
            return  # voice, video, events: not a report
        # "1/2/3" from someone whose case waits for their 回访 is the answer, not a new report.
        rating = rating_reply(m.content) if m.msg_type == "text" else None
        pending = rating and await store.awaiting_rating(conn, reporter_ref=f"{m.source}:{m.from_user}")
        if rating and pending:
            rated = ReporterRated(
                report_id=pending["report_id"],
                case_id=pending["case_id"],
                rating=rating,
                channel=pending["channel"],
                rated_at=m.sent_at,
            )
            division = pending["village_code"] or pending["town_code"] or intake.settings.jurisdiction_code
            await enqueue(
                conn,
                intake.settings,
                new_event(
                    rated, producer=intake.settings.service_name, jurisdiction_code=division, key=str(rated.case_id)
                ),
            )
            return
        # A group robot's message names its group; app and official-account messages are one-to-one.
        group_id = m.group_id or f"{m.agent_id or m.to_user}"
        await store.add_to_bundle(
            conn,
            bundle_id=uuid4(),
            channel=m.source,
            group_id=group_id,
            sender_id=m.from_user,
            at=m.sent_at,
            closes_at=m.sent_at + timedelta(seconds=intake.settings.intake_message_window_s),
            text=((m.content or "").strip() or None) if m.msg_type == "text" else None,
            # The PicUrl can be fetched by media; a bare MediaId needs the platform's token.
            media_ref=(m.pic_url or m.media_id) if m.msg_type == "image" else None,
            lat=m.lat if m.msg_type == "location" else None,
            lng=m.lng if m.msg_type == "location" else None,
            # WeChat location messages are GCJ-02 unless notify says otherwise.
            coord_system=(m.datum or "gcj02") if m.msg_type == "location" else None,
            address=m.label if m.msg_type == "location" else None,
        )

    handlers = {
        "case.dispatched": on_case_dispatched,
        "triage.corrected": on_triage_corrected,
        "message.received": on_message_received,
    }
    handlers.update({t: on_case_transitioned for t in CASE_TRANSITION_TYPES})
    return handlers


async def report_from_bundle(conn: asyncpg.Connection, *, intake: Intake, row: asyncpg.Record) -> None:
    """Turn one closed bundle into a report (inside the caller's transaction)."""
    bundle = Bundle(
        tuple(row["texts"]), tuple(row["media_refs"]), row["lat"], row["lng"], row["coord_system"], row["address"]
    )
    try:
        placement = place_report(
            lat=bundle.lat, lng=bundle.lng, coord_system=bundle.coord_system or "gcj02", county=intake.county
        )
    except OutsideCounty:
        # Nothing accepted is lost: keep the report, and let the grid worker find the place.
        placement = Placement(None, None, None, needs_locating=True)
    grid = intake.county.grid_of_group(row["group_id"])
    if placement.grid is None and grid is not None:
        # A message in a grid's own group is about that grid, even without a location message.
        placement = Placement(None, None, grid, needs_locating=True)
    accepted = await submit_report(
        conn,
        intake=intake,
        description=bundle_description(bundle),
        category=None,
        placement=placement,
        input_lat=bundle.lat,
        input_lng=bundle.lng,
        coord_system=bundle.coord_system,
        address=bundle.address,
        channel=MESSAGE_CHANNELS.get(row["channel"], Channel.wechat_group).value,
        reporter_phone=None,
        media_ids=[],
        reporter_ref=f"{row['channel']}:{row['sender_id']}",
        external_media=bundle.media_refs,
        # So notify can tell the sender how their report goes, on the channel they used.
        reporter_openid=row["sender_id"] if row["channel"] == "wechat_mp" else None,
        # Someone who @-mentioned the bot in a group is answered in that group, @-mentioned by user id.
        reporter_wecom_userid=row["sender_id"] if row["channel"] in (*WECOM_SOURCES, "wecom_group") else None,
        reporter_group_id=row["group_id"] if row["channel"] == "wecom_group" else None,
    )
    await store.close_bundle(conn, bundle_id=row["bundle_id"], report_id=accepted.report_id)


async def close_message_bundles_once(pool: asyncpg.Pool, intake: Intake) -> int:
    """Make reports of every bundle whose window has closed; returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await store.claim_due_bundles(conn, now=utcnow())
        for row in rows:
            await report_from_bundle(conn, intake=intake, row=row)
    return len(rows)


def make_loops(intake: Intake):
    """Background loops: message bundles, corrections from other replicas, rate-limit pruning."""
    settings = intake.settings

    async def bundles(runtime: Runtime) -> None:
        await repeat_until_stopped(
            runtime.stopping,
            settings.intake_message_tick_s,
            lambda: close_message_bundles_once(runtime.pool, intake),
            what="closing message bundles",
        )

    async def corrections(runtime: Runtime) -> None:
        async def step() -> None:
            await use_accepted_model(runtime.pool, intake)  # a retraining run accepted a new model
            await apply_new_corrections(runtime.pool, intake)
            async with runtime.pool.acquire() as conn:
                await store.prune_rate_limits(conn, before=utcnow() - timedelta(hours=2))
                # Attempts older than two days count for no cooldown, cap or CAPTCHA window.
                await store.prune_query_controls(conn, before=utcnow() - timedelta(days=2))

        # step returns None: always wait the interval, corrections are few.
        await repeat_until_stopped(
            runtime.stopping, settings.triage_corrections_poll_s, step, what="applying triage corrections"
        )

    return {"message_bundles": bundles, "triage_corrections": corrections}
