"""Dispatch's event handlers: decode → decide who owns it → case operation (store + emit)."""

import asyncpg

from services.dispatch import cases, store
from services.dispatch.settings import DispatchSettings
from shared.events import (
    CaseTransitioned,
    Event,
    MediaAttached,
    MediaRejected,
    ReportAttached,
    ReporterRated,
    ReportLocated,
    SlaBreached,
    SlaNoticeIssued,
    StaffCommand,
    submitted_report,
    utcnow,
)
from shared.sla_policy import SlaPolicy
from shared.taxonomy import Taxonomy


def make_handlers(*, settings: DispatchSettings, taxonomy: Taxonomy, policy: SlaPolicy):
    """Handlers bound to this instance's settings; every instance sees every event and acts on its own."""

    # Only a county centre beside town or village centres needs to know who took each number; a
    # lone centre holds every case, so nothing is written on this path for it.
    county_beside_other_centres = len(settings.jurisdiction_code) == 6 and bool(
        set(settings.dispatch_centres) - {settings.jurisdiction_code}
    )

    async def on_report_submitted(conn: asyncpg.Connection, event: Event) -> None:
        report = submitted_report(event)  # placed by intake: its division and grid are used as they are
        if not report.place.division_code.startswith(settings.jurisdiction_code[:6]):
            return  # another county's report on a shared stream
        decision = await cases.owns(
            conn,
            settings=settings,
            taxonomy=taxonomy,
            jurisdiction_code=report.place.division_code,
            category=report.category,
        )
        if report.case_no and county_beside_other_centres:  # see answers_unknown_numbers
            await store.note_case_number(conn, case_no=report.case_no, owner_code=decision.jurisdiction_code)
        if decision.jurisdiction_code != settings.jurisdiction_code:
            return  # another centre's case
        await cases.open_case(
            conn,
            settings=settings,
            taxonomy=taxonomy,
            report=report,
            decision=decision,
            correlation_id=event.correlation_id,
        )

    async def on_case_escalated(conn: asyncpg.Connection, event: Event) -> None:
        escalated = event.payload_as(CaseTransitioned)
        if escalated.detail.get("to_jurisdiction_code") == settings.jurisdiction_code:
            await cases.receive_escalation(
                conn, settings=settings, taxonomy=taxonomy, escalated=escalated, correlation_id=event.correlation_id
            )

    async def on_report_attached(conn: asyncpg.Connection, event: Event) -> None:
        attached = event.payload_as(ReportAttached)
        case = await store.find_case(conn, case_id=attached.case_id, for_update=True)
        if case is None:
            return  # another centre's case
        await store.update_case(
            conn, case_id=attached.case_id, report_count=case["report_count"] + 1, updated_at=utcnow()
        )
        await store.append_timeline(
            conn,
            case_id=attached.case_id,
            at=event.occurred_at,
            action="report_attached",
            status=case["status"],
            actor=f"reporter:{attached.channel}",
            detail={"report_id": str(attached.report_id), "distance_m": attached.distance_m},
        )

    async def on_report_located(conn: asyncpg.Connection, event: Event) -> None:
        located = event.payload_as(ReportLocated)
        case = await store.find_case(conn, case_id=located.case_id, for_update=True)
        if case is None or case["report_id"] != located.report_id:
            return  # another centre's case, or a report attached to a case already placed
        await store.update_case(
            conn,
            case_id=located.case_id,
            jurisdiction_code=located.village_code,
            grid_code=located.grid_code,
            lat=located.lat,
            lng=located.lng,
            updated_at=utcnow(),
        )
        await store.append_timeline(
            conn,
            case_id=located.case_id,
            at=located.located_at,
            action="located",
            status=case["status"],
            actor=located.located_by,
            detail={"grid_code": located.grid_code},
        )

    async def on_media_attached(conn: asyncpg.Connection, event: Event) -> None:
        """Media holds a photo for one of this centre's cases: 办结 may name it (as "after"); what
        media flagged about it is put in front of the dispatcher in the case's timeline."""
        attached = event.payload_as(MediaAttached)
        case = await store.find_case(conn, case_id=attached.case_id, for_update=True)
        if case is None:
            return  # another centre's case
        new = await store.record_evidence(
            conn,
            case_id=attached.case_id,
            media_id=attached.media_id,
            role=attached.role,
            flags=list(attached.flags),
            attached_at=attached.attached_at,
        )
        if attached.role == "after" and event.correlation_id:  # maybe a 办结 from WeCom waiting for it
            await cases.staff_photo_attached(
                conn,
                settings=settings,
                taxonomy=taxonomy,
                command_id=event.correlation_id,
                media_id=attached.media_id,
                role=attached.role,
            )
        if new and attached.flags:
            await store.append_timeline(
                conn,
                case_id=attached.case_id,
                at=attached.attached_at,
                action="evidence_flagged",
                status=case["status"],
                actor="system:media",
                detail={"media_id": str(attached.media_id), "role": attached.role, "flags": list(attached.flags)},
            )

    async def on_sla_breached(conn: asyncpg.Connection, event: Event) -> None:
        breach = event.payload_as(SlaBreached)
        owner = breach.owner_code or ""
        if owner.startswith(settings.jurisdiction_code):
            # 督办: the supervision office of this level watches its own centre's missed deadlines
            # and those of every centre below it.
            await store.record_supervised_breach(
                conn,
                event_id=event.event_id,
                case_id=breach.case_id,
                case_no=breach.case_no,
                owner_code=owner,
                jurisdiction_code=breach.jurisdiction_code,
                stage=breach.stage,
                department_code=breach.department_code,
                category=breach.category,
                due_at=breach.due_at,
                breached_at=breach.fired_at or event.occurred_at,
            )
        if owner != settings.jurisdiction_code:
            return  # a centre below owns the case
        case = await store.find_case(conn, case_id=breach.case_id, for_update=True)
        if case is None or case["overdue"]:
            return  # not this centre's case, or already flagged
        await store.update_case(conn, case_id=breach.case_id, overdue=True, updated_at=utcnow())
        await store.append_timeline(
            conn,
            case_id=breach.case_id,
            at=event.occurred_at,
            action="overdue",
            status=case["status"],
            actor="system:sla",
            detail={
                "stage": breach.stage,
                "due_at": breach.due_at.isoformat(),
                "department_code": breach.department_code,
            },
        )

    async def on_sla_notice_issued(conn: asyncpg.Connection, event: Event) -> None:
        """通报: on the supervision list here when the notice is about this centre's division or one below."""
        notice = event.payload_as(SlaNoticeIssued)
        if not event.jurisdiction_code.startswith(settings.jurisdiction_code):
            return
        await store.record_supervised_notice(
            conn,
            notice_id=notice.notice_id,
            jurisdiction_code=event.jurisdiction_code,
            department_code=notice.department_code,
            breaches=notice.breaches,
            days=notice.days,
            since=notice.since,
            issued_at=notice.issued_at,
            case_ids=list(notice.case_ids),
            case_nos=list(notice.case_nos),
        )

    async def on_reporter_rated(conn: asyncpg.Connection, event: Event) -> None:
        await cases.reporter_rated(
            conn,
            settings=settings,
            taxonomy=taxonomy,
            rated=event.payload_as(ReporterRated),
            correlation_id=event.correlation_id,
        )

    async def on_staff_command(conn: asyncpg.Connection, event: Event) -> None:
        await cases.staff_command(
            conn, settings=settings, taxonomy=taxonomy, policy=policy, command=event.payload_as(StaffCommand)
        )

    async def on_media_rejected(conn: asyncpg.Connection, event: Event) -> None:
        if event.correlation_id:  # maybe a photo of a 办结 from WeCom
            rejected = event.payload_as(MediaRejected)
            await cases.staff_photo_rejected(
                conn, settings=settings, command_id=event.correlation_id, reason=rejected.reason, detail=rejected.detail
            )

    return {
        "staff.command": on_staff_command,
        "media.rejected": on_media_rejected,
        "report.submitted": on_report_submitted,
        "reporter.rated": on_reporter_rated,
        "report.attached": on_report_attached,
        "report.located": on_report_located,
        "case.escalated": on_case_escalated,
        "sla.breached": on_sla_breached,
        "sla.notice_issued": on_sla_notice_issued,
        "media.attached": on_media_attached,
    }
