"""The case state machine (信息收集—交办转办—执行处置—信息反馈—考核评价) as pure rules.

A command (action + actor + arguments) against a case's current state either yields one
`Transition` — the new status and what it records — or raises `IllegalTransition` (409) or
`Forbidden` (403). Nothing here does I/O; handlers store the transition and emit its event.
"""

from dataclasses import dataclass, field, replace
from typing import Any

from shared.auth import Actor

# Statuses in which the problem is still being worked on (not yet resolved).
OPEN = ("triaged", "dispatched", "acknowledged", "in_progress", "returned")

# action -> (statuses it may start from, status it leads to; None keeps the status)
ACTIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "dispatch": (("triaged", "returned"), "dispatched"),
    "acknowledge": (("dispatched", "acknowledged", "in_progress"), None),  # lead moves it; co-handlers record
    "start": (("acknowledged",), "in_progress"),
    "submit_plan": (("acknowledged", "in_progress"), None),
    "report_part": (("acknowledged", "in_progress"), None),
    "resolve": (("acknowledged", "in_progress"), "resolved"),
    "verify": (("resolved",), "verified"),
    "close": (("verified",), "closed"),
    "return": (("dispatched", "acknowledged"), "returned"),
    "transfer": (("dispatched", "returned"), "dispatched"),
    "escalate": (("triaged", "dispatched", "returned", "acknowledged", "in_progress"), "escalated"),
    "request_extension": (("acknowledged", "in_progress"), None),
    "approve_extension": (("acknowledged", "in_progress"), None),
    "refuse_extension": (("acknowledged", "in_progress"), None),
    "await_reporter": (("acknowledged", "in_progress"), None),  # 待补充: the reporter must say more
    "reporter_replied": (("acknowledged", "in_progress"), None),
    "reclassify": (OPEN, "dispatched"),  # 改类: the right category, so the right department
    "merge": (OPEN, "merged"),
    "reopen": (("resolved", "verified", "closed"), "dispatched"),
    "cancel": (OPEN, "cancelled"),
}

# The event type each action is published as on the case topic.
# dispatch, transfer and reopen all send the case to a department: one event type, CaseDispatched.
EVENT_TYPES = {
    "dispatch": "case.dispatched", "acknowledge": "case.acknowledged", "start": "case.started",
    "submit_plan": "case.plan_submitted", "report_part": "case.part_reported", "resolve": "case.resolved",
    "verify": "case.verified", "close": "case.closed", "return": "case.returned", "transfer": "case.dispatched",
    "escalate": "case.escalated", "request_extension": "case.extension_requested",
    "approve_extension": "case.extension_approved", "refuse_extension": "case.extension_refused",
    "await_reporter": "case.awaiting_reporter", "reporter_replied": "case.reporter_replied",
    "reclassify": "case.dispatched",
    "merge": "case.merged", "reopen": "case.dispatched", "cancel": "case.cancelled",
}

# Who may do what. Handlers act only for their own department (checked in `authorize`).
ROLE_ACTIONS: dict[str, set[str]] = {
    "dispatcher": {"dispatch", "transfer", "escalate", "approve_extension", "refuse_extension", "merge", "cancel",
                   "verify", "close", "reopen", "reporter_replied", "reclassify"},
    "handler": {"acknowledge", "start", "submit_plan", "report_part", "resolve", "return", "request_extension",
                "await_reporter", "reporter_replied"},
    "grid_worker": {"verify", "reopen"},
    "supervisor": {"escalate", "approve_extension", "refuse_extension", "close", "reopen"},
    "system": {"dispatch", "escalate", "verify", "close"},
}
ROLE_ACTIONS["admin"] = set(ACTIONS)
LEAD_ONLY = {"start", "submit_plan", "resolve", "return", "request_extension"}


SYSTEM = Actor(subject="dispatch", role="system", jurisdiction_code="")


class IllegalTransition(Exception):
    """The action is not allowed in the case's current state, or its arguments are missing."""


class Forbidden(Exception):
    """The actor may not do this to this case."""


@dataclass(frozen=True)
class CaseState:
    case_id: str
    status: str
    jurisdiction_code: str
    department_code: str | None
    co_department_codes: tuple[str, ...] = ()
    acknowledged_departments: tuple[str, ...] = ()
    extension_pending: bool = False
    awaiting_reporter: bool = False
    plan_submitted: bool = False
    grid_code: str | None = None


@dataclass(frozen=True)
class Transition:
    action: str
    event_type: str
    from_status: str
    to_status: str
    reason: str | None = None
    # Changes to the case besides its status (department, co-handlers, flags…).
    changes: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


def can_see(*, actor: Actor, case: CaseState) -> bool:
    """Whether the actor may read the case: own jurisdiction, and for handlers own department."""
    # The deepest place known: a grid worker's jurisdiction is their grid (15 digits).
    if not (case.grid_code or case.jurisdiction_code).startswith(actor.jurisdiction_code):
        return False
    if actor.role == "handler":
        return actor.department_code in (case.department_code, *case.co_department_codes)
    return True


def authorize(*, actor: Actor, action: str, case: CaseState) -> None:
    """Raise Forbidden unless the actor's role, jurisdiction and department allow the action."""
    if action not in ROLE_ACTIONS.get(actor.role, set()):
        raise Forbidden(f"角色 {actor.role} 不能执行 {action}")
    if not can_see(actor=actor, case=case):
        raise Forbidden("该案件不在您的辖区或部门范围内")
    if actor.role == "handler" and action in LEAD_ONLY and actor.department_code != case.department_code:
        raise Forbidden(f"只有主办部门可以执行 {action}")


def _require(arguments: dict, name: str) -> Any:
    value = arguments.get(name)
    if value in (None, "", []):
        raise IllegalTransition(f"{name} is required")
    return value


def decide(*, case: CaseState, action: str, actor: Actor, arguments: dict | None = None) -> Transition:
    """Check an action against the case's state and build the transition it makes."""
    arguments = arguments or {}
    if action not in ACTIONS:
        raise IllegalTransition(f"unknown action {action}")
    authorize(actor=actor, action=action, case=case)
    allowed_from, target = ACTIONS[action]
    if case.status not in allowed_from:
        raise IllegalTransition(f"cannot {action} a case that is {case.status}")
    to_status = target or case.status
    changes: dict[str, Any] = {}
    detail: dict[str, Any] = {}
    reason = arguments.get("reason")

    if action in ("return", "cancel", "reopen", "request_extension", "refuse_extension", "escalate", "await_reporter"):
        reason = _require(arguments, "reason")
    if action == "acknowledge":
        department = actor.department_code if actor.role == "handler" else case.department_code
        if department in case.acknowledged_departments:
            raise IllegalTransition(f"{department} has already acknowledged")
        changes["acknowledged_departments"] = (*case.acknowledged_departments, department)
        detail["department_code"] = department
        if department == case.department_code:
            to_status = "acknowledged" if case.status == "dispatched" else case.status
    elif action == "start" and case.department_code not in case.acknowledged_departments:
        raise IllegalTransition("the lead department has not acknowledged")
    elif action == "submit_plan":
        if not case.co_department_codes:
            raise IllegalTransition("a joint plan is only for cases with co-handling departments")
        detail["plan"] = _require(arguments, "plan")
        changes["plan_submitted"] = True
    elif action == "report_part":
        if actor.department_code not in case.co_department_codes:
            raise IllegalTransition("only a co-handling department reports its part")
        detail["department_code"] = actor.department_code
        detail["result"] = _require(arguments, "result")
    elif action == "resolve":
        detail["result"] = _require(arguments, "result")
        detail["after_media_ids"] = [str(m) for m in _require(arguments, "after_media_ids")]
        if case.co_department_codes and not case.plan_submitted:
            raise IllegalTransition("a joint case needs its joint plan before it is resolved")
    elif action == "verify" and actor.role == "system":
        detail["auto"] = True  # nobody answered the 回访 in time
    elif action == "verify":
        rating = arguments.get("rating")
        if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
            raise IllegalTransition("rating must be an integer from 1 to 5")
        detail["rating"] = rating
        detail["comment"] = arguments.get("comment") or ""
    elif action == "reclassify":
        detail["category"] = _require(arguments, "category")
        detail["previous_category"] = arguments.get("previous_category")
        detail["department_code"] = _require(arguments, "department_code")
        changes.update(department_code=arguments["department_code"],
                       co_department_codes=tuple(arguments.get("co_department_codes") or ()),
                       acknowledged_departments=(), plan_submitted=False)
    elif action in ("dispatch", "transfer"):
        department = _require(arguments, "department_code")
        if action == "transfer" and department == case.department_code:
            raise IllegalTransition("transfer needs a different department")
        changes.update(department_code=department, co_department_codes=tuple(arguments.get("co_department_codes") or ()),
                       acknowledged_departments=(), plan_submitted=False)
        detail["department_code"] = department
    elif action == "escalate":
        detail["to_jurisdiction_code"] = _require(arguments, "to_jurisdiction_code")
    elif action == "request_extension":
        if case.extension_pending:
            raise IllegalTransition("an extension request is already pending")
        detail["minutes"] = _require(arguments, "minutes")
        changes["extension_pending"] = True
    elif action in ("approve_extension", "refuse_extension"):
        if not case.extension_pending:
            raise IllegalTransition("no extension request is pending")
        changes["extension_pending"] = False
        if action == "approve_extension":
            detail["minutes"] = _require(arguments, "minutes")
    elif action == "await_reporter":
        if case.awaiting_reporter:
            raise IllegalTransition("already waiting for the reporter")
        changes["awaiting_reporter"] = True
    elif action == "reporter_replied":
        if not case.awaiting_reporter:
            raise IllegalTransition("not waiting for the reporter")
        changes["awaiting_reporter"] = False
        detail["reply"] = arguments.get("result") or arguments.get("comment") or ""
    elif action == "merge":
        into = str(_require(arguments, "into_case_id"))
        if into == case.case_id:
            raise IllegalTransition("a case cannot be merged into itself")
        detail["into_case_id"] = into
    elif action == "reopen":
        changes.update(acknowledged_departments=(), plan_submitted=False, extension_pending=False,
                       awaiting_reporter=False)
    return Transition(action=action, event_type=EVENT_TYPES[action], from_status=case.status, to_status=to_status,
                      reason=reason, changes=changes, detail=detail)


def apply(case: CaseState, transition: Transition) -> CaseState:
    """The case state after a transition."""
    return replace(case, status=transition.to_status, **transition.changes)


def replay(events: list[dict]) -> dict | None:
    """Rebuild a case's current facts from its events as read from the case topic, in any order
    and with duplicates: every event carries the case's facts after it and its position `seq`,
    so the latest position wins and redelivered or late events change nothing."""
    latest: dict | None = None
    for event in events:
        payload = event["payload"]
        if latest is None or payload.get("seq", 0) > latest.get("seq", 0):
            latest = payload
    return latest
