"""Notify's event handlers: decode → domain decides who hears what → one notification row each.

Step-specific fields (e.g. the comparison picture of case.resolved) are optional: read with
`field_of` from the payload or its `detail`, so templates keep working as producers add them.
"""

from uuid import UUID

import asyncpg

from services.notify import store
from services.notify.domain import (
    Directory,
    GridWorker,
    Outgoing,
    ReporterContact,
    ReporterTemplates,
    acknowledged_messages,
    breached_messages,
    dispatched_messages,
    field_of,
    grid_worker_messages,
    merged_messages,
    notice_messages,
    notification_id,
    query_code_messages,
    resolved_messages,
    staff_answer_messages,
    verification_messages,
    warning_messages,
)
from services.notify.settings import NotifySettings
from shared.events import (
    CaseDispatched,
    CaseTransitioned,
    Event,
    MediaAttached,
    QueryCodeRequested,
    ReporterContactGiven,
    ReporterVerified,
    SlaBreached,
    SlaNoticeIssued,
    SlaWarning,
    StaffCommandAnswered,
    submitted_report,
    utcnow,
)
from shared.sla_policy import SlaPolicy


async def queue(conn: asyncpg.Connection, event: Event, outgoing: list[Outgoing]) -> None:
    """One pending notification per message; ids derive from the event so a redelivery adds none."""
    for out in outgoing:
        await store.insert_notification(
            conn,
            notification_id=notification_id(
                source_id=event.event_id, template=out.template, channel=out.channel, target=out.target
            ),
            source_event_id=event.event_id,
            case_id=getattr(event.payload, "case_id", None),
            jurisdiction_code=event.jurisdiction_code,  # where the subject is: the notification events say so too
            channel=out.channel,
            target=out.target,
            template=out.template,
            body=out.body,
            digest_line=out.digest_line,
            fallback=[[message.step() for message in step] for step in out.fallback],
        )


def make_handlers(
    *,
    settings: NotifySettings,
    directory: Directory,
    sla_policy: SlaPolicy,
    places: dict[str, str] | None = None,
    grid_workers: dict[str, GridWorker] | None = None,
):
    """Handlers bound to the department directory, the SLA policy, the grids' names and workers (read by app.py)."""
    workers = grid_workers or {}
    templates = ReporterTemplates(
        wechat_template_id=settings.wechat_template_case_update,
        wechat_kind=settings.wechat_reporter_message,
        sms_template=settings.sms_template_case_update,
    )

    async def on_reporter_contact_given(conn: asyncpg.Connection, event: Event) -> None:
        given = event.payload_as(ReporterContactGiven)
        contact = ReporterContact(
            openid=given.openid,
            wecom_userid=given.wecom_userid,
            phone=given.phone_encrypted,  # stays encrypted until sent
        )
        if contact != ReporterContact():
            await store.save_reporter(
                conn,
                case_id=given.case_id,
                report_id=given.report_id,
                contact=contact,
                attached=given.attached,
                confirm_token=given.confirm_token,
            )

    async def on_report_submitted(conn: asyncpg.Connection, event: Event) -> None:
        """Reports published before contacts moved to their private topic carried them here."""
        report = submitted_report(event)
        contact = ReporterContact(
            openid=report.reporter_openid,
            wecom_userid=report.reporter_wecom_userid,
            phone=report.reporter_phone_encrypted,
        )
        if contact != ReporterContact():
            await store.save_reporter(conn, case_id=report.case_id, report_id=report.report_id, contact=contact)

    async def on_case_dispatched(conn: asyncpg.Connection, event: Event) -> None:
        case = event.payload_as(CaseDispatched)
        await queue(conn, event, dispatched_messages(case, directory=directory, sla_policy=sla_policy, places=places))
        await queue(conn, event, grid_worker_messages(case, workers=workers, directory=directory))

    # Reporters hear of their case's progress and result — every one of them: the first, those whose
    # reports were attached to it and those of cases merged into it (一事多报).
    async def on_case_acknowledged(conn: asyncpg.Connection, event: Event) -> None:
        step = event.payload_as(CaseTransitioned)
        for reporter in await store.get_reporters(conn, case_id=step.case_id):
            await queue(conn, event, acknowledged_messages(step, reporter=reporter, templates=templates))

    async def on_case_resolved(conn: asyncpg.Connection, event: Event) -> None:
        step = event.payload_as(CaseTransitioned)
        evidence = await store.evidence_counts(conn, case_id=step.case_id)
        await queue(conn, event, resolved_messages(step, directory=directory, evidence=evidence))
        followers = await store.get_reporters(conn, case_id=step.case_id, confirm_base_url=settings.notify_h5_base_url)
        for reporter in followers:
            await queue(conn, event, verification_messages(step, reporter=reporter, templates=templates))

    async def on_case_merged(conn: asyncpg.Connection, event: Event) -> None:
        """A case merged into another: its reporters follow that case from now on, and are told so."""
        step = event.payload_as(CaseTransitioned)
        into = field_of(step, "into_case_id")
        if into is None:
            return
        await store.save_merged(conn, case_id=step.case_id, into_case_id=UUID(str(into)), at=step.at)
        for reporter in await store.get_reporters(conn, case_id=step.case_id):
            await queue(conn, event, merged_messages(step, reporter=reporter, templates=templates))

    async def on_media_attached(conn: asyncpg.Connection, event: Event) -> None:
        media = event.payload_as(MediaAttached)
        await store.save_evidence(conn, case_id=media.case_id, media_id=media.media_id, role=media.role)

    async def on_sla_warning(conn: asyncpg.Connection, event: Event) -> None:
        warning = event.payload_as(SlaWarning)
        now = field_of(warning, "fired_at") or utcnow()  # the time left as of the warning, not of its handling
        await queue(conn, event, warning_messages(warning, directory=directory, now=now))

    async def on_sla_breached(conn: asyncpg.Connection, event: Event) -> None:
        breach = event.payload_as(SlaBreached)
        await queue(conn, event, breached_messages(breach, directory=directory))

    async def on_sla_notice_issued(conn: asyncpg.Connection, event: Event) -> None:
        await queue(conn, event, notice_messages(event.payload_as(SlaNoticeIssued), directory=directory))

    async def on_query_code_requested(conn: asyncpg.Connection, event: Event) -> None:
        request = event.payload_as(QueryCodeRequested)
        await queue(
            conn,
            event,
            query_code_messages(request, sms_template=settings.sms_template_query_code, now=event.occurred_at),
        )

    async def on_reporter_verified(conn: asyncpg.Connection, event: Event) -> None:
        verified = event.payload_as(ReporterVerified)
        await store.save_verified_cases(conn, case_ids=verified.case_ids, verified_at=verified.verified_at)

    async def on_staff_command_answered(conn: asyncpg.Connection, event: Event) -> None:
        """Dispatch answered a staff command: show it where it was asked (the card, the group), once."""
        answer = event.payload_as(StaffCommandAnswered)
        command = await store.answer_staff_command(conn, command_id=answer.command_id)
        if command is not None:  # None: another notify's command, or answered already
            await queue(conn, event, staff_answer_messages(answer, command=command))

    return {
        "staff.command_answered": on_staff_command_answered,
        "report.submitted": on_report_submitted,
        "reporter.contact_given": on_reporter_contact_given,
        "reporter.verified": on_reporter_verified,
        "case.dispatched": on_case_dispatched,
        "case.acknowledged": on_case_acknowledged,
        "case.resolved": on_case_resolved,
        "case.merged": on_case_merged,
        "case.settled": on_case_resolved,  # 即知即改: the department hears it, the reporter is asked
        "media.attached": on_media_attached,
        "sla.warning": on_sla_warning,
        "sla.breached": on_sla_breached,
        "sla.notice_issued": on_sla_notice_issued,
        "query.code_requested": on_query_code_requested,
    }
