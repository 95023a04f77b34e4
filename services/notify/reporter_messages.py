"""Messages to the people who reported a problem: 受理 with the case number, 接单, 合并办理, 撤销
(with why), the before/after comparison and 回访 at 办结, and the 我要查询 code. Each goes on the reporter's best
channel (the WeCom group they reported in, official account, WeCom, a proven phone), the others
taking over in turn. Pure: handlers.py picks every reporter of a case, messages.py shapes the
bodies."""

from services.notify.domain import (
    Outgoing,
    ReporterContact,
    ReporterTemplates,
    case_ref_of,
    china_time,
    field_of,
    with_fallback,
)
from services.notify.messages import (
    app_text_message,
    robot_image_link,
    sms_message,
    subscribe_message,
    template_message,
    text_message,
)

# What a caller naming no templates gets; frozen, so one instance serves every call.
DEFAULT_TEMPLATES = ReporterTemplates()


def accepted_messages(
    *, case_no: str, reporter: ReporterContact | None, at, templates: ReporterTemplates = DEFAULT_TEMPLATES
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
    payload, *, reporter: ReporterContact | None, templates: ReporterTemplates = DEFAULT_TEMPLATES
) -> list[Outgoing]:
    """接单: the reporter learns which department took the case."""
    department = field_of(payload, "department_name", payload.department_code)
    return reporter_messages(
        reporter,
        templates,
        template="case.acknowledged",
        case_ref=case_ref_of(payload),
        status="已接单",
        text=f"您反映的问题（案件 {case_ref_of(payload)}）已由{department}接单，正在处理。",
        at=field_of(payload, "at") or field_of(payload, "acknowledged_at"),
        url=None,
    )


def merged_messages(
    payload, *, reporter: ReporterContact | None, templates: ReporterTemplates = DEFAULT_TEMPLATES
) -> list[Outgoing]:
    """一事多报: the reporter's case was merged into another on the same problem; they follow that one."""
    into = field_of(payload, "into_case_no") or str(field_of(payload, "into_case_id", ""))[:8]
    return reporter_messages(
        reporter,
        templates,
        template="case.merged",
        case_ref=case_ref_of(payload),
        status="已合并办理",
        text=f"您反映的问题（案件 {case_ref_of(payload)}）与案件 {into} 是同一问题，"
        "已合并办理，进展和结果会继续告知您。",
        at=field_of(payload, "at"),
        url=None,
    )


def cancelled_messages(
    payload,
    *,
    reporter: ReporterContact | None,
    found_on_site: bool,
    templates: ReporterTemplates = DEFAULT_TEMPLATES,
) -> list[Outgoing]:
    """撤销: the case ends without being handled — the centre would not take it, or the grid worker
    found on site that it is not so (现场核实 不属实). 件件有回音: the reporter hears why, and that
    they may report again if the problem is there."""
    ref = case_ref_of(payload)
    by = "经网格员现场核实，情况不属实" if found_on_site else "经指挥中心审核，不予办理"
    reason = (payload.reason or "").strip().rstrip("。")
    return reporter_messages(
        reporter,
        templates,
        template="case.cancelled",
        case_ref=ref,
        status="已撤销",
        text=f"您反映的问题（案件 {ref}）{by}"
        + (f"：{reason}" if reason else "")
        + "。案件已撤销；如问题仍然存在，请重新反映并附上现场照片。",
        at=field_of(payload, "at"),
        url=None,
    )


def comparison_messages(
    *, case_no: str, reporter: ReporterContact | None, url: str, templates: ReporterTemplates = DEFAULT_TEMPLATES
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
    payload, *, reporter: ReporterContact | None, templates: ReporterTemplates = DEFAULT_TEMPLATES
) -> list[Outgoing]:
    """回访: the reporter is asked whether the problem is really solved — one tap on their own
    confirmation link, or a reply 1/2/3 where they reported."""
    confirm_url = reporter.confirm_url if reporter else None
    return reporter_messages(
        reporter,
        templates,
        template="case.verification",
        case_ref=case_ref_of(payload),
        status="已办结，待回访",
        text=(
            f"您反映的问题（案件 {case_ref_of(payload)}）已办结。"
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
                "time4": china_time(at),
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
                "keyword3": china_time(at),
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
