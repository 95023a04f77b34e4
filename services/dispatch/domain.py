"""The case state machine (信息收集—交办转办—执行处置—信息反馈—考核评价) as pure rules.

A command (action + actor + arguments) against a case's current state either yields one
`Transition` — the new status and what it records — or raises `IllegalTransition` (409) or
`Forbidden` (403). What each action may do is its spec in `shared.case_actions`; `RULES` below adds
the checks and changes a spec cannot say as data. Nothing here does I/O: the caller passes the
responsibility list, the taxonomy and the time in a `Context`, stores the transition and emits it.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from services.dispatch.responsibility import ResponsibilityList, decide_owner
from shared.auth import Actor
from shared.case_actions import ACTIONS, FINDINGS, OPEN, ActionSpec
from shared.events import utcnow
from shared.sla_policy import SlaPolicy
from shared.taxonomy import Taxonomy

SYSTEM = Actor(subject="dispatch", role="system", jurisdiction_code="")
# A reporter's answer to the 回访 question (1 满意, 2 基本满意, 3 不满意) as the 1–5 rating staff give.
REPLY_RATINGS = {"satisfied": 5, "basic": 3, "dissatisfied": 1}
REPLY_WORDS = {"satisfied": "满意", "basic": "基本满意", "dissatisfied": "不满意"}


def reporter(channel: str) -> Actor:
    """The reporter as the actor of their own answer (never a token's role: only events carry it)."""
    return Actor(subject=channel, role="reporter", jurisdiction_code="")


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
    # Which centre owns the case and what it is: escalation and reclassification ask the list.
    owner_code: str | None = None
    level: str | None = None
    category: str | None = None
    priority: str | None = None
    checked_at: datetime | None = None  # when a grid worker checked it on site (现场核实)


@dataclass(frozen=True)
class Context:
    """What the rules may consult besides the case: the responsibility list in force, the dispatch
    centres, the taxonomy and the time. Built by the caller; nothing here fetches it."""

    rlist: ResponsibilityList | None = None
    centres: frozenset[str] = frozenset()
    taxonomy: Taxonomy | None = None
    now: datetime = field(default_factory=utcnow)
    # The case named by the spec's `other_case` argument, as this centre holds it (None: it has none).
    other: "CaseState | None" = None
    # The case's photos media holds (media.attached): media id → (before | after, media's flags).
    evidence: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    action: str
    event_type: str
    from_status: str
    to_status: str
    reason: str | None = None
    # Changes to the stored case besides its status (department, co-handlers, flags, result columns…).
    changes: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ActionSpec:
        return ACTIONS[self.action]


@dataclass(frozen=True)
class Command:
    """One action asked of one case: what a rule looks at."""

    spec: ActionSpec
    case: CaseState
    actor: Actor
    arguments: dict[str, Any]
    context: Context


@dataclass
class Outcome:
    """What a rule adds to the spec's transition."""

    changes: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    to_status: str | None = None  # when the rule, not the spec, decides the status


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
    spec = ACTIONS.get(action)
    if spec is None:
        raise IllegalTransition(f"unknown action {action}")
    if not spec.allows(actor.role):
        raise Forbidden(f"角色 {actor.role} 不能执行「{spec.label}」")
    if not can_see(actor=actor, case=case):
        raise Forbidden("该案件不在您的辖区或部门范围内")
    if actor.role == "handler" and spec.lead_only and actor.department_code != case.department_code:
        raise Forbidden(f"只有主办部门可以执行「{spec.label}」")


def available_actions(*, actor: Actor, case: CaseState) -> list[str]:
    """The actions this actor may take on this case in its current status (the console's buttons)."""
    names = []
    for name, spec in ACTIONS.items():
        if case.status not in spec.from_statuses:
            continue
        try:
            authorize(actor=actor, action=name, case=case)
        except Forbidden:
            continue
        if name in READY and READY[name](case, actor):
            continue
        names.append(name)
    return names


def _require(arguments: dict, name: str) -> Any:
    value = arguments.get(name)
    if value in (None, "", []):
        raise IllegalTransition(f"{name} is required")
    return value


def _send_to(department: str, co_departments: Any, context: Context) -> dict[str, Any]:
    """A case sent to a department starts over there: nobody has acknowledged or planned yet."""
    codes = {department, *(co_departments or ())}
    if context.taxonomy is not None:
        unknown = codes - set(context.taxonomy.departments)
        if unknown:
            raise IllegalTransition(f"unknown department {', '.join(sorted(map(str, unknown)))}")
    changes: dict[str, Any] = dict(
        department_code=department,
        co_department_codes=tuple(co_departments or ()),
        acknowledged_departments=(),
        plan_submitted=False,
    )
    if context.taxonomy is not None:
        changes["department_name"] = context.taxonomy.department_name(department)
    return changes


def _acknowledging(case: CaseState, actor: Actor) -> str | None:
    """The department an acknowledgement is for: the handler's own, the lead's for anyone else."""
    return actor.department_code if actor.role == "handler" else case.department_code


# --- when an action can be taken at all, beyond its statuses ---------------------------------------
# Each answers why not (None: it can). `decide` refuses with the reason (409); `available_actions`
# does not offer it, so the console never shows a button that can only fail.

READY: dict[str, Callable[[CaseState, Actor], str | None]] = {
    "acknowledge": lambda case, actor: (
        f"{_acknowledging(case, actor)} has already acknowledged"
        if _acknowledging(case, actor) in case.acknowledged_departments
        else None
    ),
    "start": lambda case, actor: (
        "the lead department has not acknowledged"
        if case.department_code not in case.acknowledged_departments
        else None
    ),
    "submit_plan": lambda case, actor: (
        "a joint plan is only for cases with co-handling departments" if not case.co_department_codes else None
    ),
    "report_part": lambda case, actor: (
        "only a co-handling department reports its part"
        if actor.department_code not in case.co_department_codes
        else None
    ),
    "resolve": lambda case, actor: (
        "a joint case needs its joint plan before it is resolved"
        if case.co_department_codes and not case.plan_submitted
        else None
    ),
    "escalate": lambda case, actor: (
        "the county is the top level; nothing to escalate to" if case.level == "county" else None
    ),
    "request_extension": lambda case, actor: (
        "an extension request is already pending" if case.extension_pending else None
    ),
    "approve_extension": lambda case, actor: None if case.extension_pending else "no extension request is pending",
    "refuse_extension": lambda case, actor: None if case.extension_pending else "no extension request is pending",
    "await_reporter": lambda case, actor: "already waiting for the reporter" if case.awaiting_reporter else None,
    "check": lambda case, actor: "该案件已现场核实过" if case.checked_at is not None else None,
    "reporter_replied": lambda case, actor: None if case.awaiting_reporter else "not waiting for the reporter",
}


# --- the actions' own rules, beyond what their specs say ------------------------------------------


def _acknowledge(c: Command) -> Outcome:
    case = c.case
    department = _acknowledging(case, c.actor)
    lead = department == case.department_code
    return Outcome(
        changes={"acknowledged_departments": (*case.acknowledged_departments, department)},
        detail={"department_code": department},
        to_status="acknowledged" if lead and case.status == "dispatched" else case.status,
    )


def _submit_plan(c: Command) -> Outcome:
    return Outcome(changes={"plan_submitted": True}, detail={"plan": c.arguments["plan"]})


def _report_part(c: Command) -> Outcome:
    return Outcome(detail={"department_code": c.actor.department_code, "result": c.arguments["result"]})


def _resolve(c: Command) -> Outcome:
    """办结 is verified, not declared: each "after" photo must be one media holds for this case as
    整改后; what media flagged about them (far from the report, reused…) goes to the dispatcher."""
    after = [str(m) for m in c.arguments["after_media_ids"]]
    evidence = c.context.evidence
    for media_id in after:
        role = evidence[media_id][0] if media_id in evidence else None
        if role is None:
            raise IllegalTransition(
                f"照片 {media_id} 不是本案件的整改后照片（媒体库中没有它与本案件的关联）："
                "请先上传现场整改后的照片并关联到本案件（整改后），再办结；刚上传的照片请稍候几秒再提交。"
            )
        if role != "after":
            raise IllegalTransition(f"照片 {media_id} 是本案件的整改前照片：办结需要整改后拍摄的照片，请上传后再办结。")
    flagged = {media_id: list(evidence[media_id][1]) for media_id in after if evidence[media_id][1]}
    detail: dict[str, Any] = {"result": c.arguments["result"], "after_media_ids": after}
    if flagged:
        detail["flagged_media"] = flagged
    return Outcome(detail=detail, changes={"resolved_at": c.context.now, "after_media_ids": after})


def _return(c: Command) -> Outcome:
    """退单: why and with what evidence; the dispute waits for the dispatcher's ruling."""
    evidence = [str(m) for m in c.arguments.get("evidence_media_ids") or ()]
    return Outcome(detail={"department_code": c.case.department_code, "evidence_media_ids": evidence})


def _overrule_return(c: Command) -> Outcome:
    """驳回退回: the case goes back to the department as it was when returned (a return comes only
    from dispatched or acknowledged, so its acknowledgements say which)."""
    case = c.case
    back = "acknowledged" if case.department_code in case.acknowledged_departments else "dispatched"
    return Outcome(detail={"department_code": case.department_code, "ruling": "overruled"}, to_status=back)


def _settle(c: Command) -> Outcome:
    resolved = _resolve(c)
    return replace(resolved, detail=resolved.detail | {"handled_by": "grid"})


def _check(c: Command) -> Outcome:
    """现场核实: 属实 keeps the case where it is; 不属实 (with what was found) cancels it, as 撤销 does
    for an unfounded report. A photo named must be one media holds for this case as 整改前 — the
    problem as found; the phone's position is kept as the evidence of having been there."""
    finding = c.arguments["finding"]
    if finding not in FINDINGS:
        raise IllegalTransition(f"finding must be one of {', '.join(FINDINGS)}")
    if finding == "unfounded" and not str(c.arguments.get("reason") or "").strip():
        raise IllegalTransition("情况不属实时，请在「核实情况」中写明现场看到的情况。")
    photos = [str(m) for m in c.arguments.get("before_media_ids") or ()]
    for media_id in photos:
        if c.context.evidence.get(media_id, ("",))[0] != "before":
            raise IllegalTransition(
                f"照片 {media_id} 不是本案件的现场照片（媒体库中没有它作为本案件整改前照片的关联）："
                "请重新拍照上传；刚上传的照片请稍候几秒再提交。"
            )
    detail: dict[str, Any] = {"finding": finding}
    if photos:
        detail["before_media_ids"] = photos
    where = c.arguments.get("device_location")  # the request as JSON: a dict
    if where:
        detail["device_location"] = {k: where.get(k) for k in ("lat", "lng", "accuracy_m")}
    return Outcome(
        detail=detail,
        changes={"checked_at": c.context.now},
        to_status="cancelled" if finding == "unfounded" else c.case.status,
    )


def _verify(c: Command) -> Outcome:
    if c.actor.role == "system":
        return Outcome(detail={"auto": True}, changes={"rating": None})  # nobody answered the 回访 in time
    rating = c.arguments.get("rating")
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise IllegalTransition("rating must be an integer from 1 to 5")
    return Outcome(detail={"rating": rating, "comment": c.arguments.get("comment") or ""}, changes={"rating": rating})


def _dispatch_or_transfer(c: Command) -> Outcome:
    department = c.arguments["department_code"]
    if c.spec.name == "transfer" and department == c.case.department_code:
        raise IllegalTransition("transfer needs a different department")
    if c.spec.name == "uphold_return" and department == c.case.department_code:
        raise IllegalTransition(
            "upholding a return sends the case to another department; to keep it with "
            f"{department}, overrule the return instead"
        )
    detail = {"department_code": department}
    if c.spec.name == "uphold_return":  # the timeline shows the dispute's outcome
        detail |= {"ruling": "upheld", "returned_by": c.case.department_code}
    return Outcome(changes=_send_to(department, c.arguments.get("co_department_codes"), c.context), detail=detail)


def _escalate(c: Command) -> Outcome:
    case, context = c.case, c.context
    to = None
    if context.rlist is not None and case.category and case.owner_code:
        try:
            to = decide_owner(
                rlist=context.rlist,
                centres=context.centres,
                case_jurisdiction=case.jurisdiction_code,
                category=case.category,
                above=case.owner_code,
            ).jurisdiction_code
        except ValueError as error:
            raise IllegalTransition(f"no centre above this one handles {case.category}: {error}") from None
    if not to:
        raise IllegalTransition("no centre above this one is known for the case")
    return Outcome(detail={"to_jurisdiction_code": to})


def _extension_request(c: Command) -> Outcome:
    return Outcome(changes={"extension_pending": True}, detail={"minutes": c.arguments["minutes"]})


def _extension_answer(c: Command) -> Outcome:
    detail = {"minutes": c.arguments["minutes"]} if "minutes" in c.spec.requires else {}  # approved
    return Outcome(changes={"extension_pending": False}, detail=detail)


def _await_reporter(c: Command) -> Outcome:
    return Outcome(changes={"awaiting_reporter": True})


def _reporter_replied(c: Command) -> Outcome:
    return Outcome(
        changes={"awaiting_reporter": False},
        detail={"reply": c.arguments.get("result") or c.arguments.get("comment") or ""},
    )


def _reclassify(c: Command) -> Outcome:
    """改类: the category the dispatcher chose, and the department the list gives it at this level."""
    category_code, taxonomy = c.arguments["category"], c.context.taxonomy
    department, co = c.arguments.get("department_code"), c.arguments.get("co_department_codes")
    category = taxonomy.categories.get(category_code) if taxonomy else None
    if taxonomy is not None and category is None:
        raise IllegalTransition(f"unknown category {category_code}")
    if c.context.rlist is not None:
        rule = c.context.rlist.rule_at(
            jurisdiction_code=c.case.owner_code or c.case.jurisdiction_code, category=category_code
        )
        if rule is None:
            raise IllegalTransition(f"this level has no department for {category_code}; escalate the case instead")
        department, co = rule.lead, list(rule.co_handlers)
    if not department:
        raise IllegalTransition("department_code is required")
    changes = _send_to(department, co, c.context)
    changes["category"] = category_code
    if category is not None:
        changes.update(
            category_name=category.name,
            priority=c.arguments.get("priority") or category.priority,
            rule=f"manual:{c.actor.label}:{category_code}->{department}",
        )
    return Outcome(
        changes=changes,
        detail={"category": category_code, "previous_category": c.case.category, "department_code": department},
    )


def _merge(c: Command) -> Outcome:
    """合并: into an open case of this centre that the dispatcher may see, never into itself."""
    into, target = str(c.arguments["into_case_id"]), c.context.other
    if into == c.case.case_id:
        raise IllegalTransition("a case cannot be merged into itself")
    if target is None or target.case_id != into:
        raise IllegalTransition(f"no case {into} at this centre to merge into")
    if not can_see(actor=c.actor, case=target):
        raise Forbidden("目标案件不在您的辖区范围内")
    if target.status not in OPEN:
        raise IllegalTransition(f"cannot merge into a case that is {target.status}")
    return Outcome(detail={"into_case_id": into}, changes={"merged_into": into})


def _reopen(c: Command) -> Outcome:
    return Outcome(
        changes=dict(
            acknowledged_departments=(),
            plan_submitted=False,
            extension_pending=False,
            awaiting_reporter=False,
            resolved_at=None,
        )
    )


# An action without an entry here is fully described by its spec.
RULES: dict[str, Callable[[Command], Outcome]] = {
    "acknowledge": _acknowledge,
    "submit_plan": _submit_plan,
    "report_part": _report_part,
    "resolve": _resolve,
    "settle": _settle,
    "check": _check,
    "verify": _verify,
    "dispatch": _dispatch_or_transfer,
    "transfer": _dispatch_or_transfer,
    "return": _return,
    "uphold_return": _dispatch_or_transfer,
    "overrule_return": _overrule_return,
    "escalate": _escalate,
    "request_extension": _extension_request,
    "approve_extension": _extension_answer,
    "refuse_extension": _extension_answer,
    "await_reporter": _await_reporter,
    "reporter_replied": _reporter_replied,
    "reclassify": _reclassify,
    "merge": _merge,
    "reopen": _reopen,
}


def decide(
    *, case: CaseState, action: str, actor: Actor, arguments: dict | None = None, context: Context | None = None
) -> Transition:
    """Check an action against its spec and the case's state, and build the transition it makes:
    403 (Forbidden) before anything about the action, then 409 (IllegalTransition) for a status
    that does not allow it or an argument it requires."""
    authorize(actor=actor, action=action, case=case)
    spec = ACTIONS[action]
    if case.status not in spec.from_statuses:
        raise IllegalTransition(
            f"cannot {action} a case that is {case.status}; only a case that is {' or '.join(spec.from_statuses)}"
        )
    arguments = dict(arguments or {})
    for name in spec.requires:
        _require(arguments, name)
    not_ready = READY[action](case, actor) if action in READY else None
    if not_ready:
        raise IllegalTransition(not_ready)
    rule = RULES.get(action)
    command = Command(spec=spec, case=case, actor=actor, arguments=arguments, context=context or Context())
    # Without a rule of its own, an action records what its request carried besides the reason.
    outcome = rule(command) if rule else Outcome(detail={k: v for k, v in arguments.items() if k != "reason" and v})
    changes = outcome.changes
    if "department_code" in changes and changes["department_code"] != case.department_code:
        changes.setdefault("rule", f"manual:{actor.label}")
    return Transition(
        action=action,
        event_type=spec.event_type,
        from_status=case.status,
        to_status=outcome.to_status or spec.to_status or case.status,
        reason=arguments.get("reason"),
        changes=changes,
        detail=outcome.detail,
    )


_STATE_FIELDS = {f.name for f in fields(CaseState)}


def apply(case: CaseState, transition: Transition) -> CaseState:
    """The case state after a transition."""
    return replace(
        case, status=transition.to_status, **{k: v for k, v in transition.changes.items() if k in _STATE_FIELDS}
    )


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


# --- staff acting from WeCom (template-card buttons, commands to the AI bot) ---------------------
# The sender is a WeCom user id; the directory makes it a person with roles, and the action is then
# exactly the one the HTTP routes take (`decide`). What they read back is Chinese.

CHINA_TZ = timezone(timedelta(hours=8))
STATUS_LABELS = {
    "triaged": "待派单",
    "dispatched": "待接单",
    "acknowledged": "已接单",
    "in_progress": "处置中",
    "returned": "已退回（待仲裁）",
    "resolved": "已办结（待回访）",
    "verified": "已回访",
    "closed": "已结案",
    "escalated": "已上报上级",
    "merged": "已合并",
    "cancelled": "已撤销",
}
# What each staff action says when it is done: the answer's verb and the card button's new text.
STAFF_DONE = {
    "acknowledge": ("已接单", "已接单"),
    "return": ("已退回，等待调度中心仲裁", "已退回"),
    "progress": ("已记录进展", "已反馈进展"),
    "resolve": ("已办结", "已办结"),
}
# Why media refused a photo (media.rejected's reason), for the group.
PHOTO_REFUSALS = {
    "empty": "照片是空文件",
    "too-large": "照片太大",
    "unsupported-type": "不是支持的图片格式（JPEG、PNG、WebP、HEIC）",
    "type-mismatch": "文件内容与图片类型不符",
    "corrupt": "照片已损坏，无法打开",
    "decompression-bomb": "照片像素过多",
}


class StaffRefused(Exception):
    """A staff command from WeCom that changes nothing; the message is for them (Chinese)."""


def staff_actor(*, person: dict | None, roles: list[dict], case: CaseState) -> Actor:
    """The actor a WeCom user acts on this case as: an active person of the directory with a
    handler role for one of the case's departments (lead or co-handling) in the case's division or
    above. Refused politely for an unknown sender and for another department's case."""
    if person is None or not person.get("active", True):
        raise StaffRefused(
            "您不在网格通通讯录中（或已停用），无法在企业微信办理案件；请联系管理员登记您的企业微信账号。"
        )
    departments = (case.department_code, *case.co_department_codes)
    place = case.grid_code or case.jurisdiction_code
    mine = [
        r
        for r in roles
        if r["role"] == "handler"
        and r.get("department_code") in departments
        and place.startswith(r["jurisdiction_code"])
    ]
    if not mine:
        raise StaffRefused("该案件不属于您所在的部门，无法办理；如派错部门，请联系调度中心改派。")
    # The lead department's role first: its acknowledgement moves the case.
    role = sorted(mine, key=lambda r: r.get("department_code") != case.department_code)[0]
    return Actor(
        subject=person["person_id"],
        role="handler",
        jurisdiction_code=role["jurisdiction_code"],
        department_code=role["department_code"],
        name=person.get("name", ""),
    )


def answers_unknown_numbers(jurisdiction_code: str, centres: list[str], *, owner_code: str | None = None) -> bool:
    """Whether this centre answers a case number it does not hold. Only the county centre does: it
    reads every report, so it knows which centre took each number (`owner_code`, None when no
    report ever had it). Alone, it answers every such number; beside town or village centres, only
    those no centre was given (or it was, and holds no case under it): a number another centre took
    is that centre's to answer."""
    if len(jurisdiction_code) != 6:
        return False
    return set(centres) <= {jurisdiction_code} or owner_code in (None, jurisdiction_code)


def staff_arguments(action: str, text: str | None) -> dict[str, Any]:
    """The action's arguments from a staff command's words (as the HTTP request would carry them)."""
    if action in ("progress", "resolve"):
        return {"result": text} if text else {}
    if action == "return":
        return {"reason": text} if text else {}
    return {}


def staff_precheck(*, case: CaseState, actor: Actor, action: str, arguments: dict) -> None:
    """What `decide` would refuse before looking at evidence, with Chinese reasons: used to refuse
    a 办结 before its photos are taken in, and to explain any refusal in words staff read."""
    spec = ACTIONS[action]
    try:
        authorize(actor=actor, action=action, case=case)
    except Forbidden as exc:
        raise StaffRefused(f"您无权{spec.label}：{exc}") from None
    if case.status not in spec.from_statuses:
        raise StaffRefused(f"案件当前状态为「{STATUS_LABELS.get(case.status, case.status)}」，不能{spec.label}。")
    if action == "acknowledge" and _acknowledging(case, actor) in case.acknowledged_departments:
        raise StaffRefused("您的部门已接过此单，无需重复接单。")
    missing = [name for name in spec.requires if name != "after_media_ids" and not arguments.get(name)]
    if missing:
        usage = {
            "progress": "请按“进展 案件编号 进展内容”发送。",
            "resolve": "请按“办结 案件编号 办理结果”发送，并附上整改后照片。",
            "return": "请写明退回理由。",
        }
        raise StaffRefused(f"缺少{'、'.join(missing)}：{usage.get(action, '')}")
    not_ready = READY[action](case, actor) if action in READY else None
    if not_ready:
        raise StaffRefused(f"暂不能{spec.label}：{not_ready}")


def staff_done_text(*, action: str, case_no: str, actor: Actor, at: datetime) -> tuple[str, str]:
    """(the reply, the card button's text) of a staff action that was done."""
    verb, button = STAFF_DONE[action]
    when = at.astimezone(CHINA_TZ).strftime("%H:%M")
    return (
        f"案件 {case_no} {verb}（{actor.name or actor.subject}，{when}）。",
        f"{button} · {actor.name or actor.subject} {when}",
    )


def staff_query_text(*, case: dict, deadline: str | None) -> str:
    """The answer to 查 <编号>: state, department, deadline, in markdown."""
    lines = [
        f"**案件 {case['case_no']}**",
        f"> 状态：{STATUS_LABELS.get(case['status'], case['status'])}" + ("（已逾期）" if case.get("overdue") else ""),
        f"> 承办部门：{case['department_name']}",
        f"> 类别：{case['category_name']}",
    ]
    if deadline:
        lines.append(f"> 时限：{deadline}")
    return "\n".join(lines)


def deadline_words(policy: SlaPolicy, *, status: str, priority: str, level: str, department_code: str) -> str | None:
    """The time the case's current stage allows, from the SLA policy sla enforces (the exact due
    time is sla's): 接单 while it waits for it, 办结 while it is worked on."""
    stage = (
        "acknowledge" if status == "dispatched" else "resolve" if status in ("acknowledged", "in_progress") else None
    )
    if stage is None:
        return None
    duration = policy.duration(priority=priority, level=level, stage=stage)
    amount, always = f"{duration.amount:g}", policy.round_the_clock(department_code)
    unit = {
        "minutes": "分钟",
        "working_hours": "小时" if always else "个工作小时",
    }.get(duration.unit, "天" if always else "个工作日")
    return f"{'接单' if stage == 'acknowledge' else '办结'}时限 {amount}{unit}（自派单起）"
