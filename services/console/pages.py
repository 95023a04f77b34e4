"""The console's pages as plain HTML, rendered with the standard library: every value goes through
`e()` (html.escape), times are shown in Beijing time, codes by their Chinese names."""

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from html import escape
from typing import Any, get_args
from urllib.parse import quote

from services.console.maps import area_map, case_map, overview_map
from services.console.rlist import LEVEL_SCOPES, NOT_HERE, Row, scope_label
from shared.auth import Actor
from shared.case_actions import ACTIONS, FINDINGS, ActionSpec
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
    "grid_leader": "网格长",
    "group_owner": "网长",
}
# How a reporter reached us (intake's channels), for the timeline's first step.
CHANNEL_LABELS = {
    "api": "接口",
    "h5": "H5 页面",
    "wechat_group": "微信群",
    "official_account": "公众号",
    "open311": "Open311",
}
STAGE_LABELS = {"acknowledge": "接单", "joint_plan": "联合处置方案", "resolve": "办结", "arbitrate": "退单仲裁"}
# Timeline steps that are not case actions.
STEP_LABELS = {
    "submit": "群众上报",
    "report_attached": "一事多报",
    "located": "网格员定位",
    "overdue": "超时督办",
    "evidence_flagged": "照片存疑",
}
# The step a case most likely waits for, first found first: its form is shown open.
# A grid worker at a new report checks it first (核实), then may settle it (即知即改).
PRIMARY = ("acknowledge", "resolve", "check", "settle", "verify", "close", "dispatch")
# Fields the console's forms do not offer as fields: a return's evidence is given through the API;
# the phone's position is filled in by the mobile page's script (GEO_FIELDS), never typed.
API_ONLY_FIELDS = ("evidence_media_ids", "device_location")
# Photo fields: taken with the form (the camera on a phone), stored in media in this role first.
PHOTO_FIELDS = {
    "after_media_ids": ("after", "整改后照片（可直接拍照）"),
    "before_media_ids": ("before", "现场照片（可直接拍照）"),
}
# Fields a form asks first, whatever their place in the request model: what was found, before why.
FIRST_FIELDS = ("finding",)
# 核实's findings as the grid worker reads them on the form.
FINDING_CHOICES = {"confirmed": "情况属实", "unfounded": "情况不属实（案件将撤销）"}
# Fields of the request models without a description of their own.
FIELD_LABELS = {"comment": "评价或补充说明"}

# The queue's tabs: name → (label, dispatch filters; a tab of several parts asks them one by one).
OPEN_STATUSES = ["triaged", "dispatched", "acknowledged", "in_progress", "returned"]
TABS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    # 待分拨: cases no rule could place (triage unsure: 其他/无法判断, the centre's own) and cases a
    # department returned, both waiting for a dispatcher's decision.
    "triage": (
        "待分拨",
        [{"status": ["triaged", "returned"]}, {"status": ["dispatched"], "department_code": "grid_center"}],
    ),
    "open": ("待接单", [{"status": ["dispatched"]}]),
    "working": ("处置中", [{"status": ["acknowledged", "in_progress"]}]),
    "resolved": ("待回访", [{"status": ["resolved"]}]),
    "overdue": ("已逾期", [{"status": OPEN_STATUSES, "overdue": "true"}]),
    "all": ("全部", [{}]),
}
# Tabs only for those who place cases: a department's handler has nothing to dispatch.
DISPATCHING_TABS = {"triage"}
PAGE_SIZE = 50
# The queue's filters (query parameters of the page, passed on to dispatch under these names).
FILTERS = {
    "category": "category",
    "department": "department_code",
    "place": "jurisdiction_code",
    "priority": "priority",
}


def tabs_for(actor: Actor) -> list[str]:
    dispatching = actor.role in ("dispatcher", "supervisor", "admin")
    return [name for name in TABS if dispatching or name not in DISPATCHING_TABS]


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
        self.county = county
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
        if actor.role in BROADCASTERS:
            supervision += '<a href="/broadcasts/new">政策宣传</a>'
        if actor.role in ("dispatcher", "supervisor", "admin"):
            supervision += '<a href="/responsibility-list">责任清单</a>'
        if actor.role in LOCATORS:
            supervision = '<a href="/locate">待定位</a>' + supervision
        if actor.role == "admin":
            supervision += '<a href="/directory">通讯录</a>'
        everyone = '<a href="/scorecards">三率</a><a href="/screen">大屏</a>'
        header = f"""<header class="top">
  <a class="brand" href="/">网格通 · 工作台</a>
  <nav><a href="/">案件队列</a><a href="/map">地图</a>{supervision}{everyone}</nav>
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


def summary(case: dict, length: int = 24) -> str:
    """The first words of a report, with its address when it gave one, for a row of the queue."""
    text = " ".join(str(case.get("description") or "").split())
    text = text if len(text) <= length else text[: length - 1] + "…"
    return f"{text}（{case['address']}）" if case.get("address") else text


def queue_row(case: dict, names: Names) -> str:
    urgent = case.get("priority") == "urgent"
    overdue = case.get("overdue")
    return (
        f'<tr data-case="{e(case["case_id"])}" data-status="{e(case["status"])}"'
        f"{' class=urgent' * urgent}>"
        f'<td><a href="/cases/{e(case["case_id"])}">{e(case_no(case))}</a></td>'
        f"<td>{e(case.get('category_name') or case.get('category'))}</td>"
        f'<td class="summary" title="{e(case.get("description"))}">{e(summary(case))}</td>'
        f"<td>{e(case.get('department_name') or names.department(case.get('department_code')))}</td>"
        f"<td>{e(names.division(case.get('jurisdiction_code')))}</td>"
        f"<td>{'<b class=tag-urgent>紧急</b>' if urgent else '一般'}</td>"
        f"<td>{e(STATUS_LABELS.get(case['status'], case['status']))}</td>"
        f"<td>{e(beijing(case.get('created_at')))}</td>"
        f"<td>{'<b class=tag-overdue>逾期</b>' if overdue else '—'}</td></tr>"
    )


def filter_form(*, actor: Actor, names: Names, tab: str, q: str, chosen: dict[str, str]) -> str:
    """The queue's filters: category, department, town, priority, reporting dates."""

    def select(name: str, label: str, options: list[tuple[str, str]]) -> str:
        items = "".join(
            f'<option value="{e(value)}"{" selected" * (chosen.get(name) == value)}>{e(text)}</option>'
            for value, text in options
        )
        return (
            f'<label for="f-{name}">{label}</label>'
            f'<select name="{name}" id="f-{name}"><option value="">全部</option>{items}</select>'
        )

    towns = [
        (code, names.division(code))
        for code in names.divisions
        if len(code) == 9 and code.startswith(actor.jurisdiction_code)
    ]
    place = chosen.get("place", "")
    if place and place not in dict(towns):  # a village or grid chosen on the map: keep it selectable
        towns.insert(0, (place, names.place(place)))
    parts = [
        select("category", "类别", [(c.code, c.name) for c in names.taxonomy.categories.values()]),
        select("department", "部门", [(code, names.department(code)) for code in names.taxonomy.departments])
        if actor.role != "handler"
        else "",
        select("place", "区划", towns) if towns else "",
        select("priority", "紧急程度", list(PRIORITY_LABELS.items())),
        f'<label for="f-since">上报日期</label><input type="date" name="since" id="f-since"'
        f' value="{e(chosen.get("since", ""))}"><label for="f-until">至</label>'
        f'<input type="date" name="until" id="f-until" value="{e(chosen.get("until", ""))}">',
    ]
    return f"""<form class="filters" method="get" action="/" aria-label="筛选">
  <input type="hidden" name="tab" value="{e(tab)}">
  <label for="q">查找</label>
  <input type="search" name="q" value="{e(q)}" placeholder="案件编号、描述或地址" id="q">
  {"".join(parts)}
  <button type="submit">筛选</button>
  {'<a href="/?tab=' + e(tab) + '">清除条件</a>' if q or any(chosen.values()) else ""}
</form>"""


def queue_page(
    *,
    actor: Actor,
    names: Names,
    csrf: str,
    tab: str,
    q: str,
    cases: list[dict],
    error: str = "",
    chosen: dict[str, str] | None = None,
    next_cursor: str | None = None,
    paged: bool = False,
    notice: str = "",
) -> str:
    chosen = chosen or {}
    tabs = "".join(
        f'<a href="/?tab={name}"{" class=active" * (name == tab)}>{TABS[name][0]}</a>' for name in tabs_for(actor)
    )
    # What the live feed may add to this tab: the statuses it lists; nothing while searching,
    # filtering or on a later page (the page would no longer be what its conditions say).
    narrowed = bool(q) or any(chosen.values()) or paged or tab == "overdue"
    live = [] if narrowed else [status for f in TABS[tab][1] for status in f.get("status", ["*"])]
    rows = "\n".join(queue_row(c, names) for c in cases)
    empty = "" if cases else '<tr class="empty"><td colspan="9">暂无案件</td></tr>'
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    if q:
        alert += f'<p class="hint">在全部状态中查找“{e(q)}”（案件编号、描述或地址中的文字）。</p>'
    conditions = "&".join(f"{k}={e(v)}" for k, v in ({"tab": tab, "q": q} | chosen).items() if v)
    more = ""
    if next_cursor:
        more = f'<a class="button" id="next-page" href="/?{conditions}&amp;cursor={e(next_cursor)}">下一页</a>'
    if paged:
        more = f'<a class="button" href="/?{conditions}">回到第一页</a> ' + more
    calendar = f'<p class="notice" role="status">{e(notice)}</p>' if notice else ""
    body = f"""<div id="banner" class="banner" hidden role="alert"></div>
{calendar}
<section class="toolbar">
  <nav class="tabs">{tabs}</nav>
  <span id="live" class="live" title="新案件自动出现，无需刷新">● 实时</span>
</section>
{filter_form(actor=actor, names=names, tab=tab, q=q, chosen=chosen)}
{alert}
<table class="cases" id="queue" data-live="{e(json.dumps(live))}">
<thead><tr><th>案件编号</th><th>类别</th><th>问题</th><th>主办部门</th><th>所在区划</th><th>紧急程度</th><th>状态</th>
<th>上报时间</th><th>逾期</th></tr></thead>
<tbody>
{rows}{empty}
</tbody></table>
<p class="pager">{more}</p>
<p class="hint">每页 {PAGE_SIZE} 件，最新的在前；{"新案件自动出现，无需刷新；" if live else ""}时间为北京时间。</p>"""
    return layout(title=TABS[tab][0], body=body, actor=actor, names=names, csrf=csrf)


def field_label(name: str, info: Any) -> str:
    return info.description or FIELD_LABELS.get(name) or name


def action_field(
    spec: ActionSpec, name: str, info: Any, names: Names, values: dict, optional: frozenset[str] = frozenset()
) -> str:
    """One form field for one field of an action's request model (`optional`: required fields the
    page already holds, such as 整改后 photos uploaded before)."""
    label = field_label(name, info)
    needed = name in spec.requires and name not in optional
    required = " required" * needed
    mark = '<em class="required">*</em>' * needed
    value = values.get(name, "")
    field_id = f"{spec.name}-{name}"
    if name in PHOTO_FIELDS:  # the photos are uploaded by the console, then named here
        control = (
            f'<input type="file" name="photos" id="{field_id}" accept="image/*" capture="environment" multiple'
            f"{required}>"
        )
        label = PHOTO_FIELDS[name][1]
    elif name == "finding":  # one of two answers, each a thumb-sized choice
        choices = "".join(
            f'<label class="choice"><input type="radio" name="finding" value="{key}" id="{field_id}-{key}"'
            f"{' checked' * (value == key)}{required}> {text}</label>"
            for key, text in FINDING_CHOICES.items()
        )
        return f'<fieldset class="choices" id="{field_id}"><legend>{e(label)}{mark}</legend>{choices}</fieldset>'
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
    url: str = "",
    extra: str = "",
    optional: frozenset[str] = frozenset(),
) -> str:
    """One action's form, folded under its name; the step most likely next (and a refused one) open.
    `url`: where it posts (the case page's own route by default); `extra`: more hidden fields."""
    ordered = sorted(spec.request.model_fields.items(), key=lambda item: item[0] not in FIRST_FIELDS)
    fields = "\n".join(
        action_field(spec, name, info, names, values or {}, optional)
        for name, info in ordered
        if name not in API_ONLY_FIELDS
    )
    url = url or f"/cases/{case_id}/actions/{spec.name}"
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    # On the phone (`extra` carries its position): an action that keeps the position says whether it has it.
    if extra and "device_location" in spec.request.model_fields:
        fields += '\n  <p class="geo-status muted" role="status">正在获取手机位置……</p>'

    opened = " open" * (primary or bool(error))
    return f"""<details class="action"{opened}><summary>{e(spec.label)}</summary>
<form method="post" action="{e(url)}" enctype="multipart/form-data"
  id="action-{spec.name}">
  {alert}
  <input type="hidden" name="csrf_token" value="{e(csrf)}">
  <input type="hidden" name="idempotency_key" value="{e(key)}">{extra}
  {fields}
  <button type="submit">{e(spec.label)}</button>
</form></details>"""


def actor_text(label: str) -> str:
    role, _, subject = label.partition(":")
    if role == "reporter":
        subject = CHANNEL_LABELS.get(subject, subject)
    return f"{ROLE_LABELS.get(role, role)} {subject}"


def remaining(seconds: float) -> str:
    """Time left or over, in words staff read at a glance: 剩余 1 小时 5 分 / 超时 3 分."""
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} 天"] * bool(days) + [f"{hours} 小时"] * bool(hours) + [f"{minutes} 分"]
    return ("剩余 " if seconds >= 0 else "超时 ") + " ".join(parts)


def stop_label(reason: str) -> str:
    """Why a clock stopped (sla's stop_reason: the case event that stopped it) in words."""
    kind, _, action = reason.partition(":")
    if kind == "dispatched":  # a new round of clocks began (转派, 重办, 上报)
        return f"已结束（{ACTIONS[action].label if action in ACTIONS else '重新派单'}）"
    step = next((spec.label for spec in ACTIONS.values() if spec.event_type == f"case.{kind}"), kind)
    return f"已结束（{step}）"


def clock_row(timer: dict, names: Names, now: datetime) -> str:
    """One deadline: its stage, department, due time and its state; a running one counts down."""
    due = datetime.fromisoformat(timer["due_at"])
    if timer.get("stopped_at"):
        state = stop_label(timer.get("stop_reason") or "")
        if timer.get("fired_at"):
            state += "（曾超时）"
        cell = f'<span class="muted">{e(state)}</span>'
    elif timer.get("paused_at"):
        cell = '<span class="paused">已暂停（延期审批或等待群众答复中）</span>'
    else:
        left = (due - now).total_seconds()
        css = "late" if left < 0 else "soon" if now >= datetime.fromisoformat(timer["warn_at"]) else ""
        cell = f'<span class="countdown {css}" data-due="{e(due.isoformat())}">{e(remaining(left))}</span>'
    return (
        f"<tr><td>{e(STAGE_LABELS.get(timer['stage'], timer['stage']))}</td>"
        f"<td>{e(names.department(timer['department_code']))}</td>"
        f"<td>{e(beijing(timer['due_at']))}</td><td>{cell}</td></tr>"
    )


def clocks_section(timers: list[dict] | None, names: Names, now: datetime | None = None) -> str:
    if timers is None:
        body = '<p class="error" role="alert">时限服务暂时不可用，期限稍后显示；其他信息和操作不受影响。</p>'
    elif not timers:
        body = '<p class="muted">暂无计时。</p>'
    else:
        rows = "".join(clock_row(t, names, now or datetime.now(UTC)) for t in timers)
        body = (
            '<table class="clocks"><thead><tr><th>环节</th><th>部门</th><th>期限</th><th>状态</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    return f'<section class="card"><h2>办理时限</h2>{body}</section>'


def map_section(case: dict, names: Names, tiles_url: str) -> str:
    drawn = case_map(
        county=names.county,
        grid_code=case.get("grid_code"),
        lat=case.get("lat"),
        lng=case.get("lng"),
        tiles_url=tiles_url,
    )
    address = f"<p>地址：{e(case['address'])}</p>" if case.get("address") else ""
    if not drawn:
        drawn = '<p class="muted">尚未定位，等待网格员核实位置。</p>'
    return f'<section class="card"><h2>位置</h2>{address}{drawn}</section>'


def offered_actions(actor: Actor, case: dict) -> tuple[list[str], str | None]:
    """The actions to offer on a case page — those dispatch says the person may take now (the
    action table and the case's state decide) — the one most likely next first, and that one."""
    offered = [name for name in case["actions"] if name in ACTIONS]
    if actor.department_code in case["acknowledged_departments"] and "acknowledge" in offered:
        offered.remove("acknowledge")  # this department has acknowledged already
    primary = next((name for name in PRIMARY if name in offered), None)
    offered.sort(key=lambda name: name != primary)
    return offered, primary


def action_forms(
    *,
    case: dict,
    offered: list[str],
    primary: str | None,
    names: Names,
    csrf: str,
    keys: dict[str, str],
    failed: tuple[str, str, dict] | None = None,
    url: Callable[[str], str] | None = None,
    extra: str = "",
    optional: frozenset[str] = frozenset(),
) -> str:
    """The forms of the offered actions, the refused one showing its error and what was typed.
    `url(name)`: where each posts (the case page's own route by default)."""
    return "\n".join(
        action_form(
            str(case["case_id"]),
            ACTIONS[name],
            names,
            csrf,
            keys[name],
            error=failed[1] if failed and failed[0] == name else "",
            values=failed[2] if failed and failed[0] == name else None,
            primary=name == primary,
            url=url(name) if url else "",
            extra=extra,
            optional=optional,
        )
        for name in offered
    )


def checked_words(case: dict) -> str:
    """What the case's 现场核实 found, in words: 未核实 before any."""
    if not case.get("checked_at"):
        return "未核实"
    check = next((t for t in reversed(case["timeline"]) if t["action"] == "check"), None)
    finding = ((check or {}).get("detail") or {}).get("finding")
    found = FINDINGS.get(finding or "", "已核实")
    if finding == "unfounded":
        found += "，案件已撤销"
    return f"{found}（{beijing(case['checked_at'])}）"


def case_page(
    *,
    actor: Actor,
    names: Names,
    csrf: str,
    case: dict,
    keys: dict[str, str],
    done: str = "",
    failed: tuple[str, str, dict] | None = None,
    timers: list[dict] | None = None,
    tiles_url: str = "",
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
        ("现场核实", checked_words(case)),
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
            f'<a href="/media/{e(m)}" target="_blank" class="photo-{role}" title="{label}照片 {i}">'
            f'<img src="/media/{e(m)}" alt="{label}照片 {i}" loading="lazy" class="thumb"></a>'
            for i, m in enumerate(case["media"][role], start=1)
        )
        photos.append(f"<p><b>{label}：</b>{links or '<span class=muted>无</span>'}</p>")
    if case["media"]["before"] and case["media"]["after"]:
        photos.append(
            f'<p><b>整改前后对比：</b><a href="/cases/{e(case["case_id"])}/comparison.jpg" target="_blank">'
            f'<img src="/cases/{e(case["case_id"])}/comparison.jpg" alt="整改前后对比图" loading="lazy"'
            ' class="comparison"></a></p>'
        )
    offered, primary = offered_actions(actor, case)
    forms = action_forms(case=case, offered=offered, primary=primary, names=names, csrf=csrf, keys=keys, failed=failed)
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
{clocks_section(timers, names)}
{map_section(case, names, tiles_url)}
<section class="card"><h2>办理过程</h2><ol class="timeline">{timeline}</ol></section>
</div>"""
    return layout(title=f"案件 {case_no(case)}", body=body, actor=actor, names=names, csrf=csrf)


def step_label(action: str) -> str:
    return ACTIONS[action].label if action in ACTIONS else STEP_LABELS.get(action, action)


def timeline_note(entry: dict) -> str:
    detail = entry.get("detail") or {}
    words = [FINDINGS.get(detail.get("finding") or "")]  # 核实: what the grid worker found
    words += [entry.get("reason"), detail.get("result"), detail.get("plan"), detail.get("comment")]
    if detail.get("rating"):
        words.append(f"评价 {detail['rating']} 分")
    # What media's checks found about a photo (media's flag codes, e.g. reused_photo), for the dispatcher.
    if detail.get("flags"):
        words.append(f"媒体核验存疑：{'、'.join(detail['flags'])}")
    if detail.get("flagged_media"):
        words.append(f"所附整改后照片中 {len(detail['flagged_media'])} 张存疑，请核实")
    if detail.get("before_media_ids"):
        words.append(f"现场照片 {len(detail['before_media_ids'])} 张")
    if isinstance(where := detail.get("device_location"), dict) and where.get("lat") is not None:
        accuracy = f"，误差约 {where['accuracy_m']:.0f} 米" if where.get("accuracy_m") is not None else ""
        words.append(f"核实时手机位置 {where['lat']:.5f}, {where['lng']:.5f}{accuracy}")
    text = "；".join(str(w) for w in words if w)
    return f'<div class="note">{e(text)}</div>' if text else ""


def notices_section(notices: list[dict], names: Names) -> str:
    """通报: each department that missed deadlines again and again, with the cases that counted."""
    if not notices:
        return ""
    items = "".join(
        f"<li><b>{e(names.department(n['department_code']))}</b> {e(n['days'])}天内超时 {e(n['breaches'])} 次"
        f"（{e(beijing(n['since']))} 起，{e(beijing(n['issued_at']))} 通报）："
        + "、".join(e(no) for no in n.get("case_nos") or [])
        + "</li>"
        for n in notices
    )
    return f'<section class="notices"><h2>通报</h2><ul>{items}</ul></section>'


def supervision_page(
    *, actor: Actor, names: Names, csrf: str, breaches: list[dict], notices: Sequence[dict] = (), error: str = ""
) -> str:
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
{notices_section(list(notices), names)}
<table class="cases"><thead><tr><th>案件</th><th>责任部门</th><th>所在区划</th><th>类别</th><th>超时环节</th>
<th>期限</th><th>超时</th><th>办理中心</th></tr></thead>
<tbody>{rows}{empty}</tbody></table>
<p class="hint">时间为北京时间。</p>"""
    return layout(title="督办清单", body=body, actor=actor, names=names, csrf=csrf)


def map_page(*, actor: Actor, names: Names, csrf: str, grids: list[dict], tiles_url: str, error: str = "") -> str:
    """Open cases by grid, coloured by overdue; the busiest grids listed beside the map."""
    load = {g["grid_code"]: (g["open"], g["overdue"]) for g in grids if g["grid_code"]}
    unplaced = next((g["open"] for g in grids if not g["grid_code"]), 0)
    drawn = overview_map(county=names.county, jurisdiction_code=actor.jurisdiction_code, load=load, tiles_url=tiles_url)
    busiest = sorted((g for g in grids if g["grid_code"]), key=lambda g: (-g["overdue"], -g["open"]))[:15]
    rows = "".join(
        f'<tr><td><a href="/?tab=all&amp;place={e(g["grid_code"])}">{e(names.place(g["grid_code"]))}</a></td>'
        f"<td>{g['open']}</td><td>{'<b class=tag-overdue>' + str(g['overdue']) + '</b>' if g['overdue'] else 0}</td>"
        f"<td>{g['urgent']}</td></tr>"
        for g in busiest
    )
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    unplaced_text = f"；另有 {unplaced} 件尚未定位" if unplaced else ""
    body = f"""<h1>在办案件分布</h1>
{alert}
<p class="legend"><span class="swatch grid-overdue"></span>有逾期案件 <span class="swatch grid-open"></span>有在办案件
<span class="swatch grid-quiet"></span>无在办案件 · 点击网格查看其案件{unplaced_text}</p>
<div class="map-page">
<div class="map-frame">{drawn or '<p class="muted">本辖区没有网格数据。</p>'}</div>
<table class="cases"><caption>逾期和在办最多的网格</caption>
<thead><tr><th>网格</th><th>在办</th><th>逾期</th><th>紧急</th></tr></thead>
<tbody>{rows or '<tr class="empty"><td colspan="4">暂无在办案件</td></tr>'}</tbody></table>
</div>"""
    return layout(title="在办案件分布", body=body, actor=actor, names=names, csrf=csrf)


# Who may publish policy broadcasts (notify decides; the console only offers the page to them).
BROADCASTERS = ("supervisor", "admin")
MSGTYPES = {"markdown": "图文（Markdown）", "text": "纯文本"}


def broadcast_scopes(actor: Actor, names: Names) -> list[tuple[str, str]]:
    """Where a person may broadcast: their whole division, then each town in it."""
    scopes = [(actor.jurisdiction_code, f"{names.division(actor.jurisdiction_code)}（全部）")]
    return scopes + [
        (code, names.division(code)) for code in names.county.towns if code.startswith(actor.jurisdiction_code)
    ]


def widest(targets: list[str]) -> list[str]:
    """The chosen divisions without those inside another chosen one (a town inside its county)."""
    return [t for t in dict.fromkeys(targets) if not any(t != o and t.startswith(o) for o in targets)]


def broadcast_page(
    *,
    actor: Actor,
    names: Names,
    csrf: str,
    key: str,
    content: str = "",
    msgtype: str = "markdown",
    targets: list[str] | None = None,
    reach: dict[str, int] | None = None,
    error: str = "",
) -> str:
    """政策宣传: write, choose divisions, preview (what a group sees, how many groups: `reach`, from
    notify, per chosen division), then send."""
    targets = targets or []
    boxes = "".join(
        f'<label class="scope"><input type="checkbox" name="target" value="{e(code)}"'
        f"{' checked' * (code in targets)}> {e(label)}</label>"
        for code, label in broadcast_scopes(actor, names)
    )
    kinds = "".join(f'<option value="{k}"{" selected" * (k == msgtype)}>{v}</option>' for k, v in MSGTYPES.items())
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    shown = ""
    if reach is not None and not error:
        total = sum(reach.values())
        chosen = "、".join(names.division(t) for t in reach)
        hidden = "".join(f'<input type="hidden" name="target" value="{e(t)}">' for t in reach)
        shown = f"""<section class="card preview" aria-label="预览">
<h2>预览：群里看到的样子</h2>
<div class="bubble">{e(content)}</div>
<p>发送到 <b>{e(chosen)}</b> 的 <b id="group-count">{total}</b> 个居民群，每个群的机器人每分钟最多 20 条，
会在几分钟内陆续送达。</p>
<form method="post" action="/broadcasts">
  <input type="hidden" name="csrf_token" value="{e(csrf)}">
  <input type="hidden" name="idempotency_key" value="{e(key)}">
  <input type="hidden" name="content" value="{e(content)}">
  <input type="hidden" name="msgtype" value="{e(msgtype)}">
  {hidden}
  <button type="submit" id="send">确认发送</button> <span class="muted">发送后无法撤回，请核对内容和范围。</span>
</form></section>"""
    body = f"""<h1>政策宣传</h1>
{alert}
<form method="post" action="/broadcasts/preview" class="card composer">
  <input type="hidden" name="csrf_token" value="{e(csrf)}">
  <label for="content">内容<em class="required">*</em></label>
  <textarea name="content" id="content" rows="8" required
    placeholder="如：【防汛提示】今晚有暴雨……">{e(content)}</textarea>
  <label for="msgtype">消息格式</label>
  <select name="msgtype" id="msgtype">{kinds}</select>
  <fieldset><legend>发送范围（可多选）<em class="required">*</em></legend>{boxes}</fieldset>
  <button type="submit" id="preview">预览</button>
</form>
{shown}"""
    return layout(title="政策宣传", body=body, actor=actor, names=names, csrf=csrf)


def broadcast_progress_page(*, actor: Actor, names: Names, csrf: str, progress: list[dict], error: str = "") -> str:
    """How far each broadcast got: sent, waiting, failed (and why); refreshes itself until done."""
    rows = "".join(
        f"<tr><td>{e(names.division(p['target']) if p['target'] != 'all' else '全县')}</td><td>{p['total']}</td>"
        f"<td>{p['sent']}</td><td>{p['pending']}</td><td>{p['failed']}</td>"
        f"<td>{'已完成' if p['done'] else '发送中'}</td><td>{e(beijing(p['created_at']))}</td></tr>"
        for p in progress
    )
    failures = "".join(
        f"<li>{e(f['recipient'])}：{e(f.get('last_error') or '发送失败')}（已尝试 {f['attempts']} 次）</li>"
        for p in progress
        for f in p["failures"]
    )
    done = all(p["done"] for p in progress)
    refresh = "" if done or error else '<meta http-equiv="refresh" content="3">'
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    body = f"""{refresh}<h1>政策宣传发送进度</h1>
{alert}
<table class="cases"><thead><tr><th>范围</th><th>群数</th><th>已送达</th><th>待发送</th><th>失败</th><th>状态</th>
<th>提交时间</th></tr></thead><tbody>{rows}</tbody></table>
{'<h2>未能送达的群</h2><ul class="failures">' + failures + "</ul>" if failures else ""}
<p class="hint">{"全部发送完毕。" if done else "正在发送，本页每 3 秒自动刷新。"}
<a href="/broadcasts/new">再发一条</a></p>"""
    return layout(title="政策宣传发送进度", body=body, actor=actor, names=names, csrf=csrf)


def rlist_scope_label(scope: str, names: Names) -> str:
    return scope_label(scope, names.divisions)


def rlist_row(row: Any, names: Names, index: int, editable: bool) -> str:
    """One row of the responsibility list: scope, category, lead, co-handlers, and its errors."""
    taxonomy = names.taxonomy
    co_text = "、".join(names.department(code) for code in row.co)
    errors = "".join(f'<p class="row-error" role="alert">{e(message)}</p>' for message in row.errors)
    invalid = ' class="invalid"' * bool(row.errors)
    if not editable:
        lead = "—" if row.scope == "county" else "不在本级办理" if row.lead == NOT_HERE else names.department(row.lead)
        return (
            f"<tr><td>{e(rlist_scope_label(row.scope, names))}</td><td>{e(names.category(row.category))}</td>"
            f"<td>{e(lead)}</td><td>{e(co_text) or '—'}</td></tr>"
        )
    categories = "".join(
        f'<option value="{e(c.code)}"{" selected" * (c.code == row.category)}>{e(c.name)}</option>'
        for c in taxonomy.categories.values()
    )
    if row.scope == "county":
        default = taxonomy.categories.get(row.category)
        lead = (
            f'<input type="hidden" name="lead" value=""><span class="muted">按分类：'
            f"{e(names.department(default.department_code) if default else '—')}</span>"
        )
    else:
        options = f'<option value="{NOT_HERE}"{" selected" * (row.lead == NOT_HERE)}>不在本级办理（上交）</option>'
        options += "".join(
            f'<option value="{e(code)}"{" selected" * (code == row.lead)}>{e(names.department(code))}</option>'
            for code in taxonomy.departments
        )
        lead = (
            f'<select name="lead" aria-label="第{index}行 主办部门"><option value="">请选择</option>{options}</select>'
        )
    return (
        f"<tr{invalid}>"
        f'<td><input name="scope" list="scopes" value="{e(rlist_scope_label(row.scope, names))}"'
        f' aria-label="第{index}行 适用范围" size="16"></td>'
        f'<td><select name="category" aria-label="第{index}行 类别"><option value="">（空行）</option>'
        f"{categories}</select></td>"
        f"<td>{lead}</td>"
        f'<td><input name="co" value="{e(co_text)}" aria-label="第{index}行 协办部门"'
        f' placeholder="部门全称，用顿号分隔" size="28">{errors}</td></tr>'
    )


def rlist_page(
    *,
    actor: Actor,
    names: Names,
    csrf: str,
    current_version: str,
    rows: list[Any],
    versions: list[dict],
    editable: bool,
    version: str = "",
    errors: list[str] | None = None,
    done: str = "",
) -> str:
    """责任清单: the list in force as a table (an editor for admins), its versions and what changed."""
    blank = [Row("town", "") for _ in range(5)] if editable else []  # new rules go here
    body_rows = "\n".join(rlist_row(row, names, i, editable) for i, row in enumerate(rows + blank, start=1))
    scopes = "".join(f'<option value="{e(label)}">' for label in LEVEL_SCOPES.values())
    scopes += "".join(f'<option value="{e(name)}">' for code, name in names.divisions.items() if len(code) > 6)
    alerts = "".join(f'<p class="error" role="alert">{e(message)}</p>' for message in errors or [])
    if any(row.errors for row in rows):
        alerts += '<p class="error" role="alert">有的行填写有误，已在该行标出，请修改后再发布。</p>'
    if done:
        alerts += f'<p class="done" role="status">已发布新版本 {e(done)}，新的案件即按此分派。</p>'
    history = "".join(
        f"<li><b>{e(v['version'])}</b> <span class=muted>{e(beijing(v['created_at']))} {e(v.get('created_by') or '')}"
        f"</span>{' （现行）' if v['version'] == current_version else ''}"
        + (
            f' <a href="/responsibility-list/diff?from={e(versions[i + 1]["version"])}&amp;to={e(v["version"])}">'
            "与上一版比较</a>"
            if i + 1 < len(versions)
            else ""
        )
        + "</li>"
        for i, v in enumerate(versions)
    )
    table = f"""<table class="cases rlist"><thead><tr><th>适用范围</th><th>类别</th><th>主办部门</th><th>协办部门</th>
</tr></thead><tbody>{body_rows}</tbody></table>"""
    if editable:
        table = f"""<form method="post" action="/responsibility-list" class="rlist-form">
<input type="hidden" name="csrf_token" value="{e(csrf)}">
<datalist id="scopes">{scopes}</datalist>
{table}
<p><label for="version">新版本号<em class="required">*</em></label>
<input name="version" id="version" value="{e(version)}" required placeholder="如 2026.2">
<button type="submit" id="publish">发布为新版本</button>
<span class="muted">发布后立即生效；已派出的案件不受影响。清空「类别」即删除该行，末尾空行可新增规则。</span></p>
</form>"""
    body = f"""<h1>责任清单 <span class="status">现行版本 {e(current_version)}</span></h1>
{alerts}
<p class="hint">县级的主办部门按事件分类确定；各乡镇、各村的规则适用于所有乡镇、村，可按区划代码单独调整。</p>
{table}
<section class="card"><h2>历史版本</h2><ol class="versions">{history}</ol></section>"""
    return layout(title="责任清单", body=body, actor=actor, names=names, csrf=csrf)


def rlist_diff_page(
    *, actor: Actor, names: Names, csrf: str, older: str, newer: str, changes: list[Any], error: str = ""
) -> str:
    """What changed between two versions of the responsibility list."""

    def lead(row: Any) -> str:
        if row is None:
            return "—"
        if row.scope == "county":
            return "协办：" + ("、".join(names.department(c) for c in row.co) or "无")
        text = "不在本级办理" if row.lead == NOT_HERE else names.department(row.lead)
        return text + (f"；协办：{'、'.join(names.department(c) for c in row.co)}" if row.co else "")

    rows = "".join(
        f'<tr class="change-{ {"新增": "added", "删除": "removed", "修改": "changed"}[c.kind] }">'
        f"<td>{c.kind}</td><td>{e(rlist_scope_label(c.scope, names))}</td><td>{e(names.category(c.category))}</td>"
        f"<td>{e(lead(c.before))}</td><td>{e(lead(c.after))}</td></tr>"
        for c in changes
    )
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    body = f"""<p><a href="/responsibility-list">← 返回责任清单</a></p>
<h1>责任清单变更：{e(older)} → {e(newer)}</h1>
{alert}
<table class="cases"><thead><tr><th>变更</th><th>适用范围</th><th>类别</th><th>{e(older)}</th><th>{e(newer)}</th></tr>
</thead><tbody>{rows or '<tr class="empty"><td colspan="5">两个版本没有差别</td></tr>'}</tbody></table>"""
    return layout(title="责任清单变更", body=body, actor=actor, names=names, csrf=csrf)


# Who places reports that came with only an address (intake decides; the console offers the page).
LOCATORS = ("grid_worker", "dispatcher", "supervisor", "admin")


def locate_list_page(
    *, actor: Actor, names: Names, csrf: str, reports: list[dict], error: str = "", done: str = ""
) -> str:
    """待定位: reports with only an address, oldest first, each with a link to place it on the map."""
    # The action first: on a grid worker's phone the table scrolls sideways, the first column stays.
    rows = "".join(
        f'<tr><td><a class="button" href="/locate/{e(r["report_id"])}">在地图上定位</a></td>'
        f"<td>{e(r.get('case_no') or '')}</td><td>{e(names.category(r.get('category')))}</td>"
        f'<td class="summary">{e(summary(r))}</td><td>{e(beijing(r["submitted_at"]))}</td></tr>'
        for r in reports
    )
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    if done:
        alert += f'<p class="done" role="status">案件 {e(done)} 已定位，已按所在网格派单。</p>'
    body = f"""<h1>待定位的上报</h1>
{alert}
<p class="hint">这些上报只有地址、没有位置：请到现场或按地址在地图上点出位置，案件随即进入所在网格。</p>
<table class="cases"><thead><tr><th>操作</th><th>案件编号</th><th>类别</th><th>问题</th><th>上报时间</th></tr></thead>
<tbody>{rows or '<tr class="empty"><td colspan="5">没有待定位的上报</td></tr>'}</tbody></table>"""
    return layout(title="待定位", body=body, actor=actor, names=names, csrf=csrf)


def locate_page(*, actor: Actor, names: Names, csrf: str, report: dict, tiles_url: str, error: str = "") -> str:
    """Place one report: click its point on the map of the person's area, or type the coordinates."""
    drawn = area_map(
        county=names.county, jurisdiction_code=actor.jurisdiction_code, tiles_url=tiles_url, caption="点击地图定位"
    )
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    body = f"""<p><a href="/locate">← 返回待定位列表</a></p>
<h1>定位案件 {e(report.get("case_no") or "")}</h1>
{alert}
<section class="card"><p class="description">{e(report.get("description"))}</p>
<p>群众填写的地址：<b>{e(report.get("address") or "未填写")}</b></p></section>
<section class="card"><h2>在地图上点出位置</h2>
<div class="map-frame" id="pick">{drawn}</div>
<form method="post" action="/locate/{e(report["report_id"])}" class="locate-form">
  <input type="hidden" name="csrf_token" value="{e(csrf)}">
  <label for="lat">纬度</label><input name="lat" id="lat" required inputmode="decimal" size="12">
  <label for="lng">经度</label><input name="lng" id="lng" required inputmode="decimal" size="12">
  <button type="submit" id="place">确认位置</button>
  <span class="muted">点击地图即填入经纬度（WGS-84），也可直接填写。</span>
</form></section>"""
    return layout(title="定位", body=body, actor=actor, names=names, csrf=csrf)


# 三率 as staff read them: the rates, each with its sample, in the order departments are assessed.
SCORE_RATES = (
    ("acknowledged_in_time", "及时签收率"),
    ("resolved_in_time", "按期办结率"),
    ("satisfied", "群众满意率"),
    ("reopened", "回潮率"),
    ("returned", "退单率"),
)
SCORE_GROUPS = {"department": "部门", "town": "乡镇（街道）"}
SCORE_RANGES = {"month": "本月", "week": "本周", "30d": "近 30 天"}


def scorecards_page(
    *,
    actor: Actor,
    names: Names,
    csrf: str,
    by: str,
    span: str,
    since: str,
    until: str,
    rows: list[dict],
    error: str = "",
) -> str:
    """三率 scorecards: ranked by the Wilson lower bound of 按期办结率, each rate with its sample
    size; no data shows 无数据, never 0 % or 100 %; the exports for the assessment."""

    def name(key: str | None) -> str:
        if key is None:
            return "未定"
        return names.department(key) if by == "department" else names.division(key)

    def cell(rate: dict) -> str:
        if rate["value"] is None:
            return '<td class="muted">无数据</td>'
        return f'<td>{e(rate["display"])} <span class="muted">({rate["numerator"]}/{rate["n"]})</span></td>'

    def minutes(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f} 分钟"

    body_rows = "".join(
        f"<tr><td>{r['rank'] or '—'}</td><td>{e(name(r['key']))}</td><td>{r['received']}</td>"
        + "".join(cell(r[rate]) for rate, _ in SCORE_RATES)
        + f"<td>{r['supervised']}</td><td>{minutes(r['stage_minutes']['resolve']['median'])}</td></tr>"
        for r in rows
    )
    tabs = "".join(
        f'<a href="/scorecards?by={g}&amp;span={span}"{" class=active" * (g == by)}>{label}</a>'
        for g, label in SCORE_GROUPS.items()
    )
    spans = "".join(
        f'<a href="/scorecards?by={by}&amp;span={s}"{" class=active" * (s == span)}>{label}</a>'
        for s, label in SCORE_RANGES.items()
    )
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    headers = "".join(f"<th>{label}</th>" for _, label in SCORE_RATES)
    month = since[:7]
    body = f"""<h1>三率考核</h1>
<section class="toolbar"><nav class="tabs">{tabs}</nav><nav class="tabs">{spans}</nav>
<span class="muted">{e(since)} 至 {e(until)}</span></section>
{alert}
<table class="cases scorecards"><thead><tr><th>排名</th><th>{SCORE_GROUPS[by]}</th><th>受理</th>{headers}
<th>督办</th><th>办结用时中位数</th></tr></thead>
<tbody>{body_rows or '<tr class="empty"><td colspan="10">本期无数据</td></tr>'}</tbody></table>
<p class="hint">排名按按期办结率的 Wilson 下限（95%）：3 件全按期不会排在 300 件中 290 件按期之前；
括号内为达标数/样本数；没有可统计的案件显示“无数据”。</p>
<p><a class="button" href="/scorecards/assessment.xlsx?month={e(month)}">下载月度考核表（Excel）</a>
<a class="button" href="/scorecards/weekly.pdf">下载上周周报（PDF）</a></p>"""
    return layout(title="三率考核", body=body, actor=actor, names=names, csrf=csrf)


def directory_page(
    *,
    actor: Actor,
    names: Names,
    csrf: str,
    people: list[dict],
    department: str,
    on_duty: dict | None,
    error: str = "",
    import_errors: list[dict] | None = None,
    imported: int | None = None,
) -> str:
    """通讯录 (admins): people with their roles, WeCom ids and masked mobiles, by department; who is on
    duty now in the chosen department; a CSV import whose every error is listed with its line."""

    def roles(person: dict) -> str:
        return "；".join(
            f"{ROLE_LABELS.get(r['role'], r['role'])}"
            f"（{names.department(r['department_code']) + '，' if r.get('department_code') else ''}"
            f"{names.place(r['jurisdiction_code'])}）"
            for r in person["roles"]
        )

    rows = "".join(
        f"<tr{' class=muted' * (not p['active'])}><td>{e(p['name'])}</td><td>{e(roles(p))}</td>"
        f"<td>{e(p.get('wecom_user_id') or '—')}</td><td>{e(p.get('mobile_masked') or '—')}</td>"
        f"<td>{'在用' if p['active'] else '已停用'}</td></tr>"
        for p in people
    )
    options = "".join(
        f'<option value="{e(code)}"{" selected" * (code == department)}>{e(label)}</option>'
        for code, label in names.taxonomy.departments.items()
    )
    duty = ""
    if department:
        if on_duty:
            backup = f"，备班 {e(on_duty.get('backup_name') or '—')}" if on_duty.get("backup") else ""
            duty = (
                f'<p class="done" role="status">{e(names.department(department))}当前值班：'
                f"<b>{e(on_duty['on_duty_name'])}</b>{backup}（至 {e(beijing(on_duty['ends_at']))}）</p>"
            )
        else:
            duty = f'<p class="hint">{e(names.department(department))}当前没有排班；派单将@部门群。</p>'
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    if import_errors:
        items = "".join(f"<li>第 {x.get('line')} 行：{e(x.get('error'))}</li>" for x in import_errors)
        alert += f'<div class="error" role="alert">导入未完成，未导入任何人员。请改正：<ul>{items}</ul></div>'
    if imported is not None:
        alert += f'<p class="done" role="status">已导入 {imported} 人。</p>'
    body = f"""<h1>通讯录</h1>
{alert}
<form class="filters" method="get" action="/directory" aria-label="筛选">
  <label for="f-department">部门</label>
  <select name="department" id="f-department"><option value="">全部</option>{options}</select>
  <button type="submit">筛选</button>
</form>
{duty}
<table class="cases"><thead><tr><th>姓名</th><th>角色（部门，区划）</th><th>企业微信账号</th><th>手机</th>
<th>状态</th></tr></thead><tbody>{rows or '<tr class="empty"><td colspan="5">暂无人员</td></tr>'}</tbody></table>
<section class="card"><h2>从 CSV 导入</h2>
<form method="post" action="/directory/import" enctype="multipart/form-data" class="composer">
  <input type="hidden" name="csrf_token" value="{e(csrf)}">
  <label for="people-file">通讯录文件（UTF-8 CSV：person_id, name, wecom_user_id, mobile, role, jurisdiction_code,
    department_code；一人多个角色写多行）</label>
  <input type="file" name="file" id="people-file" accept=".csv,text/csv" required>
  <button type="submit">导入</button>
  <span class="muted">先检查全部内容，有错误时逐行列出且不导入任何人；每次变更都有审计记录。</span>
</form></section>
<p class="hint">手机号只显示掩码；号码加密保存，不出现在任何事件或接口中。</p>"""
    return layout(title="通讯录", body=body, actor=actor, names=names, csrf=csrf)


def screen_page(
    *,
    actor: Actor,
    names: Names,
    grids: list[dict],
    today: int,
    county: dict | None,
    departments: list[dict],
    tiles_url: str,
    updated: str,
    errors: list[str],
) -> str:
    """大屏: the county at a glance on the command centre's wall — open and overdue cases, today's
    reports, this month's 三率, the map by overdue and the departments' ranking; refreshed every minute."""
    open_cases = sum(g["open"] for g in grids)
    overdue = sum(g["overdue"] for g in grids)
    load = {g["grid_code"]: (g["open"], g["overdue"]) for g in grids if g["grid_code"]}
    drawn = overview_map(county=names.county, jurisdiction_code=actor.jurisdiction_code, load=load, tiles_url=tiles_url)

    def rate(card: dict | None, name: str) -> str:
        if card is None or card[name]["value"] is None:
            return "无数据"
        return str(card[name]["display"])

    figures = [
        ("在办案件", str(open_cases), ""),
        ("已逾期", str(overdue), "alarm" if overdue else ""),
        ("今日新增", f"{today}{'+' * (today >= 200)}", ""),
        ("本月及时签收率", rate(county, "acknowledged_in_time"), ""),
        ("本月按期办结率", rate(county, "resolved_in_time"), ""),
        ("本月群众满意率", rate(county, "satisfied"), ""),
    ]
    tiles = "".join(
        f'<div class="figure {css}"><span class="value">{e(value)}</span><span class="label">{label}</span></div>'
        for label, value, css in figures
    )
    ranking = "".join(
        f"<tr><td>{d['rank'] or '—'}</td><td>{e(names.department(d['key']))}</td>"
        f"<td>{e(rate(d, 'resolved_in_time'))}</td><td>{e(rate(d, 'acknowledged_in_time'))}</td>"
        f"<td>{d['supervised']}</td></tr>"
        for d in departments[:10]
    )
    alerts = "".join(f'<p class="error" role="alert">{e(message)}</p>' for message in errors)
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="60">
<title>大屏 - 网格通</title>
<link rel="stylesheet" href="/static/console.css">
</head><body class="screen">
<header><h1>{e(names.division(actor.jurisdiction_code))}网格化治理 · 实时态势</h1>
<span class="muted">更新于 {e(updated)}（北京时间，每分钟刷新）<a class="back" href="/">返回工作台</a></span></header>
{alerts}
<section class="figures">{tiles}</section>
<section class="screen-body">
<div class="map-frame">{drawn}</div>
<table class="ranking"><caption>部门本月考核排名（按期办结率 Wilson 下限）</caption>
<thead><tr><th>排名</th><th>部门</th><th>按期办结</th><th>及时签收</th><th>督办</th></tr></thead>
<tbody>{ranking or '<tr><td colspan="5">无数据</td></tr>'}</tbody></table>
</section>
</body></html>"""
