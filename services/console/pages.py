"""The console's pages as plain HTML, rendered with the standard library: every value goes through
`e()` (html.escape), times are shown in Beijing time, codes by their Chinese names."""

import json
from datetime import UTC, datetime, timedelta, timezone
from html import escape
from typing import Any, get_args
from urllib.parse import quote

from shared.auth import Actor
from shared.case_actions import ACTIONS, ActionSpec
from shared.jurisdictions import County
from shared.taxonomy import Taxonomy

# China keeps UTC+8 all year (no daylight saving time): no time zone database is needed.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

STATUS_LABELS = {
    "submitted": "已上报",
    "triaged": "待派单",
    "dispatched": "待接单",
    "acknowledged": "已接单",
    "in_progress": "处置中",
    "returned": "已退回",
    "resolved": "待回访",
    "verified": "已回访",
    "closed": "已结案",
    "escalated": "已上报",
    "merged": "已合并",
    "cancelled": "已撤销",
}
PRIORITY_LABELS = {"urgent": "紧急", "normal": "一般"}
ROLE_LABELS = {
    "dispatcher": "调度员",
    "handler": "处置人员",
    "grid_worker": "网格员",
    "supervisor": "督查员",
    "admin": "管理员",
    "system": "系统",
    "reporter": "群众",
}
# How a reporter reached us (intake's channels), for the timeline's first step.
CHANNEL_LABELS = {
    "api": "接口",
    "h5": "H5 页面",
    "wechat_group": "微信群",
    "official_account": "公众号",
    "open311": "Open311",
}
STAGE_LABELS = {"acknowledge": "接单", "joint_plan": "联合处置方案", "resolve": "办结"}
# Timeline steps that are not case actions.
STEP_LABELS = {"submit": "群众上报", "report_attached": "一事多报", "located": "网格员定位", "overdue": "超时督办"}
# The step a case most likely waits for, first found first: its form is shown open.
PRIMARY = ("acknowledge", "resolve", "verify", "close", "dispatch")
# Fields of the request models without a description of their own.
FIELD_LABELS = {"comment": "评价或补充说明"}

# The queue's tabs: name → (label, dispatch filters; several statuses are asked one by one).
TABS: dict[str, tuple[str, list[dict[str, str]]]] = {
    "open": ("待接单", [{"status": "dispatched"}]),
    "working": ("处置中", [{"status": "acknowledged"}, {"status": "in_progress"}]),
    "resolved": ("待回访", [{"status": "resolved"}]),
    "overdue": ("已逾期", [{"overdue": "true"}]),
    "all": ("全部", [{}]),
}


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def beijing(value: str | datetime | None) -> str:
    """A time as staff read it: 2026-12-02 14:05 (Beijing)."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def lateness(due_at: str, now: datetime | None = None) -> str:
    """How late a deadline is, in words: 超时 2 小时 5 分."""
    minutes = int(((now or datetime.now(UTC)) - datetime.fromisoformat(due_at)).total_seconds() // 60)
    days, rest = divmod(max(minutes, 0), 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} 天"] * bool(days) + [f"{hours} 小时"] * bool(hours) + [f"{minutes} 分"]
    return "超时 " + " ".join(parts)


class Names:
    """Chinese names of divisions, departments and categories (the county map and the taxonomy)."""

    def __init__(self, county: County, taxonomy: Taxonomy):
        self.taxonomy = taxonomy
        self.divisions = {county.code: county.name}
        self.divisions |= {code: town.name for code, town in county.towns.items()}
        self.divisions |= {code: county.towns[v.town_code].name + v.name for code, v in county.villages.items()}
        self.grids = {code: grid.name for code, grid in county.grids.items()}

    def division(self, code: str | None) -> str:
        return self.divisions.get(code or "", code or "")

    def place(self, code: str | None) -> str:
        """A person's division: a grid worker's is their grid."""
        return self.grids.get(code or "") or self.division(code)

    def category(self, code: str | None) -> str:
        category = self.taxonomy.categories.get(code or "")
        return category.name if category else (code or "")

    def department(self, code: str | None) -> str:
        return self.taxonomy.department_name(code) if code in self.taxonomy.departments else (code or "")


def case_no(case: dict) -> str:
    return case.get("case_no") or str(case["case_id"])[:8]


def person(actor: Actor, names: Names) -> str:
    unit = names.department(actor.department_code) if actor.department_code else names.place(actor.jurisdiction_code)
    return f"{actor.name or actor.subject}（{unit}{ROLE_LABELS.get(actor.role, actor.role)}）"


def layout(*, title: str, body: str, actor: Actor | None = None, names: Names | None = None, csrf: str = "") -> str:
    header = ""
    if actor is not None and names is not None:
        supervision = '<a href="/supervision">督办</a>' if actor.role in ("dispatcher", "supervisor", "admin") else ""
        header = f"""<header class="top">
  <a class="brand" href="/">网格通 · 工作台</a>
  <nav><a href="/">案件队列</a>{supervision}</nav>
  <span class="who">{e(person(actor, names))}</span>
  <form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{e(csrf)}">
    <button type="submit" class="link">退出登录</button></form>
</header>"""
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} - 网格通</title>
<link rel="stylesheet" href="/static/console.css">
</head><body>
{header}
<main>
{body}
</main>
<script src="/static/console.js"></script>
</body></html>"""


def error_page(*, status: int, message: str, actor: Actor | None, names: Names | None, csrf: str = "") -> str:
    titles = {403: "无权查看", 404: "未找到", 502: "服务暂时不可用"}
    body = f"""<section class="error-page">
  <h1>{e(titles.get(status, "出错了"))}</h1>
  <p class="error" role="alert">{e(message)}</p>
  <p><a class="button" href="/">返回案件队列</a></p>
</section>"""
    return layout(title=titles.get(status, "出错了"), body=body, actor=actor, names=names, csrf=csrf)


def login_page(*, people: dict[str, dict], next_path: str, csrf: str, oidc: bool = False, error: str = "") -> str:
    provider = ""
    if oidc:
        start = f"/auth/start?next={quote(next_path)}"
        provider = f"""<p><a class="button" id="oidc-login" href="{e(start)}">使用统一身份认证登录</a></p>
<p class="hint">将跳转到单位统一身份认证页面，登录后自动返回工作台。</p>"""
    if people:
        choices = "\n".join(
            f'<label class="person"><input type="radio" name="person" value="{e(key)}"{" checked" * (i == 0)}>'
            f"<strong>{e(p['name'])}</strong><span>{e(p['title'])}</span></label>"
            for i, (key, p) in enumerate(people.items())
        )
        form = f"""<form method="post" action="/login" class="login">
  <input type="hidden" name="csrf_token" value="{e(csrf)}">
  <input type="hidden" name="next" value="{e(next_path)}">
  <fieldset><legend>开发环境：选择演示人员登录</legend>
  {choices}
  </fieldset>
  <button type="submit" id="login">登录</button>
</form>"""
    elif oidc:
        form = ""
    else:
        form = '<p class="error">本环境未配置统一身份认证（GRIDLINK_AUTH_OIDC_ISSUER），请联系系统管理员。</p>'
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    body = f"""<section class="card narrow">
<h1>网格通 · 工作台登录</h1>
{alert}
{provider}
{form}
</section>"""
    return layout(title="登录", body=body)


def queue_row(case: dict, names: Names) -> str:
    urgent = case.get("priority") == "urgent"
    overdue = case.get("overdue")
    return (
        f'<tr data-case="{e(case["case_id"])}" data-status="{e(case["status"])}"'
        f"{' class=urgent' * urgent}>"
        f'<td><a href="/cases/{e(case["case_id"])}">{e(case_no(case))}</a></td>'
        f"<td>{e(case.get('category_name') or case.get('category'))}</td>"
        f"<td>{e(case.get('department_name') or names.department(case.get('department_code')))}</td>"
        f"<td>{e(names.division(case.get('jurisdiction_code')))}</td>"
        f"<td>{'<b class=tag-urgent>紧急</b>' if urgent else '一般'}</td>"
        f"<td>{e(STATUS_LABELS.get(case['status'], case['status']))}</td>"
        f"<td>{e(beijing(case.get('created_at')))}</td>"
        f"<td>{'<b class=tag-overdue>逾期</b>' if overdue else '—'}</td></tr>"
    )


def queue_page(*, actor: Actor, names: Names, csrf: str, tab: str, q: str, cases: list[dict], error: str = "") -> str:
    tabs = "".join(
        f'<a href="/?tab={name}"{" class=active" * (name == tab)}>{label}</a>' for name, (label, _) in TABS.items()
    )
    # What the live feed may add to this tab: the statuses it lists (none while searching or for 已逾期).
    live = [] if q or tab == "overdue" else [f.get("status", "*") for f in TABS[tab][1]]
    rows = "\n".join(queue_row(c, names) for c in cases)
    empty = "" if cases else '<tr class="empty"><td colspan="8">暂无案件</td></tr>'
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    if q:
        alert += (
            f'<p class="hint">在全部状态中查找“{e(q)}”（案件编号或描述中的文字）。<a href="/?tab={tab}">清除</a></p>'
        )
    body = f"""<div id="banner" class="banner" hidden role="alert"></div>
<section class="toolbar">
  <nav class="tabs">{tabs}</nav>
  <form class="search" method="get" action="/">
    <input type="hidden" name="tab" value="{e(tab)}">
    <input type="search" name="q" value="{e(q)}" placeholder="案件编号或描述中的文字" id="q">
    <button type="submit">搜索</button>
  </form>
  <span id="live" class="live" title="新案件自动出现，无需刷新">● 实时</span>
</section>
{alert}
<table class="cases" id="queue" data-live="{e(json.dumps(live))}">
<thead><tr><th>案件编号</th><th>类别</th><th>主办部门</th><th>所在区划</th><th>紧急程度</th><th>状态</th>
<th>上报时间</th><th>逾期</th></tr></thead>
<tbody>
{rows}{empty}
</tbody></table>
<p class="hint">最多显示最新的 100 件；新案件自动出现，无需刷新；时间为北京时间。</p>"""
    return layout(title=TABS[tab][0], body=body, actor=actor, names=names, csrf=csrf)


def field_label(name: str, info: Any) -> str:
    return info.description or FIELD_LABELS.get(name) or name


def action_field(spec: ActionSpec, name: str, info: Any, names: Names, values: dict) -> str:
    """One form field for one field of an action's request model."""
    label = field_label(name, info)
    required = " required" * (name in spec.requires)
    mark = '<em class="required">*</em>' * (name in spec.requires)
    value = values.get(name, "")
    field_id = f"{spec.name}-{name}"
    if name == "after_media_ids":  # the photos are uploaded by the console, then named here
        control = (
            f'<input type="file" name="photos" id="{field_id}" accept="image/*" capture="environment" multiple'
            f"{required}>"
        )
        label = "整改后照片（可直接拍照）"
    elif name in ("department_code", "co_department_codes"):
        departments = names.taxonomy.departments
        multiple = " multiple" * (name == "co_department_codes")
        blank = '<option value="">请选择</option>' * (not multiple)
        options = "".join(
            f'<option value="{e(code)}"{" selected" * (code == value)}>{e(names.department(code))}</option>'
            for code in departments
        )
        control = f'<select name="{name}" id="{field_id}"{multiple}{required}>{blank}{options}</select>'
    elif name == "category":
        options = "".join(
            f'<option value="{e(c.code)}"{" selected" * (c.code == value)}>{e(c.name)}</option>'
            for c in names.taxonomy.categories.values()
        )
        control = (
            f'<select name="category" id="{field_id}"{required}><option value="">请选择</option>{options}</select>'
        )
    elif name == "priority":
        label = "紧急程度"
        options = "".join(f'<option value="{k}">{v}</option>' for k, v in PRIORITY_LABELS.items())
        control = f'<select name="priority" id="{field_id}"><option value="">不变</option>{options}</select>'
    elif name == "rating":
        options = "".join(f'<option value="{n}">{n} 分</option>' for n in range(5, 0, -1))
        control = f'<select name="rating" id="{field_id}"{required}>{options}</select>'
    elif int in get_args(info.annotation):
        control = f'<input type="number" name="{name}" id="{field_id}" min="1" value="{e(value)}"{required}>'
    elif name in ("reason", "result", "plan", "comment"):
        control = f'<textarea name="{name}" id="{field_id}" rows="2"{required}>{e(value)}</textarea>'
    else:
        control = f'<input type="text" name="{name}" id="{field_id}" value="{e(value)}"{required}>'
    return f'<label for="{field_id}">{e(label)}{mark}</label>{control}'


def action_form(
    case_id: str,
    spec: ActionSpec,
    names: Names,
    csrf: str,
    key: str,
    error: str = "",
    values: dict | None = None,
    primary: bool = False,
) -> str:
    """One action's form, folded under its name; the step most likely next (and a refused one) open."""
    fields = "\n".join(
        action_field(spec, name, info, names, values or {}) for name, info in spec.request.model_fields.items()
    )
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    opened = " open" * (primary or bool(error))
    return f"""<details class="action"{opened}><summary>{e(spec.label)}</summary>
<form method="post" action="/cases/{e(case_id)}/actions/{spec.name}" enctype="multipart/form-data"
  id="action-{spec.name}">
  {alert}
  <input type="hidden" name="csrf_token" value="{e(csrf)}">
  <input type="hidden" name="idempotency_key" value="{e(key)}">
  {fields}
  <button type="submit">{e(spec.label)}</button>
</form></details>"""


def actor_text(label: str) -> str:
    role, _, subject = label.partition(":")
    if role == "reporter":
        subject = CHANNEL_LABELS.get(subject, subject)
    return f"{ROLE_LABELS.get(role, role)} {subject}"


def case_page(
    *,
    actor: Actor,
    names: Names,
    csrf: str,
    case: dict,
    keys: dict[str, str],
    done: str = "",
    failed: tuple[str, str, dict] | None = None,
) -> str:
    """A case: facts, timeline, photos and one form per action the person may take now. `failed` is
    (action, Chinese message, submitted values) of a refused form, shown on that form."""
    facts = [
        ("案件编号", case_no(case)),
        ("状态", STATUS_LABELS.get(case["status"], case["status"])),
        ("类别", case.get("category_name") or case["category"]),
        ("紧急程度", PRIORITY_LABELS.get(case["priority"], case["priority"])),
        ("主办部门", case.get("department_name") or names.department(case.get("department_code"))),
        ("协办部门", "、".join(names.department(c) for c in case["co_department_codes"]) or "无"),
        ("所在区划", names.division(case["jurisdiction_code"])),
        ("网格", names.grids.get(case.get("grid_code") or "", "未定位")),
        ("上报时间", beijing(case["created_at"])),
        ("逾期", "是" if case["overdue"] else "否"),
        ("群众评价", f"{case['rating']} 分" if case.get("rating") else "—"),
    ]
    facts_html = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
    timeline = "".join(
        f"<li><time>{e(beijing(t['at']))}</time> <b>{e(step_label(t['action']))}</b>"
        f" <span class=muted>{e(actor_text(t['actor']))} → {e(STATUS_LABELS.get(t['status'], t['status']))}</span>"
        f"{timeline_note(t)}</li>"
        for t in case["timeline"]
    )
    photos = []
    for role, label in (("before", "整改前"), ("after", "整改后")):
        links = " ".join(
            f'<a href="/media/{e(m)}" target="_blank" class="photo-{role}">{label}照片 {i}</a>'
            for i, m in enumerate(case["media"][role], start=1)
        )
        photos.append(f"<p><b>{label}：</b>{links or '<span class=muted>无</span>'}</p>")
    offered = [name for name in case["actions"] if name in ACTIONS]
    if actor.department_code in case["acknowledged_departments"] and "acknowledge" in offered:
        offered.remove("acknowledge")  # this department has acknowledged already
    primary = next((name for name in PRIMARY if name in offered), None)
    offered.sort(key=lambda name: name != primary)
    forms = "\n".join(
        action_form(
            str(case["case_id"]),
            ACTIONS[name],
            names,
            csrf,
            keys[name],
            error=failed[1] if failed and failed[0] == name else "",
            values=failed[2] if failed and failed[0] == name else None,
            primary=name == primary,
        )
        for name in offered
    )
    done_html = f'<p class="done" role="status">已{e(ACTIONS[done].label)}。</p>' if done in ACTIONS else ""
    if failed and failed[0] not in offered:  # refused, and no longer offered: say so at the top
        done_html = f'<p class="error" role="alert">「{e(step_label(failed[0]))}」未完成：{e(failed[1])}</p>'

    body = f"""<p><a href="/">← 返回案件队列</a></p>
<h1>案件 {e(case_no(case))} <span class="status">{e(STATUS_LABELS.get(case["status"], ""))}</span></h1>
{done_html}
<div class="case">
<section class="card"><h2>案件信息</h2><dl class="facts">{facts_html}</dl>
<p class="description">{e(case["description"])}</p>
{"".join(photos)}</section>
<section class="card"><h2>可执行的操作</h2>
{forms or '<p class="muted">当前没有您可以执行的操作。</p>'}
</section>
<section class="card"><h2>办理过程</h2><ol class="timeline">{timeline}</ol></section>
</div>"""
    return layout(title=f"案件 {case_no(case)}", body=body, actor=actor, names=names, csrf=csrf)


def step_label(action: str) -> str:
    return ACTIONS[action].label if action in ACTIONS else STEP_LABELS.get(action, action)


def timeline_note(entry: dict) -> str:
    detail = entry.get("detail") or {}
    words = [entry.get("reason"), detail.get("result"), detail.get("plan"), detail.get("comment")]
    if detail.get("rating"):
        words.append(f"评价 {detail['rating']} 分")
    text = "；".join(str(w) for w in words if w)
    return f'<div class="note">{e(text)}</div>' if text else ""


def supervision_page(*, actor: Actor, names: Names, csrf: str, breaches: list[dict], error: str = "") -> str:
    rows = "".join(
        f'<tr><td><a href="/cases/{e(b["case_id"])}">{e(case_no(b))}</a></td>'
        f"<td>{e(names.department(b['department_code']))}</td>"
        f"<td>{e(names.division(b.get('jurisdiction_code')))}</td>"
        f"<td>{e(names.category(b.get('category')))}</td>"
        f"<td>{e(STAGE_LABELS.get(b['stage'], b['stage']))}</td>"
        f"<td>{e(beijing(b['due_at']))}</td><td class=late>{e(lateness(b['due_at']))}</td>"
        f"<td>{e(names.division(b['owner_code']))}</td></tr>"
        for b in breaches
    )
    empty = "" if breaches else '<tr class="empty"><td colspan="8">暂无督办事项</td></tr>'
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    body = f"""<h1>督办清单</h1>
{alert}
<table class="cases"><thead><tr><th>案件</th><th>责任部门</th><th>所在区划</th><th>类别</th><th>超时环节</th>
<th>期限</th><th>超时</th><th>办理中心</th></tr></thead>
<tbody>{rows}{empty}</tbody></table>
<p class="hint">时间为北京时间。</p>"""
    return layout(title="督办清单", body=body, actor=actor, names=names, csrf=csrf)
