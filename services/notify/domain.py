"""Notify's shared core: who can be reached (the department directory, people on duty, grid
workers, reporters' contacts, resident groups), the message a notification is (`Outgoing`) with
the channels that take over when it fails, the ids that keep a redelivered event from sending
twice, who a notification went to in words and who may read that, and the helpers every message
module reads event payloads with. Pure, no I/O: app.py loads the directory, the groups and the SLA
policy and hands them in; the messages are written in staff_messages.py and reporter_messages.py."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode
from uuid import NAMESPACE_URL, UUID, uuid5

from shared.auth import Actor

CHINA_TZ = timezone(timedelta(hours=8))
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
class GridWorker:
    user_id: str  # WeCom user id
    grid_name: str


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


def case_ref_of(payload) -> str:
    """The case as people quote it: its human number (案件编号, the one 我要查询 takes). Handlers
    fill it in from notify's own record of case numbers for events that do not carry it; only a
    case notify never saw opened falls back to the start of its id."""
    return field_of(payload, "case_no") or str(payload.case_id)[:8]


def as_datetime(value) -> datetime | None:
    """A datetime from a payload field that may be one or an ISO string (inside `detail`)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, datetime) and value.tzinfo else None


def china_time(at) -> str:
    at = as_datetime(at)
    return at.astimezone(CHINA_TZ).strftime("%m-%d %H:%M") if at else "—"


def backoff_seconds(attempt: int, base: float) -> float:
    """Exponential backoff between delivery attempts, capped at 10 minutes."""
    return min(base * 2 ** (attempt - 1), 600.0)


# --- who may read deliveries -----------------------------------------------------------------


class Forbidden(Exception):
    """The actor may not do this; the message, in Chinese, says what to do instead."""


# A case's deliveries show which department robots and which reporter channels were used: the
# command centre's staff follow them up. Notify does not know a case's division, so this cannot
# narrow to the actor's jurisdiction the way dispatch does.
DELIVERY_READERS = frozenset({"dispatcher", "supervisor", "admin"})


def authorize_delivery_reading(actor: Actor) -> None:
    """Raise Forbidden unless the actor may read the deliveries of a case's notifications."""
    if actor.role not in DELIVERY_READERS:
        raise Forbidden(
            "只有调度员、督查员和管理员可以查看案件的通知送达情况。"
            "办理进度请在案件详情中查看；需要核实送达时请联系指挥中心调度员。"
        )
