"""Case operations: the one place a case changes — for API commands, events and timers alike.

Each function runs inside the caller's transaction: it locks the case, asks the pure rules
(`domain`, `responsibility`) what happens, stores the new state and a timeline row, and puts the
case event in the outbox, so state, history and event commit together or not at all.
"""

from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.dispatch import store
from services.dispatch.domain import (
    PHOTO_REFUSALS,
    REPLY_RATINGS,
    REPLY_WORDS,
    SYSTEM,
    CaseState,
    Context,
    Forbidden,
    IllegalTransition,
    StaffRefused,
    answers_unknown_numbers,
    apply,
    deadline_words,
    decide,
    reporter,
    staff_actor,
    staff_arguments,
    staff_done_text,
    staff_precheck,
    staff_query_text,
)
from services.dispatch.responsibility import OwnerDecision, ResponsibilityList, build_list, decide_owner, level_of
from services.dispatch.settings import DispatchSettings
from shared.auth import Actor
from shared.case_actions import ACTIONS
from shared.db import enqueue
from shared.events import (
    CaseDispatched,
    CaseFacts,
    CaseTransitioned,
    MalformedEvent,
    ReporterRated,
    ReportSubmitted,
    StaffCommand,
    StaffCommandAnswered,
    StaffPhotosSubmitted,
    TriageCorrected,
    new_event,
    utcnow,
)
from shared.sla_policy import SlaPolicy
from shared.taxonomy import Taxonomy


class CaseNotFound(Exception):
    pass


def case_state(row: asyncpg.Record) -> CaseState:
    """The part of a stored case the lifecycle rules look at."""
    return CaseState(
        case_id=str(row["case_id"]),
        status=row["status"],
        jurisdiction_code=row["jurisdiction_code"],
        department_code=row["department_code"],
        co_department_codes=tuple(row["co_department_codes"]),
        acknowledged_departments=tuple(row["acknowledged_departments"]),
        extension_pending=row["extension_pending"],
        plan_submitted=row["plan_submitted"],
        grid_code=row["grid_code"],
        awaiting_reporter=row["awaiting_reporter"],
        owner_code=row["owner_code"],
        level=row["level"],
        category=row["category"],
        priority=row["priority"],
        checked_at=row["checked_at"],
    )


def case_facts(row: asyncpg.Record | dict) -> dict:
    """A stored case as the facts every case event carries."""
    return {name: row[name] for name in CaseFacts.model_fields}


def centres(settings: DispatchSettings) -> frozenset[str]:
    return frozenset({*settings.dispatch_centres, settings.jurisdiction_code})


_built_lists: dict[tuple, ResponsibilityList] = {}


async def current_list(conn: asyncpg.Connection, *, taxonomy: Taxonomy) -> ResponsibilityList:
    """The newest version of the responsibility list (every replica reads the same table); each
    version is validated once, since a published version never changes."""
    row = await store.list_in_force(conn)
    key = (row["version"], row["created_at"])  # instances of several levels may share a process
    if key not in _built_lists:
        _built_lists[key] = build_list(taxonomy=taxonomy, document=row["document"])
    return _built_lists[key]


async def _emit(
    conn, *, settings: DispatchSettings, row, payload, event_type: str, correlation_id: UUID | None
) -> None:
    await enqueue(
        conn,
        settings,
        new_event(
            payload,
            producer=settings.service_name,
            jurisdiction_code=row["jurisdiction_code"],
            key=str(row["case_id"]),
            correlation_id=correlation_id,
            event_type=event_type,
        ),
    )


async def _dispatched(conn, *, settings, row, action: str, actor: str, reason: str | None, correlation_id) -> None:
    payload = CaseDispatched(
        **case_facts(row),
        responsibility_list_version=row["responsibility_list_version"],
        rule=row["rule"],
        dispatched_at=row["updated_at"],
        action=action,
        actor=actor,
        reason=reason,
        recurrence_of=row["recurrence_of"],
    )
    await _emit(
        conn, settings=settings, row=row, payload=payload, event_type="case.dispatched", correlation_id=correlation_id
    )


async def owns(
    conn: asyncpg.Connection,
    *,
    settings: DispatchSettings,
    taxonomy: Taxonomy,
    jurisdiction_code: str,
    category: str | None,
    above: str | None = None,
) -> OwnerDecision:
    """Which dispatch centre owns a case in this division with this category."""
    rlist = await current_list(conn, taxonomy=taxonomy)
    return decide_owner(
        rlist=rlist, centres=centres(settings), case_jurisdiction=jurisdiction_code, category=category, above=above
    )


async def open_case(
    conn: asyncpg.Connection,
    *,
    settings: DispatchSettings,
    taxonomy: Taxonomy,
    report: ReportSubmitted,
    decision: OwnerDecision,
    correlation_id: UUID | None,
) -> bool:
    """Open a case for a report this centre owns and dispatch it to the lead department."""
    now = utcnow()
    place = report.place
    category = taxonomy.categories[decision.category]
    rule, rlist_version = decision.rule, decision.list_version
    recurrence = None
    if place.lat is not None and place.lng is not None:
        recurrence = await store.find_recurrence(
            conn,
            case_id=report.case_id,
            category=category.code,
            lat=place.lat,
            lng=place.lng,
            since=now - timedelta(days=settings.recurrence_days),
            distance_m=settings.recurrence_distance_m,
        )
    created = await store.insert_case(
        conn,
        case_id=report.case_id,
        report_id=report.report_id,
        jurisdiction_code=place.division_code,
        status="dispatched",
        seq=1,
        owner_code=decision.jurisdiction_code,
        level=decision.level,
        category=category.code,
        category_name=category.name,
        priority=report.priority or category.priority,
        department_code=rule.lead,
        department_name=taxonomy.department_name(rule.lead),
        co_department_codes=list(rule.co_handlers),
        description=report.description,
        lat=place.lat,
        lng=place.lng,
        address=report.address,
        responsibility_list_version=rlist_version,
        rule=rule.describe(category.code),
        recurrence_of=recurrence,
        before_media_ids=list(report.media_ids),
        grid_code=place.grid_code,
        case_no=report.case_no,
        created_at=report.submitted_at,
        updated_at=now,
    )
    if not created:
        return False  # the same case reserved twice (a replayed report with a new event id)
    await store.append_timeline(
        conn,
        case_id=report.case_id,
        at=report.submitted_at,
        action="submit",
        status="submitted",
        actor=f"reporter:{report.channel}",
        detail={"report_id": str(report.report_id)},
    )
    detail = {
        "department_code": rule.lead,
        "co_department_codes": list(rule.co_handlers),
        "responsibility_list_version": rlist_version,
        "rule": rule.describe(category.code),
        "owner_code": decision.jurisdiction_code,
        "level": decision.level,
    }
    if recurrence:
        detail["recurrence_of"] = str(recurrence)  # 回潮: flagged for review, still handled
    await store.append_timeline(
        conn,
        case_id=report.case_id,
        at=now,
        action="dispatch",
        status="dispatched",
        actor=SYSTEM.label,
        detail=detail,
        seq=1,
    )
    row = await store.find_case(conn, case_id=report.case_id)
    await _dispatched(
        conn,
        settings=settings,
        row=row,
        action="dispatch",
        actor=SYSTEM.label,
        reason=None,
        correlation_id=correlation_id,
    )
    return True


async def receive_escalation(
    conn: asyncpg.Connection,
    *,
    settings: DispatchSettings,
    taxonomy: Taxonomy,
    escalated: CaseTransitioned,
    correlation_id: UUID | None,
) -> bool:
    """Take over a case a lower centre escalated (上报) to this one and dispatch it here."""
    if escalated.jurisdiction_code is None:  # only events from before the field existed lack it
        raise MalformedEvent(f"case {escalated.case_id} escalated without its jurisdiction_code: it cannot be placed")
    decision = await owns(
        conn,
        settings=settings,
        taxonomy=taxonomy,
        jurisdiction_code=escalated.jurisdiction_code,
        category=escalated.category,
        above=escalated.owner_code,
    )
    rule, rlist_version, now = decision.rule, decision.list_version, utcnow()
    created = await store.insert_case(
        conn,
        case_id=escalated.case_id,
        report_id=escalated.report_id,
        jurisdiction_code=escalated.jurisdiction_code,
        status="dispatched",
        seq=escalated.seq + 1,
        owner_code=settings.jurisdiction_code,
        level=level_of(settings.jurisdiction_code),
        category=escalated.category,
        category_name=escalated.category_name,
        priority=escalated.priority,
        department_code=rule.lead,
        department_name=taxonomy.department_name(rule.lead),
        co_department_codes=list(rule.co_handlers),
        description=escalated.description,
        lat=escalated.lat,
        lng=escalated.lng,
        address=escalated.address,
        grid_code=escalated.grid_code,
        case_no=escalated.case_no,
        responsibility_list_version=rlist_version,
        rule=rule.describe(escalated.category),
        created_at=escalated.at,
        updated_at=now,
    )
    if not created:
        return False
    await store.append_timeline(
        conn,
        case_id=escalated.case_id,
        at=escalated.at,
        action="escalate",
        status="escalated",
        actor=escalated.actor,
        detail={"from_owner_code": escalated.owner_code},
        seq=escalated.seq,
        reason=escalated.reason,
    )
    await store.append_timeline(
        conn,
        case_id=escalated.case_id,
        at=now,
        action="dispatch",
        status="dispatched",
        actor=SYSTEM.label,
        detail={
            "department_code": rule.lead,
            "rule": rule.describe(escalated.category),
            "responsibility_list_version": rlist_version,
            "owner_code": settings.jurisdiction_code,
        },
        seq=escalated.seq + 1,
    )
    row = await store.find_case(conn, case_id=escalated.case_id)
    await _dispatched(
        conn,
        settings=settings,
        row=row,
        action="escalate",
        actor=escalated.actor,
        reason=escalated.reason,
        correlation_id=correlation_id,
    )
    return True


async def _other_case(conn: asyncpg.Connection, *, action: str, arguments: dict) -> CaseState | None:
    """The other case an action names (merge's target), as this centre holds it."""
    spec = ACTIONS.get(action)
    name = spec.other_case if spec else None
    if not name or not arguments.get(name):
        return None
    try:
        other_id = UUID(str(arguments[name]))
    except ValueError:
        return None
    row = await store.find_case(conn, case_id=other_id)
    return case_state(row) if row else None


async def run_command(
    conn: asyncpg.Connection,
    *,
    settings: DispatchSettings,
    taxonomy: Taxonomy,
    case_id: UUID,
    action: str,
    actor: Actor,
    arguments: dict,
    correlation_id: UUID | None = None,
) -> asyncpg.Record:
    """Apply one action to a case; raises CaseNotFound, IllegalTransition or Forbidden. What the
    action does is its spec and rule (`domain.decide`); here it is only stored and published."""
    row = await store.find_case(conn, case_id=case_id, for_update=True)
    if row is None:
        raise CaseNotFound(str(case_id))
    state = case_state(row)
    now = utcnow()
    context = Context(
        rlist=await current_list(conn, taxonomy=taxonomy),
        centres=centres(settings),
        taxonomy=taxonomy,
        now=now,
        other=await _other_case(conn, action=action, arguments=arguments),
        evidence={
            str(e["media_id"]): (e["role"], tuple(e["flags"])) for e in await store.case_evidence(conn, case_id=case_id)
        },
    )
    transition = decide(case=state, action=action, actor=actor, arguments=arguments, context=context)
    after = apply(state, transition)
    changes = {
        **transition.changes,
        "status": after.status,
        "seq": row["seq"] + 1,
        "updated_at": now,
        "co_department_codes": list(after.co_department_codes),
        "acknowledged_departments": list(after.acknowledged_departments),
    }
    await store.update_case(conn, case_id=case_id, **changes)
    await store.append_timeline(
        conn,
        case_id=case_id,
        at=now,
        action=action,
        status=after.status,
        actor=actor.label,
        detail=transition.detail,
        seq=changes["seq"],
        reason=transition.reason,
    )
    row = await store.find_case(conn, case_id=case_id)
    if row is None:  # locked at the start of this transaction, so only a bug could lose it
        raise CaseNotFound(str(case_id))
    if transition.spec.corrects_triage:  # triage learns from the dispatcher's correction
        correction = TriageCorrected(
            report_id=row["report_id"],
            case_id=case_id,
            text=row["description"],
            category=row["category"],
            priority=row["priority"],
            previous_category=transition.detail.get("previous_category"),
            corrected_by=actor.label,
            corrected_at=now,
        )
        await _emit(
            conn,
            settings=settings,
            row=row,
            payload=correction,
            event_type="triage.corrected",
            correlation_id=correlation_id,
        )
    if transition.event_type == "case.dispatched":
        await _dispatched(
            conn,
            settings=settings,
            row=row,
            action=action,
            actor=actor.label,
            reason=transition.reason,
            correlation_id=correlation_id,
        )
    else:
        payload = CaseTransitioned(
            **case_facts(row),
            action=action,
            from_status=transition.from_status,
            actor=actor.label,
            reason=transition.reason,
            detail=transition.detail,
            at=now,
        )
        await _emit(
            conn,
            settings=settings,
            row=row,
            payload=payload,
            event_type=transition.event_type,
            correlation_id=correlation_id,
        )
    return row


async def reporter_rated(
    conn: asyncpg.Connection,
    *,
    settings: DispatchSettings,
    taxonomy: Taxonomy,
    rated: ReporterRated,
    correlation_id: UUID | None,
) -> None:
    """The reporter answered the 回访 question: it is the case's 回访; 不满意 sends it back (重办),
    which counts against the department like any reopening."""
    row = await store.find_case(conn, case_id=rated.case_id)
    if row is None or row["status"] != "resolved":
        return  # another centre's case, or staff already did the 回访: the answer changes nothing
    actor = reporter(rated.channel)
    words = REPLY_WORDS[rated.rating]
    steps = [("verify", {"rating": REPLY_RATINGS[rated.rating], "comment": f"群众回复：{words}"})]
    if rated.rating == "dissatisfied":
        steps.append(("reopen", {"reason": "群众回访不满意（问题仍未解决），重新办理"}))
    for action, arguments in steps:
        await run_command(
            conn,
            settings=settings,
            taxonomy=taxonomy,
            case_id=rated.case_id,
            action=action,
            actor=actor,
            arguments=arguments,
            correlation_id=correlation_id,
        )


async def auto_verify(conn: asyncpg.Connection, *, settings: DispatchSettings, taxonomy: Taxonomy) -> int:
    """Verify and close resolved cases nobody rated within the configured days (回访 timeout)."""
    before = utcnow() - timedelta(days=settings.dispatch_auto_verify_days)
    case_ids = await store.resolved_before(conn, before=before)
    for case_id in case_ids:
        for action in ("verify", "close"):
            await run_command(
                conn,
                settings=settings,
                taxonomy=taxonomy,
                case_id=case_id,
                action=action,
                actor=SYSTEM,
                arguments={"auto": True},
            )
    return len(case_ids)


# --- staff acting from WeCom ------------------------------------------------------------------------


async def _answer_staff(
    conn: asyncpg.Connection,
    *,
    settings: DispatchSettings,
    command_id: UUID,
    source: str,
    case_no: str,
    action: str,
    outcome: str,
    text: str,
    row=None,
    button_text: str | None = None,
    actor: Actor | None = None,
    correlation_id: UUID | None = None,
) -> None:
    """Tell notify how a staff command went (staff.command_answered), once."""
    await store.answer_staff_command(conn, command_id=command_id, outcome=outcome)
    answer = StaffCommandAnswered(
        command_id=command_id,
        source=source,  # type: ignore[arg-type]
        case_no=case_no,
        action=action,
        outcome=outcome,  # type: ignore[arg-type]
        text=text,
        button_text=button_text or ("未能处理" if outcome == "refused" else None),
        case_id=row["case_id"] if row else None,
        actor_name=actor.name if actor else None,
        answered_at=utcnow(),
    )
    await enqueue(
        conn,
        settings,
        new_event(
            answer,
            producer=settings.service_name,
            jurisdiction_code=row["jurisdiction_code"] if row else settings.jurisdiction_code,
            key=case_no,
            correlation_id=correlation_id or command_id,
        ),
    )


async def _apply_staff_action(
    conn: asyncpg.Connection,
    *,
    settings: DispatchSettings,
    taxonomy: Taxonomy,
    command: asyncpg.Record | StaffCommand,
    row,
    actor: Actor,
    arguments: dict,
) -> None:
    """Run the action as the HTTP route would (`run_command`) and answer with what happened."""
    action, case_no = command.action if isinstance(command, StaffCommand) else command["action"], row["case_no"]
    command_id = command.command_id if isinstance(command, StaffCommand) else command["command_id"]
    source = command.source if isinstance(command, StaffCommand) else command["source"]
    common: dict[str, Any] = {
        "settings": settings,
        "command_id": command_id,
        "source": source,
        "case_no": case_no,
        "action": action,
    }
    try:
        async with conn.transaction():  # a refusal leaves nothing of the attempt behind
            await run_command(
                conn,
                settings=settings,
                taxonomy=taxonomy,
                case_id=row["case_id"],
                action=action,
                actor=actor,
                arguments=arguments,
                correlation_id=command_id,
            )
    except (Forbidden, IllegalTransition) as exc:
        label = ACTIONS[action].label
        await _answer_staff(conn, **common, outcome="refused", text=f"未能{label}：{exc}", row=row, actor=actor)
        return
    text, button = staff_done_text(action=action, case_no=case_no, actor=actor, at=utcnow())
    await _answer_staff(conn, **common, outcome="done", text=text, button_text=button, row=row, actor=actor)


async def staff_command(
    conn: asyncpg.Connection,
    *,
    settings: DispatchSettings,
    taxonomy: Taxonomy,
    policy: SlaPolicy,
    command: StaffCommand,
) -> None:
    """A member of staff acted on a case from WeCom: as the person the directory says they are,
    through the same rules as the HTTP routes; refused politely (and nothing changes) for an
    unknown sender, another department's case, an unknown number or a state that does not allow it.
    Acted on once per command id. A 办结 first has media take in its photos (staff.photos_submitted)."""
    row = await store.find_case_by_no(conn, case_no=command.case_no, for_update=True)
    if row is None and not answers_unknown_numbers(
        settings.jurisdiction_code,
        settings.dispatch_centres,
        owner_code=await store.case_number_owner(conn, case_no=command.case_no),
    ):
        return  # another centre's case (every centre reads every command and acts on its own)
    taken = await store.take_staff_command(
        conn,
        command_id=command.command_id,
        source=command.source,
        wecom_user_id=command.wecom_user_id,
        case_no=command.case_no,
        action=command.action,
        case_id=row["case_id"] if row else None,
        text=command.text,
    )
    if not taken:
        return
    common: dict[str, Any] = {
        "settings": settings,
        "command_id": command.command_id,
        "source": command.source,
        "case_no": command.case_no,
        "action": command.action,
    }
    if row is None:
        text = f"没有找到案件 {command.case_no}，请核对案件编号（如 20261126-000042）。"
        await _answer_staff(conn, **common, outcome="refused", text=text, button_text="案件不存在")
        return
    state = case_state(row)
    person, roles = await store.staff_person(conn, wecom_user_id=command.wecom_user_id)
    try:
        actor = staff_actor(person=person, roles=roles, case=state)
        if command.action == "query":
            deadline = deadline_words(
                policy,
                status=row["status"],
                priority=row["priority"],
                level=row["level"] or "county",
                department_code=row["department_code"],
            )
            text = staff_query_text(case=dict(row), deadline=deadline)
            await _answer_staff(conn, **common, outcome="done", text=text, row=row, actor=actor)
            return
        arguments = staff_arguments(command.action, command.text)
        staff_precheck(case=state, actor=actor, action=command.action, arguments=arguments)
        if command.action == "resolve":
            if not command.photos:
                raise StaffRefused(
                    "办结需要整改后的现场照片：请在同一条消息里附上照片，再发送“办结 案件编号 办理结果”。"
                )
            await store.update_staff_command(
                conn,
                command_id=command.command_id,
                status="waiting_photos",
                photos_expected=len(command.photos),
                person_id=actor.subject,
            )
            request = StaffPhotosSubmitted(
                command_id=command.command_id,
                case_id=row["case_id"],
                report_id=row["report_id"],
                photos=command.photos,
                submitted_at=command.sent_at,
            )
            await _emit(
                conn,
                settings=settings,
                row=row,
                payload=request,
                event_type="staff.photos_submitted",
                correlation_id=command.command_id,
            )
            return
    except StaffRefused as refused:
        await _answer_staff(conn, **common, outcome="refused", text=str(refused), row=row)
        return
    await _apply_staff_action(
        conn, settings=settings, taxonomy=taxonomy, command=command, row=row, actor=actor, arguments=arguments
    )


async def staff_photo_attached(
    conn: asyncpg.Connection,
    *,
    settings: DispatchSettings,
    taxonomy: Taxonomy,
    command_id: UUID,
    media_id: UUID,
    role: str,
) -> None:
    """Media attached a photo of a 办结 from WeCom: once all of them are in, resolve with them."""
    command = await store.waiting_staff_command(conn, command_id=command_id)
    if command is None or role != "after":
        return
    command = await store.add_staff_photo(conn, command_id=command_id, media_id=media_id) or command
    if len(command["after_media_ids"]) < command["photos_expected"]:
        return
    row = await store.find_case(conn, case_id=command["case_id"], for_update=True)
    if row is None:
        return
    person, roles = await store.staff_person(conn, wecom_user_id=command["wecom_user_id"])
    try:
        actor = staff_actor(person=person, roles=roles, case=case_state(row))
    except StaffRefused as refused:  # the directory changed while media took the photos in
        await _answer_staff(
            conn,
            settings=settings,
            command_id=command_id,
            source=command["source"],
            case_no=command["case_no"],
            action="resolve",
            outcome="refused",
            text=str(refused),
            row=row,
        )
        return
    arguments = {"result": command["text"], "after_media_ids": [str(m) for m in command["after_media_ids"]]}
    await _apply_staff_action(
        conn, settings=settings, taxonomy=taxonomy, command=command, row=row, actor=actor, arguments=arguments
    )


async def staff_photo_rejected(
    conn: asyncpg.Connection, *, settings: DispatchSettings, command_id: UUID, reason: str, detail: str
) -> None:
    """Media refused a photo of a 办结 from WeCom: the case stays as it is, and they hear why."""
    command = await store.waiting_staff_command(conn, command_id=command_id)
    if command is None:
        return
    row = await store.find_case(conn, case_id=command["case_id"])
    why = PHOTO_REFUSALS.get(reason, detail or reason)
    await _answer_staff(
        conn,
        settings=settings,
        command_id=command_id,
        source=command["source"],
        case_no=command["case_no"],
        action="resolve",
        outcome="refused",
        text=f"案件 {command['case_no']} 未办结：照片未通过校验（{why}）。请重新拍摄整改后照片再发送。",
        row=row,
    )
