"""Messages to staff, in the Chinese they read: 派单 to a department's group (and its line in a
digest), the 接单/退回 card for the person on duty, a new report for its grid worker, 催办, 督办,
通报, and 办结 in the command centre's group; a group robot's message is taken over by SMS to the
group's people. Kept apart from reporters' messages: staff are reached through the directory and
duty rosters, reporters through their own contacts. Pure: handlers.py decides when, messages.py
shapes the bodies."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import quote

from services.notify.domain import (
    DepartmentContact,
    DepartmentHead,
    Directory,
    GridWorker,
    Group,
    OnDuty,
    Outgoing,
    as_datetime,
    case_ref_of,
    china_time,
    field_of,
    with_fallback,
)
from services.notify.messages import app_text_message, news_message, sms_message, text_message
from shared.events import CaseDispatched
from shared.sla_policy import SlaPolicy
from shared.wecom_cards import CARD_BUTTON_TEXT, card_button_key, card_task_id

PRIORITY_LABEL = {"urgent": "紧急", "normal": "一般"}
STAGE_LABEL = {
    "acknowledge": "接单",
    "joint_plan": "联合处置方案",
    "resolve": "办结",
    "verify": "回访",
    "arbitrate": "退单仲裁",
}
STAFF_SMS_TEMPLATE = "SMS_STAFF_NOTICE"


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
    case_no = case_ref_of(case)
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
            {"keyname": "派单时间", "value": china_time(case.dispatched_at)},
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
        f"【{label}】{PRIORITY_LABEL.get(case.priority, case.priority)} 案件 {case_ref_of(case)}\n"
        f"类别：{case.category_name}\n"
        f"承办：{case.department_name}\n"
        f"内容：{case.description}\n"
        + (f"原因：{reason}\n" if reason else "")
        + f"派单时间：{china_time(case.dispatched_at)}\n"
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
        return f"{china_time(case.dispatched_at + timedelta(minutes=float(duration.amount)))[-5:]}前接单"
    return f"{ack_time}内接单"


def digest_line(
    case: CaseDispatched, *, places: dict[str, str], deadline: str, co_handling: bool = False, url: str | None = None
) -> str:
    """One 派单 in a digest: case number, category, place and deadline (and its work page), in a
    few dozen bytes."""
    place = places.get(case.grid_code or "") or places.get(case.jurisdiction_code or "") or case.description[:12]
    label = "【协办】" if co_handling else ""
    return f"{label}{case_ref_of(case)}｜{case.category_name}｜{place}｜{deadline}" + (f" {url}" if url else "")


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
    description = _short(case.description, 60)
    content = (
        f"【网格新上报】您负责的{worker.grid_name}有新上报，案件 {case_ref_of(case)}：{case.category_name}"
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
        case_ref=case_ref_of(case),
        notice="网格新上报待转告",
    )
    return [with_fallback(message, [relay], *relay.fallback)]


def warning_messages(
    payload, *, directory: Directory, now: datetime, duty: OnDuty | None = None, console_url: str = ""
) -> list[Outgoing]:
    """催办: a deadline is near; the department's group is reminded, the person on duty and their
    backup @-mentioned (for 接单 this comes at half its time: nobody has claimed the 派单)."""
    contact = _department(directory, payload.department_code)
    stage = field_of(payload, "stage")
    due_at = as_datetime(field_of(payload, "due_at"))
    reminder = field_of(payload, "reminder", 1)
    priority = field_of(payload, "priority")
    # 接单 is reminded first at half its time (the policy's stage_warning_ratio): the 派单 is still
    # unclaimed, so the backup on duty is asked to help claim it.
    title = "【催接单】" if stage == "acknowledge" else "【催办】"
    lines = [
        f"{title}{'第' + str(reminder) + '次 ' if reminder > 1 else ''}"
        f"{PRIORITY_LABEL.get(priority, '') + ' ' if priority else ''}案件 {case_ref_of(payload)}"
        + ("，派单后仍未接单" if stage == "acknowledge" else "")
    ]
    if stage:
        lines.append(f"环节：{STAGE_LABEL.get(stage, stage)}")
    if due_at:
        minutes = max(int((due_at - now).total_seconds() // 60), 0)
        lines.append(f"时限：{china_time(due_at)}（还剩{minutes}分钟）")
    if duty is not None:
        lines.append(f"值班：{duty.name}" + (f"；备班：{duty.backup_name}" if duty.backup_name else ""))
    if stage != "acknowledge":
        lines.append("请尽快处理，逾期将转督办。")
    else:
        lines.append(f"请{'值班、备班人员协助' if duty else '尽快'}接单，逾期将转督办。")
    if url := work_page_url(console_url, field_of(payload, "case_no")):
        lines.append(f"处置页面：{url}")
    mentioned = [u for u in (duty.user_id, duty.backup_user_id) if u] if duty else []
    return [
        _robot(
            contact,
            "sla.warning",
            "\n".join(lines),
            case_ref=case_ref_of(payload),
            notice="催办",
            mentioned_users=mentioned,
        )
    ]


def breached_messages(payload, *, directory: Directory) -> list[Outgoing]:
    """督办: a deadline passed; the supervision office and the department's group are told."""
    contact = _department(directory, payload.department_code)
    stage = STAGE_LABEL.get(payload.stage, payload.stage)
    content = (
        f"【督办】案件 {case_ref_of(payload)} {stage}已超时\n"
        f"承办：{field_of(payload, 'department_name', payload.department_code)}\n"
        f"开始：{china_time(payload.started_at)}\n"
        f"时限：{china_time(payload.due_at)}\n"
    )
    ref = case_ref_of(payload)
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
        f"通报时间：{china_time(payload.issued_at)}\n"
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
    title = f"【办结】案件 {case_ref_of(payload)} 已由{department}办结"
    if field_of(payload, "action") == "settle":  # 即知即改: settled on the spot by the grid worker
        title = f"【即知即改】案件 {case_ref_of(payload)} 已由网格员现场处置"
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


def _department(directory: Directory, code: str) -> DepartmentContact:
    contact = directory.departments.get(code)
    if contact is None:
        raise LookupError(f"department {code} has no WeCom group in the directory")
    return contact
