"""Notify's event handlers: decode → domain decides who hears what → one notification row each.

Step-specific fields (e.g. the comparison picture of case.resolved) are optional: read with
`field_of` from the payload or its `detail`, so templates keep working as producers add them.
"""

import dataclasses
from uuid import UUID, uuid5

import asyncpg

from services.notify import store
from services.notify.domain import (
    Directory,
    GridWorker,
    Group,
    Outgoing,
    ReporterContact,
    ReporterTemplates,
    field_of,
    notification_id,
)
from services.notify.reporter_messages import (
    accepted_messages,
    acknowledged_messages,
    cancelled_messages,
    comparison_messages,
    merged_messages,
    query_code_messages,
    verification_messages,
)
from services.notify.settings import NotifySettings
from services.notify.staff_commands import staff_answer_messages
from services.notify.staff_messages import (
    breached_messages,
    dispatched_messages,
    grid_worker_messages,
    notice_messages,
    resolved_messages,
    warning_messages,
)
from shared.events import (
    CaseDispatched,
    CaseTransitioned,
    DirectoryPersonSaved,
    DutyShiftAdded,
    DutyShiftRemoved,
    Event,
    MediaAttached,
    MediaComparisonReady,
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


async def numbered(conn: asyncpg.Connection, payload):
    """The payload with the case's human number filled in from notify's record when the event
    lacks it, so every message quotes the number 我要查询 takes."""
    if "case_no" in type(payload).model_fields and not payload.case_no:
        case_no = await store.case_no_of(conn, case_id=payload.case_id)
        if case_no:
            return payload.model_copy(update={"case_no": case_no})
    return payload


async def queue(conn: asyncpg.Connection, event: Event, outgoing: list[Outgoing]) -> None:
    """One pending notification per message; ids derive from the event so a redelivery adds none."""
    for out in outgoing:
        source = uuid5(event.event_id, out.part) if out.part else event.event_id
        await store.insert_notification(
            conn,
            notification_id=notification_id(
                source_id=source, template=out.template, channel=out.channel, target=out.target
            ),
            source_event_id=source,
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
    groups: list[Group] | None = None,
):
    """Handlers bound to the department directory, the SLA policy, the grids' names and workers and
    the WeCom groups' robots (read by app.py)."""
    workers = grid_workers or {}
    group_robots = {g.group_id: g.robot_key for g in groups or []}
    console_url = settings.notify_console_public_url
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
        if contact == ReporterContact() and not given.group_id:
            return
        await store.save_reporter(
            conn,
            case_id=given.case_id,
            report_id=given.report_id,
            contact=contact,
            attached=given.attached,
            confirm_token=given.confirm_token,
            group_id=given.group_id,
        )
        await store.save_case_no(conn, case_id=given.case_id, case_no=given.case_no)
        if given.case_no:  # 受理: the number to follow the case by, on the channel they reported through
            reporter = dataclasses.replace(contact, group_robot=group_robots.get(given.group_id or ""))
            await queue(
                conn,
                event,
                accepted_messages(case_no=given.case_no, reporter=reporter, at=event.occurred_at, templates=templates),
            )

    async def on_report_submitted(conn: asyncpg.Connection, event: Event) -> None:
        """Reports published before contacts moved to their private topic carried them here."""
        report = submitted_report(event)
        contact = ReporterContact(
            openid=report.reporter_openid,
            wecom_userid=report.reporter_wecom_userid,
            phone=report.reporter_phone_encrypted,
        )
        await store.save_case_no(conn, case_id=report.case_id, case_no=report.case_no)
        if contact != ReporterContact():
            await store.save_reporter(conn, case_id=report.case_id, report_id=report.report_id, contact=contact)

    async def on_case_dispatched(conn: asyncpg.Connection, event: Event) -> None:
        case = await numbered(conn, event.payload_as(CaseDispatched))
        await store.save_case_no(conn, case_id=case.case_id, case_no=case.case_no)
        codes = [case.department_code, *(c for c in case.co_department_codes if c != case.department_code)]
        duty = await store.on_duty(
            conn,
            department_codes=codes,
            division_code=case.jurisdiction_code or case.owner_code or event.jurisdiction_code,
            at=case.dispatched_at,
        )
        await queue(
            conn,
            event,
            dispatched_messages(
                case, directory=directory, sla_policy=sla_policy, places=places, duty=duty, console_url=console_url
            ),
        )
        await queue(conn, event, grid_worker_messages(case, workers=workers, directory=directory))

    # Reporters hear of their case's progress and result — every one of them: the first, those whose
    # reports were attached to it and those of cases merged into it (一事多报).
    async def on_case_acknowledged(conn: asyncpg.Connection, event: Event) -> None:
        step = await numbered(conn, event.payload_as(CaseTransitioned))
        department = step.detail.get("department_code") or step.department_code
        if department != step.department_code:
            return  # a co-handler's 接单: the reporters hear of the lead's
        for reporter in await store.get_reporters(conn, case_id=step.case_id, group_robots=group_robots):
            await queue(conn, event, acknowledged_messages(step, reporter=reporter, templates=templates))

    async def on_case_resolved(conn: asyncpg.Connection, event: Event) -> None:
        step = await numbered(conn, event.payload_as(CaseTransitioned))
        evidence = await store.evidence_counts(conn, case_id=step.case_id)
        await queue(conn, event, resolved_messages(step, directory=directory, evidence=evidence))
        followers = await store.get_reporters(
            conn, case_id=step.case_id, confirm_base_url=settings.notify_h5_base_url, group_robots=group_robots
        )
        for reporter in followers:
            await queue(conn, event, verification_messages(step, reporter=reporter, templates=templates))

    async def on_case_cancelled(conn: asyncpg.Connection, event: Event) -> None:
        """撤销, or 现场核实 that found it not so: every reporter hears why (a check that found the
        problem real changes nothing they need to hear)."""
        step = await numbered(conn, event.payload_as(CaseTransitioned))
        if step.status != "cancelled":
            return
        for reporter in await store.get_reporters(conn, case_id=step.case_id, group_robots=group_robots):
            told = cancelled_messages(
                step, reporter=reporter, found_on_site=event.type == "case.checked", templates=templates
            )
            await queue(conn, event, told)

    async def on_case_merged(conn: asyncpg.Connection, event: Event) -> None:
        """A case merged into another: its reporters follow that case from now on, and are told so."""
        step = event.payload_as(CaseTransitioned)
        into = field_of(step, "into_case_id")
        if into is None:
            return
        await store.save_merged(conn, case_id=step.case_id, into_case_id=UUID(str(into)), at=step.at)
        for reporter in await store.get_reporters(conn, case_id=step.case_id, group_robots=group_robots):
            await queue(conn, event, merged_messages(step, reporter=reporter, templates=templates))

    async def on_media_attached(conn: asyncpg.Connection, event: Event) -> None:
        media = event.payload_as(MediaAttached)
        await store.save_evidence(conn, case_id=media.case_id, media_id=media.media_id, role=media.role)

    async def on_comparison_ready(conn: asyncpg.Connection, event: Event) -> None:
        ready = event.payload_as(MediaComparisonReady)
        case_no = await store.case_no_of(conn, case_id=ready.case_id)
        if not case_no:
            return
        for reporter in await store.get_reporters(conn, case_id=ready.case_id, group_robots=group_robots):
            await queue(
                conn, event, comparison_messages(case_no=case_no, reporter=reporter, url=ready.url, templates=templates)
            )

    async def on_sla_warning(conn: asyncpg.Connection, event: Event) -> None:
        warning = await numbered(conn, event.payload_as(SlaWarning))
        now = field_of(warning, "fired_at") or utcnow()  # the time left as of the warning, not of its handling
        duty = await store.on_duty(
            conn,
            department_codes=[warning.department_code],
            division_code=warning.jurisdiction_code or warning.owner_code or event.jurisdiction_code,
            at=now,
        )
        await queue(
            conn,
            event,
            warning_messages(
                warning,
                directory=directory,
                now=now,
                duty=duty.get(warning.department_code),
                console_url=console_url,
            ),
        )

    async def on_sla_breached(conn: asyncpg.Connection, event: Event) -> None:
        breach = await numbered(conn, event.payload_as(SlaBreached))
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
        await store.save_verified_reports(conn, report_ids=verified.report_ids, verified_at=verified.verified_at)

    async def on_staff_command_answered(conn: asyncpg.Connection, event: Event) -> None:
        """Dispatch answered a staff command: show it where it was asked (the card, the group), once."""
        answer = event.payload_as(StaffCommandAnswered)
        command = await store.answer_staff_command(conn, command_id=answer.command_id)
        if command is not None:  # None: another notify's command, or answered already
            await queue(conn, event, staff_answer_messages(answer, command=command))

    async def on_person_saved(conn: asyncpg.Connection, event: Event) -> None:
        person = event.payload_as(DirectoryPersonSaved)
        await store.save_duty_person(
            conn,
            person_id=person.person_id,
            name=person.name,
            wecom_user_id=person.wecom_user_id,
            active=person.active,
            saved_at=person.saved_at,
        )

    async def on_shift_added(conn: asyncpg.Connection, event: Event) -> None:
        await store.save_duty_shift(conn, **event.payload_as(DutyShiftAdded).model_dump())

    async def on_shift_removed(conn: asyncpg.Connection, event: Event) -> None:
        await store.remove_duty_shift(conn, shift_id=event.payload_as(DutyShiftRemoved).shift_id)

    return {
        "staff.command_answered": on_staff_command_answered,
        "directory.person_saved": on_person_saved,
        "duty.shift_added": on_shift_added,
        "duty.shift_removed": on_shift_removed,
        "report.submitted": on_report_submitted,
        "reporter.contact_given": on_reporter_contact_given,
        "reporter.verified": on_reporter_verified,
        "case.dispatched": on_case_dispatched,
        "case.acknowledged": on_case_acknowledged,
        "case.resolved": on_case_resolved,
        "case.merged": on_case_merged,
        "case.cancelled": on_case_cancelled,
        "case.checked": on_case_cancelled,
        "case.settled": on_case_resolved,  # 即知即改: the department hears it, the reporter is asked
        "media.attached": on_media_attached,
        "media.comparison_ready": on_comparison_ready,
        "sla.warning": on_sla_warning,
        "sla.breached": on_sla_breached,
        "sla.notice_issued": on_sla_notice_issued,
        "query.code_requested": on_query_code_requested,
    }
