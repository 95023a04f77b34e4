"""The mobile work page (移动工作台, /m/…) as plain HTML: what a handler or a grid worker needs on a
phone inside WeCom's browser — their cases, one case with its photos, small map and deadlines, the
actions they may take now (the same forms as the console's, from the one action table), and taking
整改前/整改后 photos with the phone's location, and for grid workers 现场核实 and placing a report
that came with only an address (定位: the phone's position or a point picked on the offline map).
390 px wide, Simplified Chinese, Beijing time; the only scripts are the console's (countdown, the
map's point picker) and /static/mobile.js (the phone's location), nothing from the internet."""

from services.console.maps import area_map
from services.console.pages import (
    LOCATORS,
    STATUS_LABELS,
    Names,
    action_forms,
    actor_text,
    beijing,
    case_no,
    checked_words,
    clocks_section,
    e,
    map_section,
    offered_actions,
    person,
    step_label,
    summary,
    timeline_note,
)
from shared.auth import Actor
from shared.case_actions import ACTIONS
from shared.jurisdictions import County

PHOTO_ROLES = {"before": "整改前", "after": "整改后"}
# Hidden fields the page's script fills with the phone's position (WGS-84) when it has one.
GEO_FIELDS = (
    '<input type="hidden" name="lat" class="geo-lat"><input type="hidden" name="lng" class="geo-lng">'
    '<input type="hidden" name="accuracy_m" class="geo-accuracy">'
)


def photos(case: dict) -> dict[str, list[str]]:
    """The case's photos by role: those its actions name (the report's, 办结's) and the evidence
    media has attached since (taken on this page, not yet named by an action)."""
    found: dict[str, list[str]] = {role: [str(m) for m in case["media"][role]] for role in PHOTO_ROLES}
    for item in case.get("evidence", ()):
        if item["role"] in found and str(item["media_id"]) not in found[item["role"]]:
            found[item["role"]].append(str(item["media_id"]))
    return found


def unnamed_after_photos(case: dict) -> list[str]:
    """整改后 photos attached to the case that no 办结 has named yet: what the next 办结 or 即知即改
    shows as its result when no new photo is taken with it."""
    named = {str(m) for m in case["media"]["after"]}
    return [
        str(e["media_id"]) for e in case.get("evidence", ()) if e["role"] == "after" and str(e["media_id"]) not in named
    ]


def layout(*, title: str, body: str, actor: Actor | None = None, names: Names | None = None) -> str:
    who = f'<span class="who">{e(person(actor, names))}</span>' if actor is not None and names is not None else ""
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} - 网格通</title>
<link rel="stylesheet" href="/static/console.css">
<link rel="stylesheet" href="/static/mobile.css">
</head><body class="mobile">
<header class="m-top"><a class="brand" href="/m/">网格通 · 移动工作台</a>{who}</header>
<main>
{body}
</main>
<script src="/static/console.js"></script>
<script src="/static/mobile.js"></script>
</body></html>"""


def error_page(*, status: int, message: str, actor: Actor | None = None, names: Names | None = None) -> str:
    titles = {400: "登录未完成", 401: "登录已失效", 403: "无法使用", 404: "未找到", 502: "服务暂时不可用"}
    title = titles.get(status, "出错了")
    body = f"""<section class="card error-page"><h1>{e(title)}</h1>
<p class="error" role="alert">{e(message)}</p>
<p><a class="button" href="/m/">返回我的待办</a></p></section>"""
    return layout(title=title, body=body, actor=actor, names=names)


def signed_in_page(*, actor: Actor, next_path: str) -> str:
    """After WeCom's redirect: a page of this site (so the SameSite=Strict session cookie goes with
    the next request), which moves on at once."""
    body = f"""<section class="card"><p>{e(actor.name)}，登录成功，正在打开……</p>
<p><a class="button" id="continue" href="{e(next_path)}">继续</a></p></section>"""
    page = layout(title="登录成功", body=body)
    return page.replace("<head>", f'<head><meta http-equiv="refresh" content="0;url={e(next_path)}">', 1)


def case_item(case: dict, names: Names) -> str:
    urgent = '<b class="tag-urgent">紧急</b> ' if case.get("priority") == "urgent" else ""
    tags = ' <b class="tag-overdue">逾期</b>' if case.get("overdue") else ""
    tags += ' <b class="tag-checked">已核实</b>' if case.get("checked_at") else ""
    return (
        f'<li><a href="/m/cases/{e(case_no(case))}"><b>{e(case_no(case))}</b> {urgent}'
        f"<span class=status>{e(STATUS_LABELS.get(case['status'], case['status']))}</span>{tags}<br>"
        f"{e(case.get('category_name') or names.category(case.get('category')))}：{e(summary(case, 30))}<br>"
        f'<span class="muted">{e(names.division(case.get("jurisdiction_code")))} · '
        f"{e(beijing(case.get('created_at')))}</span></a></li>"
    )


def may_check(actor: Actor) -> bool:
    """Whether the person's work is checking new reports on site (现场核实), by the action table
    (an admin may do anything, but it is not their list)."""
    return actor.role in ACTIONS["check"].roles


def to_check(actor: Actor, open_cases: list[dict]) -> list[dict]:
    """The open cases a grid worker has not yet checked on site, oldest first (first come, first
    seen); nobody else checks."""
    if not may_check(actor):
        return []
    return sorted((c for c in open_cases if not c.get("checked_at")), key=lambda c: c["created_at"])


def home_page(
    *,
    actor: Actor,
    names: Names,
    open_cases: list[dict],
    resolved: list[dict],
    to_locate: list[dict] | None,
    error: str = "",
    located: str = "",
) -> str:
    """我的待办: for grid workers first the new reports to check on site (现场核实), then the open
    cases the person may see (a grid worker: their grid's), the resolved ones to ask the reporter
    about (回访), and for grid workers the reports to place on the map (待定位). Each list says what
    its cases wait for, so 核实 (is the report real?) and 回访 (is the reporter satisfied?) are
    not confused."""
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    if located:
        alert += f'<p class="done" role="status">案件 {e(located)} 已定位，已按所在网格派单。</p>'
    title = "本网格待办" if actor.role == "grid_worker" else "我的待办"
    sections = []
    rest, heading, empty, hint = open_cases, title, "暂无待办案件。", ""
    if may_check(actor):  # each open case in one list: not yet checked on site, or checked and in hand
        unchecked = to_check(actor, open_cases)
        items = "".join(case_item(c, names) for c in unchecked) or '<li class="muted">新上报都已核实。</li>'
        sections.append(
            f'<section class="card" id="to-check"><h2>待现场核实（{len(unchecked)}）</h2>'
            '<p class="hint">新上报：请到现场看是否属实，属实的可拍照留证，不属实的案件将撤销。</p>'
            f'<ul class="m-cases">{items}</ul></section>'
        )
        listed = {c["case_id"] for c in unchecked}
        rest = [c for c in open_cases if c["case_id"] not in listed]
        heading, empty = "本网格其他在办", "没有其他在办案件。"
        hint = '<p class="hint">已核实的案件，由部门处置中；能当场解决的可「即知即改」。</p>'
    items = "".join(case_item(c, names) for c in rest) or f'<li class="muted">{empty}</li>'
    sections.append(
        f'<section class="card" id="open-cases"><h2>{heading}（{len(rest)}）</h2>{hint}'
        f'<ul class="m-cases">{items}</ul></section>'
    )
    if resolved:
        asked = "".join(case_item(c, names) for c in resolved)
        sections.append(
            f'<section class="card" id="to-verify"><h2>待回访（{len(resolved)}）</h2>'
            '<p class="hint">已办结：请回访群众，问问问题是否解决、是否满意。</p>'
            f'<ul class="m-cases">{asked}</ul></section>'
        )
    if to_locate is not None:
        rows = "".join(
            f'<li><a href="/m/locate/{e(r["report_id"])}"><b>{e(r.get("case_no") or "")}</b>'
            ' <span class="tag-locate">去定位 ›</span><br>'
            f"{e(names.category(r.get('category')))}：{e(summary(r, 30))}<br>"
            f'<span class="muted">{e(beijing(r["submitted_at"]))}</span></a></li>'
            for r in to_locate
        )
        sections.append(
            f'<section class="card" id="to-locate"><h2>待定位的上报（{len(to_locate)}）</h2>'
            '<p class="hint">只有地址的上报：到现场用手机定位，或在地图上点出位置。</p>'
            f'<ul class="m-cases">{rows or "<li class=muted>没有待定位的上报。</li>"}</ul></section>'
        )
    return layout(title=title, body=alert + "".join(sections), actor=actor, names=names)


def county_bounds(county: County) -> tuple[float, float, float, float]:
    """(south, west, north, east) of the county's grids: the page's script says at once that a
    phone's position outside them cannot be the report's place (intake's check is the rule)."""
    points = [p for grid in county.grids.values() for p in grid.polygon]
    return (
        min(p[0] for p in points),
        min(p[1] for p in points),
        max(p[0] for p in points),
        max(p[1] for p in points),
    )


def locate_page(
    *,
    actor: Actor,
    names: Names,
    csrf: str,
    report: dict,
    photos: list[str],
    hidden_photos: int,
    tiles_url: str,
    error: str = "",
    point: tuple[str, str] = ("", ""),
) -> str:
    """定位 on the phone: the report (what, the reporter's words for the place, photos), then 「用我的
    位置」 (the grid worker stands there) or a point picked on the map of their own area; the form posts
    what the desktop's 定位 posts. `hidden_photos`: photos media does not show this person yet."""
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    thumbs = "".join(
        f'<a href="/media/{e(m)}"><img src="/media/{e(m)}" alt="上报照片 {i}" loading="lazy" class="thumb"></a>'
        for i, m in enumerate(photos, start=1)
    )
    if hidden_photos:
        thumbs += (
            f'<span class="muted hidden-photos">另有 {hidden_photos} 张照片暂不能查看：'
            "定位后案件进入您的网格，即可在案件页查看。</span>"
        )
    shown = f'<p class="report-photos"><b>照片：</b>{thumbs}</p>' if thumbs else ""
    drawn = area_map(
        county=names.county,
        jurisdiction_code=actor.jurisdiction_code,
        tiles_url=tiles_url,
        caption="点击地图定位",
        width=360,
        height=320,
    )
    south, west, north, east = county_bounds(names.county)
    lat, lng = point
    if not report.get("needs_locating") and actor.role == "grid_worker":  # placed meanwhile: nothing to do
        grid = names.grids.get(report.get("grid_code") or "", "网格")
        alert += (
            f'<p class="done" role="status">该上报已定位到{e(grid)}，无需再定位；如位置有误，请联系调度员更正。'
            f' <a href="/m/cases/{e(report.get("case_no") or report["case_id"])}">查看案件</a></p>'
        )
    body = f"""<p><a href="/m/">← 返回我的待办</a></p>
<h1>定位上报 {e(report.get("case_no") or "")}</h1>
<div id="locate-alert">{alert}</div>
<section class="card"><p class="description">{e(report.get("description"))}</p>
<p>群众填写的地址：<b>{e(report.get("address") or "未填写")}</b></p>
<p class="muted">{e(names.category(report.get("category")))} · 上报于 {e(beijing(report.get("submitted_at")))}</p>
{shown}</section>
<section class="card" id="locate" data-county="{e(names.county.name)}" data-south="{south:.6f}"
  data-west="{west:.6f}" data-north="{north:.6f}" data-east="{east:.6f}">
<h2>确定位置</h2>
<p class="hint">在现场：点「用我的位置」。不在现场：按群众填写的地址在地图上点出位置。</p>
<p><button type="button" id="use-my-position">用我的位置</button></p>
<p id="position-status" class="muted" role="status" aria-live="polite"></p>
<div class="map-frame" id="pick">{drawn}</div>
<form method="post" action="/m/locate/{e(report["report_id"])}" class="m-locate" id="locate-form">
  <input type="hidden" name="csrf_token" value="{e(csrf)}">
  <label for="lat">纬度</label><input name="lat" id="lat" required inputmode="decimal" value="{e(lat)}">
  <label for="lng">经度</label><input name="lng" id="lng" required inputmode="decimal" value="{e(lng)}">
  <button type="submit" id="place">确认位置</button>
</form>
<p class="muted">点地图或用手机位置即填入经纬度（WGS-84），也可直接填写。确认后案件按所在网格派单。</p>
</section>"""
    return layout(title="定位上报", body=body, actor=actor, names=names)


def photos_section(case: dict, *, csrf: str, may_add: bool) -> str:
    """The case's 整改前/整改后 photos, and taking one with the phone's camera and location."""
    shown = []
    for role, label in PHOTO_ROLES.items():
        thumbs = "".join(
            f'<a href="/media/{e(m)}" class="photo-{role}"><img src="/media/{e(m)}" alt="{label}照片 {i}"'
            ' loading="lazy" class="thumb"></a>'
            for i, m in enumerate(photos(case)[role], start=1)
        )
        shown.append(f"<p><b>{label}：</b>{thumbs or '<span class=muted>无</span>'}</p>")
    upload = ""
    if may_add:
        choices = "".join(
            f'<label class="inline"><input type="radio" name="role" value="{role}"{" checked" * (role == "after")}>'
            f"{label}</label>"
            for role, label in PHOTO_ROLES.items()
        )
        upload = f"""<form method="post" action="/m/cases/{e(case_no(case))}/photos" enctype="multipart/form-data"
  id="photo-form" class="m-photo">
  <input type="hidden" name="csrf_token" value="{e(csrf)}">{GEO_FIELDS}
  <div>{choices}</div>
  <label for="photo-file">拍照或选择照片</label>
  <input type="file" name="photo" id="photo-file" accept="image/*" capture="environment" required>
  <p class="geo-status muted" role="status">正在获取手机位置……</p>
  <button type="submit">上传照片</button>
</form>"""
    return f'<section class="card"><h2>现场照片</h2>{"".join(shown)}{upload}</section>'


def case_page(
    *,
    actor: Actor,
    names: Names,
    csrf: str,
    case: dict,
    keys: dict[str, str],
    timers: list[dict] | None,
    tiles_url: str,
    done: str = "",
    failed: tuple[str, str, dict] | None = None,
) -> str:
    """One case on a phone: what and where, the actions the person may take now (open first), the
    photos, deadlines, map and steps. `failed`: (action or "photo", Chinese message, values)."""
    number = case_no(case)
    offered, primary = offered_actions(actor, case)
    has_after = frozenset({"after_media_ids"}) if unnamed_after_photos(case) else frozenset()
    forms = action_forms(
        case=case,
        offered=offered,
        primary=primary,
        names=names,
        csrf=csrf,
        keys=keys,
        failed=failed,
        url=lambda name: f"/m/cases/{number}/actions/{name}",
        extra=GEO_FIELDS,
        optional=has_after,
    )
    notice = ""
    if done == "photo":
        notice = '<p class="done" role="status">照片已上传。</p>'
    elif done == "check":  # what was found, and for 不属实 what became of the case
        notice = f'<p class="done" role="status">已现场核实：{e(checked_words(case))}。</p>'
    elif done in ACTIONS:
        notice = f'<p class="done" role="status">已{e(ACTIONS[done].label)}。</p>'
    if failed and (failed[0] not in offered):
        what = "上传照片" if failed[0] == "photo" else step_label(failed[0])
        notice = f'<p class="error" role="alert">「{e(what)}」未完成：{e(failed[1])}</p>'
    facts = [
        ("类别", case.get("category_name") or case["category"]),
        ("主办部门", case.get("department_name") or names.department(case.get("department_code"))),
        ("网格", names.grids.get(case.get("grid_code") or "", "未定位")),
        ("上报时间", beijing(case["created_at"])),
        ("现场核实", checked_words(case)),
    ]
    facts_html = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
    steps = "".join(
        f"<li><time>{e(beijing(t['at']))}</time> <b>{e(step_label(t['action']))}</b>"
        f" <span class=muted>{e(actor_text(t['actor']))}</span>{timeline_note(t)}</li>"
        for t in case["timeline"][-6:]
    )
    actions = forms or '<p class="muted">当前没有您可以执行的操作。</p>'
    may_photo = case["status"] not in ("closed", "merged", "cancelled", "escalated")
    body = f"""<h1>{e(number)} <span class="status">{e(STATUS_LABELS.get(case["status"], ""))}</span></h1>
{notice}
<section class="card"><p class="description">{e(case["description"])}</p>
{f"<p>地址：{e(case['address'])}</p>" if case.get("address") else ""}
<dl class="facts">{facts_html}</dl></section>
<section class="card" id="actions"><h2>可执行的操作</h2>{actions}</section>
{photos_section(case, csrf=csrf, may_add=may_photo)}
{clocks_section(timers, names)}
{map_section(case, names, tiles_url)}
<section class="card"><h2>办理过程</h2><ol class="timeline">{steps}</ol></section>"""
    return layout(title=f"案件 {number}", body=body, actor=actor, names=names)


def may_locate(actor: Actor) -> bool:
    return actor.role in LOCATORS
