"""Pure notify rules: who is told about what, the Chinese text they read, each robot's sending
budget, which groups a broadcast reaches, who may broadcast or read deliveries, and what an
inbound WeChat message means. No I/O: app.py loads the directory, the groups and the SLA policy
and hands them in."""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote, urlencode
from uuid import NAMESPACE_URL, UUID, uuid5

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from services.notify.messages import (
    app_text_message,
    markdown_message,
    news_message,
    robot_image_link,
    sms_message,
    subscribe_message,
    template_message,
    text_message,
)
from shared.auth import Actor
from shared.events import CaseDispatched
from shared.sla_policy import SlaPolicy
from shared.wecom_cards import (
    CARD_ACTIONS,
    CARD_BUTTON_TEXT,
    BadCardKey,
    card_button_key,
    card_task_id,
    parse_card_button_key,
)

CHINA_TZ = timezone(timedelta(hours=8))
PRIORITY_LABEL = {"urgent": "紧急", "normal": "一般"}
STAGE_LABEL = {
    "acknowledge": "接单",
    "joint_plan": "联合处置方案",
    "resolve": "办结",
    "verify": "回访",
    "arbitrate": "退单仲裁",
}
# WeCom counts its 20 messages per minute on its own clock: one second more absorbs the skew.
ROBOT_WINDOW_S = 61.0
NOTIFICATION_NS = uuid5(NAMESPACE_URL, "https://gridlink.example.org/notifications")


@dataclass(frozen=True)
class DepartmentContact:
    robot_key: str
    mentioned_mobiles: tuple[str, ...]


@dataclass(frozen=True)
class DepartmentHead:
    """A department's head (负责人): WeCom user id and mobile, for 通报."""

    wecom_userid: str | None = None
    mobile: str | None = None


@dataclass(frozen=True)
class Directory:
    departments: dict[str, DepartmentContact]
    # 督办 also goes to the supervision office; 办结 is announced in the command centre's group.
    supervisor: DepartmentContact | None = None
    command_center: str | None = None
    # 通报 goes to the county leadership group (领导小组) and each department's head.
    leadership: DepartmentContact | None = None
    heads: dict[str, DepartmentHead] = field(default_factory=dict)


@dataclass(frozen=True)
class OnDuty:
    """Who answers a department's 派单 now, from dispatch's duty roster (值班表): the person on duty
    and their backup, by WeCom user id (None when the directory has none for them) and name."""

    user_id: str | None
    name: str
    backup_user_id: str | None = None
    backup_name: str | None = None


@dataclass(frozen=True)
class ReporterContact:
    """How a reporter can be reached, best first: official account, WeCom, SMS."""

    openid: str | None = None
    wecom_userid: str | None = None
    phone: str | None = None
    # A phone typed into a report is only a claim: case updates go to it by SMS once its owner has
    # proved it (reporter.verified from intake), so nobody can have a stranger texted.
    phone_verified: bool = False
    # This reporter's own one-tap link confirming (or denying) the 办结 of their case (intake's H5 page).
    confirm_url: str | None = None
    # The robot key of the WeCom group the reporter @-mentioned the bot in: they are answered there.
    group_robot: str | None = None


def confirmation_url(base_url: str | None, *, report_id: UUID, token: str | None) -> str | None:
    """A reporter's one-tap 办结 confirmation link (intake's H5 page), when intake gave its secret."""
    if not base_url or not token:
        return None
    return f"{base_url.rstrip('/')}/h5/confirm?{urlencode({'r': str(report_id), 't': token})}"


@dataclass(frozen=True)
class ReporterTemplates:
    """How reporters are written to: official-account template or subscribe messages (by the
    template id configured for case updates), and the SMS template."""

    wechat_template_id: str = "gridlink-case-update"
    wechat_kind: str = "template"  # template | subscribe
    sms_template: str = "SMS_CASE_UPDATE"


@dataclass(frozen=True)
class Outgoing:
    channel: str
    target: str
    template: str
    body: dict
    # A 派单's one line in a digest (派单汇总), for when its group's robot has spent its minute.
    digest_line: str | None = None
    # The channels that take over, step by step, when this one fails or is not confirmed in time
    # (staff: WeCom app → group robot → SMS; residents: official account → SMS). Each step is one
    # or more messages (e.g. an SMS to each of a group's people).
    fallback: tuple[tuple["Outgoing", ...], ...] = ()

    def step(self) -> dict:
        """This message as a fallback step's entry, stored with the notification it backs up."""
        return {"channel": self.channel, "target": self.target, "template": self.template, "body": self.body}

    # A second message of one event to the same target (a picture after its line of text): a part
    # name gives it a source of its own, since a source sends one message to each target.
    part: str | None = None


@dataclass(frozen=True)
class Group:
    group_id: str
    name: str
    jurisdiction_code: str
    robot_key: str


# Who a message went to, in words staff read. The robot key, openid, WeCom user id or encrypted
# phone a message was sent with is a credential or personal data and never leaves notify's tables.
CHANNEL_RECIPIENTS = {
    "wecom_app": "企业微信成员",
    "wechat_template": "反映人（公众号）",
    "wechat_subscribe": "反映人（公众号）",
    "sms": "反映人（短信）",
    "sms_staff": "工作人员（短信）",
    "wecom_card_update": "企业微信成员（卡片）",
    "aibot_reply": "企业微信群（智能机器人）",
}
# Channels that confirm a message later (template messages: the TEMPLATESENDJOBFINISH event); the
# others confirm it in their answer.
CONFIRMED_LATER = frozenset({"wechat_template"})
STAFF_SMS_TEMPLATE = "SMS_STAFF_NOTICE"


def with_fallback(first: Outgoing, *steps: Sequence[Outgoing]) -> Outgoing:
    """`first`, taken over by each non-empty step in turn when it fails."""
    chain = tuple(tuple(step) for step in steps if step)
    return Outgoing(first.channel, first.target, first.template, first.body, first.digest_line, chain)


def fallback_rows(steps) -> tuple[list[dict], list]:
    """From a stored fallback (list of steps of message dicts): the next step's messages and the
    steps left after it, which each of those messages carries on."""
    if not steps:
        return [], []
    return list(steps[0]), list(steps[1:])


def staff_sms(contact: "DepartmentContact", *, template: str, case_ref: str, notice: str) -> list[Outgoing]:
    """SMS to each of a group's @-mentioned people: the last channel for a group robot's message."""
    return [
        Outgoing(
            "sms_staff",
            mobile,
            template,
            sms_message(template=STAFF_SMS_TEMPLATE, params={"case": case_ref, "notice": notice}),
        )
        for mobile in contact.mentioned_mobiles
    ]


def robot_names(directory: Directory, groups: list[Group]) -> dict[str, str]:
    """Each group robot's key → the group's name as staff know it."""
    names = {group.robot_key: group.name for group in groups}
    names |= {contact.robot_key: f"部门群（{code}）" for code, contact in directory.departments.items()}
    if directory.supervisor:
        names[directory.supervisor.robot_key] = "督查室群"
    if directory.leadership:
        names[directory.leadership.robot_key] = "领导小组群"
    return names


def recipient(*, channel: str, target: str, robots: dict[str, str]) -> str:
    """Who a notification went to, without the key, id or number it was sent with."""
    if channel == "wecom_robot":
        return robots.get(target, "企业微信群")
    return CHANNEL_RECIPIENTS.get(channel, channel)


def notification_id(*, source_id: UUID, template: str, channel: str, target: str) -> UUID:
    """The same source, template, channel and target always give the same id: a redelivered event
    or a repeated request maps onto the row that exists instead of a second message."""
    return uuid5(NOTIFICATION_NS, f"{source_id}|{template}|{channel}|{target}")


def field_of(payload, name: str, default=None):
    """An optional field of an event payload: an attribute, or an entry of its `detail` dict
    (case transitions carry step-specific facts there)."""
    value = getattr(payload, name, None)
    if value is None:
        detail = getattr(payload, "detail", None)
        value = detail.get(name) if isinstance(detail, dict) else None
    return default if value is None else value


def _case_ref(payload) -> str:
    """The case as people quote it: its human number (案件编号, the one 我要查询 takes). Handlers
    fill it in from notify's own record of case numbers for events that do not carry it; only a
    case notify never saw opened falls back to the start of its id."""
    return field_of(payload, "case_no") or str(payload.case_id)[:8]


def work_page_url(base_url: str, case_no: str | None) -> str | None:
    """The case's mobile work page in the console (opened inside WeCom), or None without a base URL."""
    if not base_url or not case_no:
        return None
    return f"{base_url.rstrip('/')}/m/cases/{quote(case_no, safe='')}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dispatch_card(
    case: CaseDispatched, *, task_id: str, ack_time: str, url: str | None, co_handling: bool = False
) -> dict:
    """派单 as a WeCom application template card (按钮交互型) with 接单 and 退回 buttons, for the
    person on duty (the application client adds touser and agentid)."""
    case_no = _case_ref(case)
    action = field_of(case, "action", "dispatch")
    label = "协办" if co_handling else DISPATCH_ACTION_LABEL.get(action, "派单")
    card: dict = {
        "card_type": "button_interaction",
        "source": {"desc": "网格通", "desc_color": 0},
        "main_title": {
            "title": _short(f"【{label}】{case.category_name}", 26),
            "desc": f"案件 {case_no}｜{PRIORITY_LABEL.get(case.priority, case.priority)}",
        },
        "sub_title_text": _short(case.description + (f"（{case.address}）" if case.address else ""), 80),
        "horizontal_content_list": [
            {"keyname": "承办", "value": _short(case.department_name, 26)},
            {"keyname": "派单时间", "value": _china_time(case.dispatched_at)},
            {"keyname": "接单时限", "value": "配合主办单位" if co_handling else _short(ack_time, 26)},
        ],
        "task_id": task_id,
        "button_list": [
            {"text": CARD_BUTTON_TEXT["accept"], "style": 1, "key": card_button_key("accept", case_no)},
            {"text": CARD_BUTTON_TEXT["return"], "style": 2, "key": card_button_key("return", case_no)},
        ],
    }
    if url:
        card["horizontal_content_list"].append({"keyname": "处置页面", "value": "打开", "type": 1, "url": url})
        card["card_action"] = {"type": 1, "url": url}
    return {"msgtype": "template_card", "template_card": card}


def _as_datetime(value) -> datetime | None:
    """A datetime from a payload field that may be one or an ISO string (inside `detail`)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, datetime) and value.tzinfo else None


def _china_time(at) -> str:
    at = _as_datetime(at)
    return at.astimezone(CHINA_TZ).strftime("%m-%d %H:%M") if at else "—"


def _robot(
    contact: DepartmentContact,
    template: str,
    content: str,
    *,
    case_ref: str = "",
    notice: str = "",
    mentioned_users: Sequence[str] = (),
) -> Outgoing:
    """A message to a group, @-mentioning its people (and `mentioned_users` by WeCom user id), taken
    over by an SMS to each of its @-mentioned people when the robot fails (when `notice`, the SMS's
    few words, is given)."""
    message = Outgoing(
        "wecom_robot",
        contact.robot_key,
        template,
        text_message(content, mentioned_mobiles=list(contact.mentioned_mobiles), mentioned_users=list(mentioned_users)),
    )
    if not notice:
        return message
    return with_fallback(message, staff_sms(contact, template=template, case_ref=case_ref, notice=notice))


DISPATCH_ACTION_LABEL = {
    "dispatch": "派单",
    "transfer": "转派",
    "reopen": "重新派单",
    "escalate": "上报派单",
    "uphold_return": "退回改派",
}


def acknowledge_time(policy: SlaPolicy, *, priority: str, level: str, department_code: str) -> str:
    """How long a department has to acknowledge (接单), in words, from the SLA policy the sla
    service enforces, so the message and the clock agree."""
    duration = policy.duration(priority=priority, level=level, stage="acknowledge")
    amount = f"{duration.amount:g}"
    if duration.unit == "minutes":
        return f"{amount}分钟"
    round_the_clock = policy.round_the_clock(department_code)
    if duration.unit == "working_hours":
        return f"{amount}小时" if round_the_clock else f"{amount}个工作小时"
    return f"{amount}天" if round_the_clock else f"{amount}个工作日"


def dispatched_message(
    case: CaseDispatched,
    *,
    contact: DepartmentContact,
    ack_time: str,
    co_handling: bool = False,
    duty: OnDuty | None = None,
    url: str | None = None,
) -> dict:
    """派单 notice to the department's group (协办 to a co-handling one), @-mentioning its handlers
    and the person on duty, with the link to the case's mobile work page."""
    action = field_of(case, "action", "dispatch")
    label = "协办" if co_handling else DISPATCH_ACTION_LABEL.get(action, "派单")
    reason = field_of(case, "reason") if action != "dispatch" else None
    content = (
        f"【{label}】{PRIORITY_LABEL.get(case.priority, case.priority)} 案件 {_case_ref(case)}\n"
        f"类别：{case.category_name}\n"
        f"承办：{case.department_name}\n"
        f"内容：{case.description}\n"
        + (f"原因：{reason}\n" if reason else "")
        + f"派单时间：{_china_time(case.dispatched_at)}\n"
        + (f"值班：{duty.name}\n" if duty else "")
        + ("请配合主办单位处置。" if co_handling else f"请在{ack_time}内接单。")
        + (f"\n处置页面：{url}" if url else "")
    )
    return text_message(
        content,
        mentioned_mobiles=list(contact.mentioned_mobiles),
        mentioned_users=[duty.user_id] if duty and duty.user_id else [],
    )


def place_names(groups: list[Group]) -> dict[str, str]:
    """Each grid's name as people say it (莲源社区第1网格), from its grid group's name."""
    names: dict[str, str] = {}
    for group in groups:
        name = group.name.removesuffix("群")
        if name.endswith("网格") and len(name) < len(names.get(group.jurisdiction_code, name + "_")):
            names[group.jurisdiction_code] = name
    return names


def acknowledge_by(policy: SlaPolicy, case: CaseDispatched, *, ack_time: str) -> str:
    """When the department must acknowledge: a clock time when the stage runs on the wall clock,
    else its working time in words (the working calendar is sla's to apply)."""
    duration = policy.duration(priority=case.priority, level=case.level or "county", stage="acknowledge")
    if duration.unit == "minutes":
        return f"{_china_time(case.dispatched_at + timedelta(minutes=float(duration.amount)))[-5:]}前接单"
    return f"{ack_time}内接单"


def digest_line(
    case: CaseDispatched, *, places: dict[str, str], deadline: str, co_handling: bool = False, url: str | None = None
) -> str:
    """One 派单 in a digest: case number, category, place and deadline (and its work page), in a
    few dozen bytes."""
    place = places.get(case.grid_code or "") or places.get(case.jurisdiction_code or "") or case.description[:12]
    label = "【协办】" if co_handling else ""
    return f"{label}{_case_ref(case)}｜{case.category_name}｜{place}｜{deadline}" + (f" {url}" if url else "")


def dispatched_messages(
    case: CaseDispatched,
    *,
    directory: Directory,
    sla_policy: SlaPolicy,
    places: dict[str, str] | None = None,
    duty: dict[str, OnDuty] | None = None,
    console_url: str = "",
) -> list[Outgoing]:
    """派单: the department's group, told how long it has to acknowledge, @-mentioning whoever is on
    duty (`duty`: department → OnDuty) and linking the case's work page; co-handling (协办)
    departments hear of it too, unless they share the department's robot. Each department's person
    on duty also gets the 接单/退回 card in WeCom."""
    contact = _department(directory, case.department_code)
    ack_time = acknowledge_time(
        sla_policy, priority=case.priority, level=case.level or "county", department_code=case.department_code
    )
    deadline = acknowledge_by(sla_policy, case, ack_time=ack_time)
    places, duty = places or {}, duty or {}
    url = work_page_url(console_url, case.case_no)
    lead = duty.get(case.department_code)
    out = [
        Outgoing(
            "wecom_robot",
            contact.robot_key,
            "case.dispatched",
            dispatched_message(case, contact=contact, ack_time=ack_time, duty=lead, url=url),
            digest_line(case, places=places, deadline=deadline, url=url),
        )
    ]
    co_codes = [c for c in field_of(case, "co_department_codes", ()) if c != case.department_code]
    for code in co_codes:
        co = directory.departments.get(code)
        if co is not None and co.robot_key != contact.robot_key:
            out.append(
                Outgoing(
                    "wecom_robot",
                    co.robot_key,
                    "case.dispatched",
                    dispatched_message(
                        case, contact=co, ack_time=ack_time, co_handling=True, duty=duty.get(code), url=url
                    ),
                    digest_line(case, places=places, deadline=deadline, co_handling=True, url=url),
                )
            )
    if case.case_no:
        # One card per department (the lead's first), each its own task: n = the 派单's position in
        # the case's history × 10 + the department's place, so a later 派单 (转派, 重办) is a new task.
        for i, code in enumerate([case.department_code, *co_codes][:10]):
            person = duty.get(code)
            if person is None or not person.user_id:
                continue
            card = dispatch_card(
                case,
                task_id=card_task_id(case.case_no, case.seq * 10 + i),
                ack_time=ack_time,
                url=url,
                co_handling=i > 0,
            )
            out.append(Outgoing("wecom_app", person.user_id, "case.dispatched.card", card))
    return out


def backup_due_at(policy: SlaPolicy, case: CaseDispatched) -> datetime | None:
    """When the backup is @-mentioned if nobody has acknowledged: half the acknowledgement time
    after 派单, where that time runs on the wall clock (minutes, or a round-the-clock department).
    Working-time stages need the official calendar, which sla alone keeps; for them the backup is
    @-mentioned with sla's first 催办 of the stage instead (see `warning_messages`)."""
    duration = policy.duration(priority=case.priority, level=case.level or "county", stage="acknowledge")
    minutes = {"minutes": 1.0, "working_hours": 60.0, "working_days": 24 * 60.0}[duration.unit]
    if duration.unit != "minutes" and not policy.round_the_clock(case.department_code):
        return None
    return case.dispatched_at + timedelta(minutes=float(duration.amount) * minutes / 2)


def backup_message(
    case: CaseDispatched, *, duty: OnDuty, ack_time: str, url: str | None, co_handling: bool = False
) -> dict:
    """Half the acknowledgement time has passed and nobody claimed the 派单: the department's group
    is told so, @-mentioning the backup and the person on duty."""
    content = (
        f"【催接单】案件 {_case_ref(case)}（{case.category_name}）派单已过半时限，仍未接单。\n"
        f"值班：{duty.name}；备班：{duty.backup_name or '—'}，请协助接单"
        + ("并配合主办单位处置。" if co_handling else f"（时限{ack_time}）。")
        + (f"\n处置页面：{url}" if url else "")
    )
    return text_message(content, mentioned_users=[u for u in (duty.backup_user_id, duty.user_id) if u])


@dataclass(frozen=True)
class GridWorker:
    user_id: str  # WeCom user id
    grid_name: str


def grid_worker_messages(
    case: CaseDispatched, *, workers: dict[str, GridWorker], directory: Directory | None = None
) -> list[Outgoing]:
    """A new report in a grid: its grid worker hears of it at once (they may settle it on the spot,
    即知即改, or check it on site), by a WeCom application message to them alone. When the
    application cannot reach them, the command centre's group is asked to pass it on (its robot),
    and failing that its people by SMS."""
    worker = workers.get(case.grid_code or "")
    if worker is None or case.action != "dispatch":  # only new cases: a transfer is not news to the grid
        return []
    address = f"（{case.address}）" if case.address else ""
    description = case.description if len(case.description) <= 60 else case.description[:59] + "…"
    content = (
        f"【网格新上报】您负责的{worker.grid_name}有新上报，案件 {_case_ref(case)}：{case.category_name}"
        f"{'（紧急）' * (case.priority == 'urgent')}。{description}{address}。已派{case.department_name}处置；"
        "请到现场看是否属实，在工作台「现场核实」；能当场解决的，可「即知即改」并上传整改后照片。"
    )
    message = Outgoing("wecom_app", worker.user_id, "case.grid_notice", app_text_message(content))
    centre = directory.departments.get(directory.command_center or "") if directory else None
    if centre is None:
        return [message]
    relay = _robot(
        centre,
        "case.grid_notice",
        f"【请转告网格员】{worker.grid_name}网格员未能收到应用消息，请电话转告：\n{content}",
        case_ref=_case_ref(case),
        notice="网格新上报待转告",
    )
    return [with_fallback(message, [relay], *relay.fallback)]


def warning_messages(
    payload, *, directory: Directory, now: datetime, duty: OnDuty | None = None, console_url: str = ""
) -> list[Outgoing]:
    """催办: a deadline is near; the department's group is reminded, its handlers, the person on
    duty and (past half of the time by then) their backup @-mentioned."""
    contact = _department(directory, payload.department_code)
    stage = field_of(payload, "stage")
    due_at = _as_datetime(field_of(payload, "due_at"))
    reminder = field_of(payload, "reminder", 1)
    priority = field_of(payload, "priority")
    lines = [
        f"【催办】{'第' + str(reminder) + '次 ' if reminder > 1 else ''}"
        f"{PRIORITY_LABEL.get(priority, '') + ' ' if priority else ''}案件 {_case_ref(payload)}"
    ]
    if stage:
        lines.append(f"环节：{STAGE_LABEL.get(stage, stage)}")
    if due_at:
        minutes = max(int((due_at - now).total_seconds() // 60), 0)
        lines.append(f"时限：{_china_time(due_at)}（还剩{minutes}分钟）")
    if duty is not None:
        lines.append(f"值班：{duty.name}" + (f"；备班：{duty.backup_name}" if duty.backup_name else ""))
    lines.append("请尽快处理，逾期将转督办。")
    if url := work_page_url(console_url, field_of(payload, "case_no")):
        lines.append(f"处置页面：{url}")
    mentioned = [u for u in (duty.user_id, duty.backup_user_id) if u] if duty else []
    return [
        _robot(
            contact,
            "sla.warning",
            "\n".join(lines),
            case_ref=_case_ref(payload),
            notice="催办",
            mentioned_users=mentioned,
        )
    ]


def breached_messages(payload, *, directory: Directory) -> list[Outgoing]:
    """督办: a deadline passed; the supervision office and the department's group are told."""
    contact = _department(directory, payload.department_code)
    stage = STAGE_LABEL.get(payload.stage, payload.stage)
    content = (
        f"【督办】案件 {_case_ref(payload)} {stage}已超时\n"
        f"承办：{field_of(payload, 'department_name', payload.department_code)}\n"
        f"开始：{_china_time(payload.started_at)}\n"
        f"时限：{_china_time(payload.due_at)}\n"
    )
    ref = _case_ref(payload)
    out = [_robot(contact, "sla.breached", content + "请立即处理并说明超时原因。", case_ref=ref, notice="督办")]
    if directory.supervisor is not None:
        out.append(
            _robot(directory.supervisor, "sla.breached", content + "请督查室跟进督办。", case_ref=ref, notice="督办")
        )
    return out


def notice_messages(payload, *, directory: Directory) -> list[Outgoing]:
    """通报: a department missed deadlines again and again within the policy's window. The county
    leadership group hears it (its robot, then its people by SMS), and so does the department's
    head (the WeCom application, then the department's group, then SMS)."""
    code = payload.department_code
    cases = "、".join(payload.case_nos[:10]) or "、".join(str(c)[:8] for c in payload.case_ids[:10])
    more = f"等{len(payload.case_ids)}件" if len(payload.case_ids) > 10 else ""
    content = (
        f"【通报】部门（{code}）近{payload.days}天内{payload.breaches}次办理超时（督办）。\n"
        f"涉及案件：{cases}{more}\n"
        f"通报时间：{_china_time(payload.issued_at)}\n"
    )
    out: list[Outgoing] = []
    if directory.leadership is not None:
        out.append(
            _robot(
                directory.leadership,
                "sla.notice_issued",
                content + "请领导小组督促整改。",
                case_ref=code,
                notice="通报",
            )
        )
    head = directory.heads.get(code, DepartmentHead())
    department = directory.departments.get(code)
    to_head = content + "请部门负责人组织整改，并向领导小组书面说明原因。"
    group = (
        _robot(department, "sla.notice_issued", to_head, case_ref=code, notice="通报")
        if department is not None
        else None
    )
    head_sms = (
        [
            Outgoing(
                "sms_staff",
                head.mobile,
                "sla.notice_issued",
                sms_message(template=STAFF_SMS_TEMPLATE, params={"case": code, "notice": "通报"}),
            )
        ]
        if head.mobile
        else []
    )
    if head.wecom_userid:
        app = Outgoing("wecom_app", head.wecom_userid, "sla.notice_issued", app_text_message(to_head))
        out.append(
            with_fallback(
                app, [group] if group else [], head_sms or (group.fallback[0] if group and group.fallback else [])
            )
        )
    elif group is not None:
        out.append(with_fallback(group, head_sms or (group.fallback[0] if group.fallback else [])))
    return out


def accepted_messages(
    *, case_no: str, reporter: ReporterContact | None, at, templates: ReporterTemplates = ReporterTemplates()
) -> list[Outgoing]:
    """受理: the reporter learns at once that the report was taken, and the number to follow it by."""
    return reporter_messages(
        reporter,
        templates,
        template="report.accepted",
        case_ref=case_no,
        status="已受理",
        text=f"您反映的问题已受理，案件编号 {case_no}。处理进展会在这里告诉您，也可凭此编号在「我要查询」查看。",
        at=at,
        url=None,
    )


def acknowledged_messages(
    payload, *, reporter: ReporterContact | None, templates: ReporterTemplates = ReporterTemplates()
) -> list[Outgoing]:
    """接单: the reporter learns which department took the case."""
    department = field_of(payload, "department_name", payload.department_code)
    return reporter_messages(
        reporter,
        templates,
        template="case.acknowledged",
        case_ref=_case_ref(payload),
        status="已接单",
        text=f"您反映的问题（案件 {_case_ref(payload)}）已由{department}接单，正在处理。",
        at=field_of(payload, "at") or field_of(payload, "acknowledged_at"),
        url=None,
    )


def resolved_messages(payload, *, directory: Directory, evidence: dict[str, int] | None = None) -> list[Outgoing]:
    """办结: the command centre's group sees the case closed, with the before/after comparison
    (photo counts from the event, else from the evidence attached to the case)."""
    if not directory.command_center or directory.command_center not in directory.departments:
        return []
    contact = directory.departments[directory.command_center]
    department = field_of(payload, "department_name", payload.department_code)
    evidence = evidence or {}
    before = len(field_of(payload, "before_media_ids", ())) or evidence.get("before", 0)
    after = len(field_of(payload, "after_media_ids", ())) or evidence.get("after", 0)
    comparison_url = field_of(payload, "comparison_url")
    summary = field_of(payload, "result") or field_of(payload, "reason")  # dispatch puts the result in detail
    title = f"【办结】案件 {_case_ref(payload)} 已由{department}办结"
    if field_of(payload, "action") == "settle":  # 即知即改: settled on the spot by the grid worker
        title = f"【即知即改】案件 {_case_ref(payload)} 已由网格员现场处置"
    description = f"整改前后对比：整改前{before}张，整改后{after}张。" + (f"\n处理结果：{summary}" if summary else "")
    if comparison_url:
        body = news_message(
            title=title,
            description=description,
            url=field_of(payload, "case_url", comparison_url),
            picurl=comparison_url,
        )
        return [Outgoing("wecom_robot", contact.robot_key, "case.resolved", body)]
    return [Outgoing("wecom_robot", contact.robot_key, "case.resolved", text_message(f"{title}\n{description}"))]


def merged_messages(
    payload, *, reporter: ReporterContact | None, templates: ReporterTemplates = ReporterTemplates()
) -> list[Outgoing]:
    """一事多报: the reporter's case was merged into another on the same problem; they follow that one."""
    into = field_of(payload, "into_case_no") or str(field_of(payload, "into_case_id", ""))[:8]
    return reporter_messages(
        reporter,
        templates,
        template="case.merged",
        case_ref=_case_ref(payload),
        status="已合并办理",
        text=f"您反映的问题（案件 {_case_ref(payload)}）与案件 {into} 是同一问题，已合并办理，进展和结果会继续告知您。",
        at=field_of(payload, "at"),
        url=None,
    )


def comparison_messages(
    *, case_no: str, reporter: ReporterContact | None, url: str, templates: ReporterTemplates = ReporterTemplates()
) -> list[Outgoing]:
    """办结: the reporter is shown the before/after comparison (整改前后对比) where they reported — in
    the group, a line with the case number and the picture itself (the robot sends the image, fetched
    from `url` when sent); on the official account or WeCom, a message that opens the picture. Not
    by SMS: a text message cannot carry it."""
    if reporter is None:
        return []
    text = f"您反映的问题（案件 {case_no}）已办结，整改前后对比照片如下。"
    if reporter.group_robot:
        mention = [reporter.wecom_userid] if reporter.wecom_userid else []
        return [
            Outgoing(
                "wecom_robot", reporter.group_robot, "case.comparison", text_message(text, mentioned_users=mention)
            ),
            Outgoing("wecom_robot", reporter.group_robot, "case.comparison.image", robot_image_link(url), part="image"),
        ]
    if reporter.openid or reporter.wecom_userid:
        return reporter_messages(
            reporter,
            templates,
            template="case.comparison",
            case_ref=case_no,
            status="已办结",
            text=f"您反映的问题（案件 {case_no}）已办结，点开查看整改前后对比照片。",
            at=None,
            url=url,
        )
    return []


def verification_messages(
    payload, *, reporter: ReporterContact | None, templates: ReporterTemplates = ReporterTemplates()
) -> list[Outgoing]:
    """回访: the reporter is asked whether the problem is really solved — one tap on their own
    confirmation link, or a reply 1/2/3 where they reported."""
    confirm_url = reporter.confirm_url if reporter else None
    return reporter_messages(
        reporter,
        templates,
        template="case.verification",
        case_ref=_case_ref(payload),
        status="已办结，待回访",
        text=(
            f"您反映的问题（案件 {_case_ref(payload)}）已办结。"
            + ("请点击链接一键确认是否已解决，或" if confirm_url else "请您评价处理结果：")
            + "回复 1 满意，2 基本满意，3 不满意（问题仍未解决）。"
        ),
        at=field_of(payload, "at"),
        url=confirm_url or field_of(payload, "verification_url"),
    )


def reporter_messages(
    reporter: ReporterContact | None,
    templates: ReporterTemplates,
    *,
    template: str,
    case_ref: str,
    status: str,
    text: str,
    at,
    url: str | None,
) -> list[Outgoing]:
    """One message on the reporter's best channel, the others taking over in turn when it fails or
    is not confirmed; none when we have no way to reach them. Someone who reported by @-mentioning
    the bot in a WeCom group is answered first in that group, by its robot, @-mentioned (the AI bot's
    response_url is one call within an hour: too little for a case's life); then official account →
    WeCom → SMS."""
    if reporter is None:
        return []
    channels: list[Outgoing] = []
    if reporter.group_robot:
        content = text + (f"\n{url}" if url else "")
        mention = [reporter.wecom_userid] if reporter.wecom_userid else []
        channels.append(
            Outgoing("wecom_robot", reporter.group_robot, template, text_message(content, mentioned_users=mention))
        )
    if reporter.openid and templates.wechat_kind == "subscribe":
        body = subscribe_message(
            template_id=templates.wechat_template_id,
            page=url,
            data={
                "character_string1": case_ref,
                "phrase2": status[:5],
                "thing3": text,
                "time4": _china_time(at),
            },
        )
        channels.append(Outgoing("wechat_subscribe", reporter.openid, template, body))
    elif reporter.openid:
        body = template_message(
            template_id=templates.wechat_template_id,
            url=url,
            data={
                "first": text,
                "keyword1": case_ref,
                "keyword2": status,
                "keyword3": _china_time(at),
                "remark": "感谢您参与网格治理。",
            },
        )
        channels.append(Outgoing("wechat_template", reporter.openid, template, body))
    if reporter.wecom_userid:
        content = text + (f"\n{url}" if url else "")
        channels.append(Outgoing("wecom_app", reporter.wecom_userid, template, app_text_message(content)))
    if reporter.phone and reporter.phone_verified:
        channels.append(
            Outgoing(
                "sms",
                reporter.phone,
                template,
                sms_message(template=templates.sms_template, params={"case": case_ref, "status": status}),
            )
        )
    if not channels:
        return []
    return [with_fallback(channels[0], *([c] for c in channels[1:]))]


def _department(directory: Directory, code: str) -> DepartmentContact:
    contact = directory.departments.get(code)
    if contact is None:
        raise LookupError(f"department {code} has no WeCom group in the directory")
    return contact


def backoff_seconds(attempt: int, base: float) -> float:
    """Exponential backoff between delivery attempts, capped at 10 minutes."""
    return min(base * 2 ** (attempt - 1), 600.0)


# --- each robot's budget -------------------------------------------------------------------


@dataclass(frozen=True)
class RobotWindow:
    """When a robot last sent (within the window) and until when WeCom told us to hold off."""

    sent_at: tuple[datetime, ...] = ()
    blocked_until: datetime | None = None


@dataclass
class RobotPlan:
    picked: list[UUID] = field(default_factory=list)
    deferred: dict[UUID, datetime] = field(default_factory=dict)
    windows: dict[str, tuple[datetime, ...]] = field(default_factory=dict)
    # (robot, notifications) sent together as one digest message (派单汇总) each.
    digests: list[tuple[str, list[UUID]]] = field(default_factory=list)


def plan_robot_sends(
    candidates: list[tuple[UUID, str]],
    windows: dict[str, RobotWindow],
    *,
    now: datetime,
    per_minute: int,
    window_s: float = ROBOT_WINDOW_S,
    digest_lines: dict[UUID, str] | None = None,
    queued_at: dict[UUID, datetime] | None = None,
    digest_reserve: int = 0,
    digest_max_wait_s: float = 10.0,
    digest_max_bytes: int = 2048,
) -> RobotPlan:
    """Split (notification, robot) candidates, in order, into those a sliding one-minute window per
    robot allows now and those deferred until the robot's next free slot. A sliding log rather
    than a token bucket: a bucket refilled at 20/min still lets 40 through in one minute after a
    full burst, and WeCom answers that with 45009 and a longer throttle.

    With `digest_lines` (派单 that may be merged, each queued since `queued_at`), a robot sends 派单
    one by one only while they all fit in the slots beyond `digest_reserve`. Otherwise its queued
    派单 go out merged: a digest as soon as it is full (the next line would not fit), a partial one
    once its oldest 派单 has waited `digest_max_wait_s`. Full digests carry the most 派单 per slot,
    the wait bounds the rest, and the reserve keeps slots for both when a burst begins."""
    plan = RobotPlan()
    window = timedelta(seconds=window_s)
    max_wait = timedelta(seconds=digest_max_wait_s)
    lines = digest_lines or {}
    since = queued_at or {}
    by_robot: dict[str, list[UUID]] = {}
    for notification, robot in candidates:
        by_robot.setdefault(robot, []).append(notification)
    for robot, notifications in by_robot.items():
        state = windows.get(robot, RobotWindow())
        if state.blocked_until and state.blocked_until > now:
            plan.deferred.update({n: state.blocked_until for n in notifications})
            continue
        recent = sorted(t for t in state.sent_at if now - t < window)
        free = max(per_minute - len(recent), 0)
        quiet = sum(1 for n in notifications if n in lines) <= free - digest_reserve
        picked: list[UUID] = []
        held: list[UUID] = []
        merged: list[UUID] = []
        for n in notifications:
            if free > 0 and (n not in lines or quiet):
                picked.append(n)
                free -= 1
            else:
                (merged if n in lines else held).append(n)
        recent.extend([now] * len(picked))
        if merged:
            merged.sort(key=lambda n: since.get(n, now))
            chunks = chunk_lines([(n, lines[n]) for n in merged], max_bytes=digest_max_bytes)
            # Every chunk but the last is full; the last goes once its oldest has waited enough.
            due = chunks if now - since.get(chunks[-1][0], now) >= max_wait else chunks[:-1]
            sending = due[:free]
            for chunk in sending:
                if len(chunk) == 1:
                    picked.append(chunk[0])  # a digest of one is the message itself
                else:
                    plan.digests.append((robot, chunk))
            recent.extend([now] * len(sending))
            free -= len(sending)
            sent = {n for chunk in sending for n in chunk}
            waiting = [n for n in merged if n not in sent]
            if waiting:
                # Out of slots: the next free one. Otherwise only the partial digest is left, and
                # it goes when its oldest 派单 has waited enough.
                at = recent[len(recent) - per_minute] + window if free == 0 else since.get(waiting[0], now) + max_wait
                plan.deferred.update({n: at for n in waiting})
        plan.picked.extend(picked)
        if held:
            # The slot frees when the send `per_minute` places back leaves the window.
            next_free = recent[len(recent) - per_minute] + window
            plan.deferred.update({n: next_free for n in held})
        plan.windows[robot] = tuple(recent[-per_minute:])
    return plan


DIGEST_HEADER = "【派单汇总】本群消息已达每分钟上限，以下{n}件新派单合并发送，请逐件接单："
DIGEST_FOOTER = "请在平台逐件接单处置。"


def _digest_content(lines: list[str]) -> str:
    numbered = [f"{i}. {line}" for i, line in enumerate(lines, 1)]
    return "\n".join([DIGEST_HEADER.format(n=len(lines)), *numbered, DIGEST_FOOTER])


def chunk_lines(items: list[tuple[UUID, str]], *, max_bytes: int) -> list[list[UUID]]:
    """Consecutive runs of (notification, line) whose digest fits in `max_bytes`, in order."""
    chunks: list[list[UUID]] = []
    current: list[UUID] = []
    size = 0  # bytes of the numbered lines so far, each with its newline

    def fits(n: int, size: int) -> bool:
        frame = len(DIGEST_HEADER.format(n=n).encode()) + len(DIGEST_FOOTER.encode()) + 1
        return frame + size <= max_bytes

    for notification, line in items:
        added = len(f"{len(current) + 1}. {line}\n".encode())
        if current and not fits(len(current) + 1, size + added):
            chunks.append(current)
            current, size = [], 0
            added = len(f"1. {line}\n".encode())
        current.append(notification)
        size += added
    if current:
        chunks.append(current)
    return chunks


def digest_message(lines: list[str], *, mentioned_mobiles: Sequence[str], mentioned_users: Sequence[str] = ()) -> dict:
    """One robot message for several 派单 of the same group: a numbered line each, the group's
    handlers and the people on duty @-mentioned once."""
    return text_message(
        _digest_content(lines), mentioned_mobiles=list(mentioned_mobiles), mentioned_users=list(mentioned_users)
    )


# --- broadcasts -----------------------------------------------------------------------------


def select_groups(groups: list[Group], target: str) -> list[Group]:
    """The groups a broadcast reaches: "all", or those whose division code starts with `target`."""
    if target == "all":
        return list(groups)
    return [g for g in groups if g.jurisdiction_code.startswith(target)]


def broadcast_message(*, msgtype: str, content: str) -> dict:
    """The robot message every group of a broadcast receives."""
    return markdown_message(content) if msgtype == "markdown" else text_message(content)


# --- who may do what -----------------------------------------------------------------------


class Forbidden(Exception):
    """The actor may not do this; the message, in Chinese, says what to do instead."""


# 政策宣传 speaks to every household of a place in the county's name: it is published by those who
# answer for what the county says (supervisors, admins). Dispatchers route cases and are not in
# that chain; keeping them out also keeps small the circle that can message every resident group.
BROADCASTERS = frozenset({"supervisor", "admin"})
# A case's deliveries show which department robots and which reporter channels were used: the
# command centre's staff follow them up. Notify does not know a case's division, so this cannot
# narrow to the actor's jurisdiction the way dispatch does.
DELIVERY_READERS = frozenset({"dispatcher", "supervisor", "admin"})


def authorize_broadcast(actor: Actor, *, target: str, county_code: str) -> None:
    """Raise Forbidden unless the actor may send, or follow, a broadcast to `target`: a supervisor
    or admin whose jurisdiction holds every group the target reaches ("all" is the whole county)."""
    if actor.role not in BROADCASTERS:
        raise Forbidden("政策宣传只能由督查员或管理员发布和查看。请联系县指挥中心的督查员或管理员发布。")
    reach = county_code if target == "all" else target
    if not reach.startswith(actor.jurisdiction_code):
        raise Forbidden(
            f"您只能发布和查看 {actor.jurisdiction_code} 辖区内的政策宣传。"
            f"请把发布范围改为以 {actor.jurisdiction_code} 开头的区划代码，或请上级督查员发布。"
        )


def authorize_delivery_reading(actor: Actor) -> None:
    """Raise Forbidden unless the actor may read the deliveries of a case's notifications."""
    if actor.role not in DELIVERY_READERS:
        raise Forbidden(
            "只有调度员、督查员和管理员可以查看案件的通知送达情况。"
            "办理进度请在案件详情中查看；需要核实送达时请联系指挥中心调度员。"
        )


# --- inbound callbacks ----------------------------------------------------------------------

INBOUND_TYPES = {"text", "image", "location"}


def is_fresh(timestamp: str, *, now: float, max_age_s: float) -> bool:
    """A callback's timestamp (epoch seconds) lies within max_age of now, either way."""
    try:
        return abs(now - int(timestamp)) <= max_age_s
    except (TypeError, ValueError):
        return False


def inbound_message(fields: dict[str, str], *, source: str) -> dict | None:
    """MessageReceived fields from a decrypted callback, or None for what intake does not take
    (events such as subscribe, voice, video)."""
    msg_type = fields.get("MsgType", "")
    if msg_type not in INBOUND_TYPES or not fields.get("MsgId") or not fields.get("FromUserName"):
        return None
    message = {
        "message_id": uuid5(NOTIFICATION_NS, f"inbound|{source}|{fields['MsgId']}"),
        "source": source,
        "msg_id": fields["MsgId"],
        "from_user": fields["FromUserName"],
        "to_user": fields.get("ToUserName", ""),
        "msg_type": msg_type,
        "agent_id": fields.get("AgentID") or None,
    }
    try:
        message["sent_at"] = datetime.fromtimestamp(int(fields.get("CreateTime", "")), UTC)
    except ValueError:
        return None
    if msg_type == "text":
        message["content"] = fields.get("Content", "")
    elif msg_type == "image":
        message |= {"pic_url": fields.get("PicUrl"), "media_id": fields.get("MediaId")}
    else:
        try:
            message |= {"lat": float(fields["Location_X"]), "lng": float(fields["Location_Y"])}
        except (KeyError, ValueError):
            return None
        message |= {"label": fields.get("Label") or None, "datum": "gcj02"}
    return message


def template_receipt(fields: dict[str, str]) -> tuple[str, bool] | None:
    """The official account's report on a template message (event TEMPLATESENDJOBFINISH): its
    msgid and whether it reached the reader (Status "success"; "failed:user block" and
    "failed: system failed" did not). None for any other message."""
    if fields.get("MsgType") != "event" or fields.get("Event") != "TEMPLATESENDJOBFINISH" or not fields.get("MsgID"):
        return None
    return fields["MsgID"], fields.get("Status") == "success"


def aibot_message(data: dict, *, received_at: datetime) -> dict | None:
    """MessageReceived fields from a decrypted WeCom AI-bot (智能机器人) callback: someone @-mentioned
    the bot in a group (or wrote to it). Its JSON carries no send time, so the receipt time stands in."""
    msg_type, sender = data.get("msgtype"), (data.get("from") or {}).get("userid")
    if msg_type not in {"text", "image"} or not data.get("msgid") or not sender:
        return None
    group = data.get("chattype") == "group" and data.get("chatid")
    source = "wecom_group" if group else "wecom_aibot"
    message = {
        "message_id": uuid5(NOTIFICATION_NS, f"inbound|{source}|{data['msgid']}"),
        "source": source,
        "msg_id": data["msgid"],
        "from_user": sender,
        "to_user": data.get("aibotid", ""),
        "msg_type": msg_type,
        "group_id": data.get("chatid") if group else None,
        "response_url": data.get("response_url"),
        "sent_at": received_at,
    }
    if msg_type == "text":
        message["content"] = (data.get("text") or {}).get("content", "")
    else:
        message["pic_url"] = (data.get("image") or {}).get("url")
    return message


def query_code_messages(request, *, sms_template: str, now) -> list[Outgoing]:
    """我要查询: the one-time code, by SMS to the phone that asked (which travels encrypted)."""
    minutes = max(1, round((request.expires_at - now).total_seconds() / 60))
    return [
        Outgoing(
            "sms",
            request.phone_encrypted,
            "query.code",
            sms_message(template=sms_template, params={"code": request.code, "minutes": str(minutes)}),
        )
    ]


# --- staff acting on cases from WeCom (card buttons, commands to the AI bot) -------------------

# A command to the AI bot: its first word names the action, then the case number, then the words.
BOT_COMMANDS = {"接单": "acknowledge", "进展": "progress", "办结": "resolve", "查": "query"}
_BOT_COMMAND = re.compile(r"^(接单|进展|办结|查)[\s:：]+(\S+)(?:\s+(.*))?$", re.S)
_MENTION = re.compile(r"^(?:@\S+\s*)+")
# 退回 from a card carries no reason of its own: this one is recorded (dispatch requires one).
CARD_RETURN_REASON = "经办人在企业微信退回"


def staff_command_id(source: str, dedupe_key: str) -> UUID:
    """One id per click or bot message, however often WeCom delivers it."""
    return uuid5(NOTIFICATION_NS, f"staff|{source}|{dedupe_key}")


def strip_mention(text: str) -> str:
    """The text of a group message without the leading @-mentions (WeCom leaves them in)."""
    return _MENTION.sub("", (text or "").strip()).strip()


def parse_bot_command(text: str) -> tuple[str, str, str | None] | None:
    """(action, case number, the rest) of a command to the bot, or None for anything else (a report)."""
    match = _BOT_COMMAND.match(strip_mention(text))
    if not match:
        return None
    rest = (match.group(3) or "").strip() or None
    return BOT_COMMANDS[match.group(1)], match.group(2), rest


def card_click(fields: dict[str, str]) -> dict | None:
    """The staff command of a decrypted template-card click (Event=template_card_event) whose button
    is one of ours, with what notify keeps to answer it; None for any other callback."""
    if fields.get("MsgType") != "event" or fields.get("Event") != "template_card_event":
        return None
    user, key, task_id = fields.get("FromUserName", ""), fields.get("EventKey", ""), fields.get("TaskId", "")
    try:
        action, case_no = parse_card_button_key(key)
        sent_at = datetime.fromtimestamp(int(fields.get("CreateTime", "")), UTC)
    except (BadCardKey, ValueError):
        return None
    if not user:
        return None
    command_id = staff_command_id("card", f"{task_id}|{user}|{key}")
    return {
        "command": {
            "command_id": command_id,
            "source": "card",
            "wecom_user_id": user,
            "case_no": case_no,
            "action": CARD_ACTIONS[action],
            "text": CARD_RETURN_REASON if action == "return" else None,
            "sent_at": sent_at,
        },
        "response_code": fields.get("ResponseCode") or None,
        "task_id": task_id,
    }


def bot_command(data: dict, *, received_at: datetime) -> dict | None:
    """The staff command of a decrypted AI-bot callback whose text is a command (`text`, or `mixed`
    with its image items, e.g. 办结 with a photo), with the photo URLs to fetch and the
    response_url; None when it is no command (it stays a report)."""
    user = (data.get("from") or {}).get("userid")
    msg_type, msgid = data.get("msgtype"), data.get("msgid")
    if not user or not msgid:
        return None
    photo_urls: list[str] = []
    if msg_type == "text":
        text = (data.get("text") or {}).get("content", "")
    elif msg_type == "mixed":
        items = (data.get("mixed") or {}).get("msg_item") or []
        texts = [
            (i.get("text") or {}).get("content", "")
            for i in items
            if isinstance(i, dict) and i.get("msgtype") == "text"
        ]
        photo_urls = [
            (i.get("image") or {}).get("url", "")
            for i in items
            if isinstance(i, dict) and i.get("msgtype") == "image" and (i.get("image") or {}).get("url")
        ]
        text = " ".join(texts)
    else:
        return None
    parsed = parse_bot_command(text)
    if parsed is None:
        return None
    action, case_no, rest = parsed
    group = data.get("chatid") if data.get("chattype") == "group" else None
    return {
        "command": {
            "command_id": staff_command_id("bot", msgid),
            "source": "bot",
            "wecom_user_id": user,
            "case_no": case_no,
            "action": action,
            "text": rest,
            "group_id": group,
            "sent_at": received_at,
        },
        "photo_urls": photo_urls if action == "resolve" else [],
        "response_url": data.get("response_url") or None,
    }


def staff_photo_key(command_id: UUID, n: int) -> str:
    """Where a command's n-th photo is parked in the incoming bucket (media reads `staff/` as 整改后)."""
    return f"staff/{command_id}/{n}"


def decrypt_aibot_file(data: bytes, *, key: bytes) -> bytes:
    """A file the AI bot's media URL serves: AES-256-CBC with the callback key, IV = the key's first
    16 bytes, PKCS#7 padding to 32-byte blocks. Raises ValueError when it is not that."""
    if not data or len(data) % 16:
        raise ValueError("not whole AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= 32 or plain[-pad:] != bytes([pad]) * pad:
        raise ValueError("bad padding")
    return plain[:-pad]


def staff_answer_messages(answer, *, command) -> list[Outgoing]:
    """How dispatch's answer to a staff command reaches them: a card's button replaced (and the
    reason, when refused, as an application message), or one markdown reply through the bot's
    response_url. `command` is notify's row of the command (its response code or URL)."""
    out: list[Outgoing] = []
    if answer.source == "card":
        if command["response_code"]:
            button = {
                "replace_name": (answer.button_text or ("已处理" if answer.outcome == "done" else "未能处理"))[:16]
            }
            body = {"response_code": command["response_code"], "button": button}
            out.append(Outgoing("wecom_card_update", command["wecom_user_id"], "staff_card_update", body))
        if answer.outcome == "refused":
            out.append(
                Outgoing("wecom_app", command["wecom_user_id"], "staff_command_refused", app_text_message(answer.text))
            )
    elif command["response_url"]:
        body = {"msgtype": "markdown", "markdown": {"content": answer.text}}
        out.append(Outgoing("aibot_reply", command["response_url"], "staff_bot_reply", body))
    return out
