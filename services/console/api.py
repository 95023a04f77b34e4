"""The console's routes: login and logout, the queue (工作台) with its live feed, a case with its
action forms, the supervision list (督办), photos, and the page assets. Thin: the services decide
everything; these routes ask them with the person's token and show the answer."""

import asyncio
import hmac
import json
import uuid
from datetime import date, datetime, time, timedelta
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

import httpx
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile

from services.console import mobile, oidc, pages, rlist, sessions, wecom
from services.console.upstream import Refused, Unavailable, call
from shared.auth import Actor, InvalidToken, ProviderUnavailable
from shared.case_actions import ACTIONS, ActionSpec
from shared.problems import Problem
from shared.web import CurrentActor, public

STATIC = FilePath(__file__).parent / "static"
ASSETS = {
    "console.css": "text/css",
    "console.js": "text/javascript",
    "mobile.css": "text/css",
    "mobile.js": "text/javascript",
}

# The demo people of the development login (GRIDLINK_AUTH_DEV_ISSUER): codes of the demo county's
# map and of shared/data/taxonomy.yaml.
DEMO_PEOPLE: dict[str, dict] = {
    "dispatcher": {
        "subject": "demo-dispatcher",
        "role": "dispatcher",
        "jurisdiction_code": "330727",
        "name": "王敏",
        "title": "示范县网格化服务管理中心 调度员",
    },
    "zhujian": {
        "subject": "demo-zhujian",
        "role": "handler",
        "jurisdiction_code": "330727",
        "department_code": "zhujian",
        "name": "李强",
        "title": "住房和城乡建设局 处置人员",
    },
    "chengguan": {
        "subject": "demo-chengguan",
        "role": "handler",
        "jurisdiction_code": "330727",
        "department_code": "chengguan",
        "name": "张伟",
        "title": "城市管理局 处置人员",
    },
    "supervisor": {
        "subject": "demo-supervisor",
        "role": "supervisor",
        "jurisdiction_code": "330727",
        "name": "陈静",
        "title": "示范县督查室 督查员",
    },
    "grid_worker": {
        "subject": "gw330727001001001",
        "role": "grid_worker",
        "jurisdiction_code": "330727001001001",
        "name": "何飞",
        "title": "城关街道莲源社区第1网格 网格员",
    },
    "admin": {
        "subject": "demo-admin",
        "role": "admin",
        "jurisdiction_code": "330727",
        "name": "赵磊",
        "title": "系统管理员",
    },
}

router = APIRouter(include_in_schema=False)
Csrf = Depends(sessions.check_csrf)


def _names(request: Request) -> pages.Names:
    return request.app.state.names


def _csrf(request: Request) -> str:
    return request.cookies.get(sessions.CSRF_COOKIE, "")


def _url(request: Request, service: str, path: str) -> str:
    return getattr(request.app.state.settings, f"console_{service}_url").rstrip("/") + path


async def _call(request: Request, service: str, method: str, path: str, **kwargs) -> httpx.Response:
    """A service's answer to the person's request, made with their own token. A token the service
    no longer takes ends the session: the person logs in again and comes back (LoginRequired)."""
    try:
        return await call(
            request.app.state.http, service, method, _url(request, service, path), token=request.state.token, **kwargs
        )
    except Refused as refused:
        if refused.status == 401:
            raise sessions.LoginRequired from None
        raise


async def _ask(request: Request, service: str, method: str, path: str, **kwargs):
    """A service's answer to the person's request, as JSON."""
    return (await _call(request, service, method, path, **kwargs)).json()


def _html(request: Request, html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})


def _error(request: Request, actor: Actor, error: Refused | Unavailable) -> Response:
    message = error.message
    html = pages.error_page(
        status=error.status, message=message, actor=actor, names=_names(request), csrf=_csrf(request)
    )
    return _html(request, html, error.status)


@router.get("/login")
@public("the login page: it is how a session is had at all")
async def login_page(request: Request, next: str = "/"):  # noqa: A002 - the query parameter's name
    if sessions.session_actor(request) is not None:  # already logged in
        return RedirectResponse(sessions.safe_next(next), status_code=303)
    return _login_form(request, sessions.safe_next(next))


def _login_form(request: Request, next_path: str, error: str = "", status: int = 200) -> HTMLResponse:
    """The login page: the identity provider's button, and in development the demo people too.
    Someone still logged in (a failed second login) keeps their session's CSRF token."""
    kept = request.cookies.get(sessions.CSRF_COOKIE) if sessions.session_actor(request) else None
    token = kept or sessions.new_login_csrf()
    people = DEMO_PEOPLE if request.app.state.settings.auth_dev_issuer else {}
    html = pages.login_page(people=people, next_path=next_path, csrf=token, oidc=oidc.enabled(request), error=error)
    response = _html(request, html, status)
    if not kept:
        response.set_cookie(sessions.CSRF_COOKIE, token, httponly=False, samesite="strict", path="/")
    return response


@router.get("/auth/start")
@public("logging in: sends the browser to the identity provider's login form; there is no session yet")
async def oidc_start(request: Request, next: str = "/"):  # noqa: A002 - the query parameter's name
    next_path = sessions.safe_next(next)
    if not oidc.enabled(request):
        return _login_form(request, next_path, "本环境未配置统一身份认证，请联系系统管理员。", 404)
    flow = oidc.new_flow(next_path)
    try:
        url = await oidc.authorization_url(request, flow)
    except oidc.LoginFailed as failed:
        return _login_form(request, next_path, str(failed), 502)
    response = RedirectResponse(url, status_code=303)
    # Lax, not Strict: the provider sends the browser back here from its own site.
    response.set_cookie(
        oidc.FLOW_COOKIE,
        oidc.flow_cookie(request.app.state.settings.auth_jwt_secret, flow),
        max_age=oidc.FLOW_TTL_S,
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.console_cookie_secure,
        path="/auth",
    )
    return response


@router.get("/auth/callback")
@public("the identity provider returns the person here with a one-time code; the state must match this browser's login")
async def oidc_callback(request: Request, code: str = "", state: str = "", error: str = ""):
    settings = request.app.state.settings
    flow = oidc.read_flow_cookie(settings.auth_jwt_secret, request.cookies.get(oidc.FLOW_COOKIE, ""))
    if flow is None or not state or not hmac.compare_digest(state, flow.state):
        return _login_form(request, "/", "登录已过期或不是从本页面发起的，请重新登录。", 400)
    if error or not code:
        return _login_form(request, flow.next_path, "统一身份认证未完成登录，请重新登录。", 401)
    try:
        session = await oidc.finish(request, flow, code=code)
    except oidc.LoginFailed as failed:
        return _login_form(request, flow.next_path, str(failed), 401)
    # A page, not a redirect: the next request is then this site's own, so the SameSite=Strict
    # session cookie goes with it even though the login began at the provider's site.
    html = pages.layout(
        title="登录成功",
        body=f'<section class="card narrow"><p>{pages.e(session.actor.name)}，登录成功，正在进入工作台……</p>'
        f'<p><a class="button" id="continue" href="{pages.e(flow.next_path)}">进入工作台</a></p></section>',
    ).replace("<head>", f'<head><meta http-equiv="refresh" content="0;url={pages.e(flow.next_path)}">', 1)
    response = _html(request, html)
    max_age = sessions.max_age(session.access_token)
    sessions.set_cookies(
        response,
        secret=settings.auth_jwt_secret,
        token=session.access_token,
        max_age=max_age,
        secure=settings.console_cookie_secure,
    )
    response.set_cookie(
        oidc.ID_TOKEN_COOKIE,
        session.id_token,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=settings.console_cookie_secure,
        path="/logout",
    )
    response.delete_cookie(oidc.FLOW_COOKIE, path="/auth")
    return response


@router.post("/login")
@public("logging in: there is no session yet; the form's CSRF token must equal its cookie")
async def login(request: Request):
    form = await request.form()
    next_path = sessions.safe_next(str(form.get("next") or "/"))
    sent, cookie = str(form.get(sessions.CSRF_FIELD) or ""), request.cookies.get(sessions.CSRF_COOKIE, "")
    settings = request.app.state.settings
    people = DEMO_PEOPLE if settings.auth_dev_issuer else {}

    def again(message: str, status: int) -> HTMLResponse:
        return _login_form(request, next_path, message, status)

    if not sent or sent != cookie:
        return again("页面已过期，请重新登录。", 403)
    person = people.get(str(form.get("person") or ""))
    if person is None:
        return again("请选择要登录的人员。", 422)
    claims = {k: v for k, v in person.items() if k != "title"}
    try:
        answer = await call(
            request.app.state.http,
            "dispatch",
            "POST",
            _url(request, "dispatch", "/api/v1/auth/dev-tokens"),
            json=claims,
        )
    except (Refused, Unavailable) as error:
        return again(f"登录失败：{error}", 502)
    token = answer.json()["access_token"]
    response = RedirectResponse(next_path, status_code=303)
    sessions.set_cookies(
        response,
        secret=settings.auth_jwt_secret,
        token=token,
        max_age=sessions.max_age(token),
        secure=settings.console_cookie_secure,
    )
    return response


@router.post("/logout", dependencies=[Csrf])
async def logout(request: Request, actor: CurrentActor):
    """Forget the session; a person who logged in at the identity provider logs out there too."""
    id_token = request.cookies.get(oidc.ID_TOKEN_COOKIE, "")
    target = (await oidc.logout_url(request, id_token) if id_token and oidc.enabled(request) else None) or "/login"
    response = RedirectResponse(target, status_code=303)
    sessions.clear_cookies(response)
    response.delete_cookie(oidc.ID_TOKEN_COOKIE, path="/logout")
    return response


def _day_start(day: date) -> str:
    """Midnight of a Beijing calendar day, as the instant dispatch compares with."""
    return datetime.combine(day, time(), tzinfo=pages.BEIJING).isoformat()


@router.get("/")
async def queue(
    request: Request,
    actor: CurrentActor,
    tab: Annotated[str, Query(pattern="^(" + "|".join(pages.TABS) + ")$")] = "open",
    q: Annotated[str, Query(max_length=100)] = "",
    category: Annotated[str, Query(max_length=40)] = "",
    department: Annotated[str, Query(max_length=40)] = "",
    place: Annotated[str, Query(pattern=r"^(\d{6}(\d{3}){0,3})?$")] = "",
    priority: Annotated[str, Query(pattern="^(urgent|normal)?$")] = "",
    since: date | None = None,
    until: date | None = None,
    cursor: Annotated[str, Query(max_length=200)] = "",
):
    """工作台: the person's cases by tab, newest first, a page at a time; a search looks in every
    status; filters narrow any tab."""
    chosen = {"category": category, "department": department, "place": place, "priority": priority}
    common: dict[str, Any] = {pages.FILTERS[name]: value for name, value in chosen.items() if value}
    if since:
        common["created_from"] = _day_start(since)
    if until:
        common["created_to"] = _day_start(until + timedelta(days=1))
    if q.strip():
        common["q"] = q.strip()
    parts = pages.TABS["all" if q.strip() else tab][1]
    if cursor and len(parts) == 1:
        common["cursor"] = cursor
    cases: dict[str, dict] = {}
    next_cursor, error, status = None, "", 200
    try:
        for part in parts:
            answer = await _ask(
                request, "dispatch", "GET", "/api/v1/cases", params=part | common | {"limit": str(pages.PAGE_SIZE)}
            )
            cases |= {case["case_id"]: case for case in answer["cases"]}
            if len(parts) == 1:
                next_cursor = answer["next_cursor"]
    except (Refused, Unavailable) as failure:
        error, status = failure.message, failure.status
    rows = sorted(cases.values(), key=lambda c: c["created_at"], reverse=True)
    chosen |= {"since": since.isoformat() if since else "", "until": until.isoformat() if until else ""}
    html = pages.queue_page(
        actor=actor,
        names=_names(request),
        csrf=_csrf(request),
        tab=tab,
        q=q,
        cases=rows,
        error=error,
        chosen=chosen,
        next_cursor=next_cursor,
        paged=bool(cursor),
        notice=await _calendar_notice(request),
    )
    return _html(request, html, status)


async def _calendar_notice(request: Request) -> str:
    """sla's banner while the official calendar does not cover the coming 60 days (deadlines would
    count holidays as working days); nothing when sla cannot say, which the queue does not need."""
    try:
        return (await _ask(request, "sla", "GET", "/api/v1/calendar")).get("banner") or ""
    except (Refused, Unavailable):
        return ""


async def _case_page(
    request: Request, actor: Actor, case_id: UUID, *, done: str = "", failed=None, status: int = 200
) -> Response:
    try:
        case = await _ask(request, "dispatch", "GET", f"/api/v1/cases/{case_id}")
    except (Refused, Unavailable) as error:
        return _error(request, actor, error)
    timers = None  # the deadlines come from sla; without it the page still works
    try:
        timers = (await _ask(request, "sla", "GET", f"/api/v1/cases/{case_id}/timers"))["timers"]
    except (Refused, Unavailable):  # the page says the clocks cannot be shown
        pass
    # A fresh Idempotency-Key per form and page: a double click or a resubmitted form acts once.
    keys = {name: f"console-{uuid.uuid4()}" for name in case["actions"]}
    html = pages.case_page(
        actor=actor,
        names=_names(request),
        csrf=_csrf(request),
        case=case,
        keys=keys,
        done=done,
        failed=failed,
        timers=timers,
        tiles_url=request.app.state.settings.console_map_tiles_url,
    )
    return _html(request, html, status)


@router.get("/cases/{reference}")
async def case_page(
    request: Request, actor: CurrentActor, reference: Annotated[str, Path(max_length=100)], done: str = ""
):
    """A case: its facts, timeline, clocks, map, photos and a form for each action the person may
    take now. Reached by its id, or by its case number (GL20261202-0007) typed into the address bar."""
    try:
        case_id = UUID(reference)
    except ValueError:
        case_id = None
    if case_id is not None:
        return await _case_page(request, actor, case_id, done=done)
    try:
        found = (await _ask(request, "dispatch", "GET", "/api/v1/cases", params={"q": reference, "limit": "2"}))[
            "cases"
        ]
    except (Refused, Unavailable) as error:
        return _error(request, actor, error)
    numbered = [c for c in found if c.get("case_no") == reference]
    if len(numbered) == 1:
        return RedirectResponse(f"/cases/{numbered[0]['case_id']}", status_code=303)
    message = f"没有找到案件「{reference}」。请核对案件编号（如 GL20261202-0007），或在案件队列中搜索。"
    return _error(request, actor, Refused(404, message))


async def _after_photos(
    request: Request, case_id: UUID, photos: list[UploadFile], *, role: str = "after", device: dict | None = None
) -> list[str]:
    """Store each photo in media and attach it to the case as 整改后 (or 整改前), with where the
    phone was when it was sent (`device`: lat, lng, accuracy_m; WGS-84); their media ids."""
    ids = []
    for photo in photos:
        content = await photo.read()
        files = {"file": (photo.filename or f"{role}.jpg", content, photo.content_type or "application/octet-stream")}
        stored = await _ask(request, "media", "POST", "/api/v1/media", files=files)
        attach = {"media_id": stored["media_id"], "role": role} | ({"device_location": device} if device else {})
        await _ask(request, "media", "POST", f"/api/v1/cases/{case_id}/media", json=attach)
        ids.append(stored["media_id"])
    await _known_to_dispatch(request, case_id, ids)
    return ids


async def _known_to_dispatch(request: Request, case_id: UUID, media_ids: list[str], *, seconds: float = 10.0) -> None:
    """Wait (briefly) until dispatch has heard from media that the photos are this case's: 办结 is
    accepted only with evidence dispatch knows of, and media tells it through the media topic. If it
    takes longer, dispatch's refusal says to try again in a few seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        case = await _ask(request, "dispatch", "GET", f"/api/v1/cases/{case_id}")
        if set(media_ids) <= {e["media_id"] for e in case.get("evidence", ())}:
            return
        await asyncio.sleep(0.2)


def _arguments(name: str, form) -> tuple[dict, dict]:
    """The action's request body from its form (and the values to show again if it is refused)."""
    spec = ACTIONS[name]
    arguments: dict[str, Any] = {}
    values: dict[str, str] = {}
    for field, info in spec.request.model_fields.items():
        if field in pages.PHOTO_FIELDS or field in pages.API_ONLY_FIELDS:
            continue
        if field == "co_department_codes":
            chosen = [str(v) for v in form.getlist(field) if v]
            if chosen:
                arguments[field] = chosen
            continue
        value = str(form.get(field) or "").strip()
        values[field] = value
        if not value:
            continue
        if field in ("rating", "minutes"):
            if not value.isdigit():
                raise Refused(422, f"「{pages.field_label(field, info)}」请填写数字。")
            arguments[field] = int(value)
        else:
            arguments[field] = value
    return arguments, values


async def _post_action(
    request: Request,
    case_id: UUID,
    spec: ActionSpec,
    form,
    arguments: dict,
    *,
    source: str,
    device: dict | None = None,
    earlier_after: list[str] | None = None,
) -> None:
    """Post a case action to dispatch as the signed-in person. An action that takes photos (整改后
    for 办结, the problem as found for 核实) gets those uploaded with its form (stored in media first
    in their role, with where the phone was), else for 整改后 those taken earlier on the case page
    (`earlier_after`). An action that keeps the phone's position as evidence gets it too."""
    for field, (role, _) in pages.PHOTO_FIELDS.items():
        if field not in spec.request.model_fields:
            continue
        photos = [p for p in form.getlist("photos") if isinstance(p, UploadFile) and p.filename]
        if photos:
            arguments[field] = await _after_photos(request, case_id, photos, role=role, device=device)
        elif earlier_after and role == "after":
            arguments[field] = earlier_after
    if device and "device_location" in spec.request.model_fields:
        arguments["device_location"] = device
    key = str(form.get("idempotency_key") or f"{source}-{uuid.uuid4()}")
    await _ask(
        request,
        "dispatch",
        "POST",
        f"/api/v1/cases/{case_id}/{spec.path}",
        json=arguments,
        headers={"idempotency-key": key},
    )


@router.post("/cases/{case_id}/actions/{name}", dependencies=[Csrf])
async def take_action(request: Request, actor: CurrentActor, case_id: UUID, name: str):
    """One action from its form: 办结's photos go to media first; dispatch decides."""
    if name not in ACTIONS:
        raise Problem(404, "Not found", f"没有「{name}」这个操作。", kind="not-found")
    spec = ACTIONS[name]
    form = await request.form()
    values: dict = {}
    try:
        arguments, values = _arguments(name, form)
        await _post_action(request, case_id, spec, form, arguments, source="console")
    except Refused as refused:
        return await _case_page(request, actor, case_id, failed=(name, refused.message, values), status=refused.status)
    except Unavailable as unavailable:
        return await _case_page(request, actor, case_id, failed=(name, str(unavailable), values), status=502)
    return RedirectResponse(f"/cases/{case_id}?done={name}", status_code=303)


@router.get("/supervision")
async def supervision(request: Request, actor: CurrentActor):
    """督办: deadlines missed below this level — who, what, how late — and the 通报 of departments
    that kept missing them."""
    supervision, error, status = {}, "", 200
    try:
        supervision = await _ask(request, "dispatch", "GET", "/api/v1/supervision")
    except (Refused, Unavailable) as failure:
        error, status = failure.message, failure.status
    html = pages.supervision_page(
        actor=actor,
        names=_names(request),
        csrf=_csrf(request),
        breaches=supervision.get("breaches", []),
        notices=supervision.get("notices", []),
        error=error,
    )
    return _html(request, html, status)


@router.get("/map")
async def case_map(request: Request, actor: CurrentActor):
    """The map of open cases by grid, coloured by overdue."""
    grids, error, status = [], "", 200
    try:
        grids = (await _ask(request, "dispatch", "GET", "/api/v1/cases/by-grid"))["grids"]
    except (Refused, Unavailable) as failure:
        error, status = failure.message, failure.status
    html = pages.map_page(
        actor=actor,
        names=_names(request),
        csrf=_csrf(request),
        grids=grids,
        tiles_url=request.app.state.settings.console_map_tiles_url,
        error=error,
    )
    return _html(request, html, status)


def _broadcaster(request: Request, actor: Actor) -> Response | None:
    """The composer is only for those notify lets publish; others get a page that says who may."""
    if actor.role in pages.BROADCASTERS:
        return None
    message = "政策宣传只能由督查员或管理员发布。请联系县指挥中心的督查员或管理员。"
    return _error(request, actor, Refused(403, message))


@router.get("/broadcasts/new")
async def broadcast_composer(request: Request, actor: CurrentActor):
    """政策宣传: write a message for residents' groups and choose where it goes."""
    if refused := _broadcaster(request, actor):
        return refused
    html = pages.broadcast_page(actor=actor, names=_names(request), csrf=_csrf(request), key=f"console-{uuid.uuid4()}")
    return _html(request, html)


def _broadcast_form(form) -> tuple[str, str, list[str]]:
    content = str(form.get("content") or "").strip()
    msgtype = str(form.get("msgtype") or "markdown")
    targets = [str(t) for t in form.getlist("target") if str(t).isdigit()]
    return content, msgtype if msgtype in pages.MSGTYPES else "markdown", targets


@router.post("/broadcasts/preview", dependencies=[Csrf])
async def broadcast_preview(request: Request, actor: CurrentActor):
    """What the groups will see and how many groups: nothing is sent until it is confirmed."""
    if refused := _broadcaster(request, actor):
        return refused
    content, msgtype, targets = _broadcast_form(await request.form())
    error = "" if content else "请填写要发布的内容。"
    error = error or ("" if targets else "请至少选择一个发送范围。")
    reach: dict[str, int] = {}
    status = 422 if error else 200
    try:
        for target in [] if error else pages.widest(targets):
            answer = await _ask(request, "notify", "GET", "/api/v1/broadcasts/reach", params={"target": target})
            reach[target] = answer["groups"]
    except (Refused, Unavailable) as failure:
        error, status = failure.message, failure.status
    html = pages.broadcast_page(
        actor=actor,
        names=_names(request),
        csrf=_csrf(request),
        key=f"console-{uuid.uuid4()}",
        content=content,
        msgtype=msgtype,
        targets=targets,
        reach=reach,
        error=error,
    )
    return _html(request, html, status)


@router.post("/broadcasts", dependencies=[Csrf])
async def broadcast_send(request: Request, actor: CurrentActor):
    """Send a confirmed broadcast: one per chosen division, each keyed so a resubmitted form sends once."""
    if refused := _broadcaster(request, actor):
        return refused
    form = await request.form()
    content, msgtype, targets = _broadcast_form(form)
    key = str(form.get("idempotency_key") or f"console-{uuid.uuid4()}")
    sent = []
    try:
        for target in pages.widest(targets):
            accepted = await _ask(
                request,
                "notify",
                "POST",
                "/api/v1/broadcasts",
                json={"content": content, "msgtype": msgtype, "target": target},
                headers={"idempotency-key": f"{key}:{target}"},
            )
            sent.append(accepted["broadcast_id"])
    except (Refused, Unavailable) as error:
        message = error.message
        if sent:
            message += f"（已有 {len(sent)} 个范围提交成功，重新提交不会重复发送）"
        html = pages.broadcast_page(
            actor=actor,
            names=_names(request),
            csrf=_csrf(request),
            key=key,
            content=content,
            msgtype=msgtype,
            targets=targets,
            error=message,
        )
        return _html(request, html, error.status)
    if not sent:
        return RedirectResponse("/broadcasts/new", status_code=303)
    return RedirectResponse("/broadcasts/progress?" + "&".join(f"id={b}" for b in sent), status_code=303)


@router.get("/broadcasts/progress")
async def broadcast_progress(
    request: Request,
    actor: CurrentActor,
    id: Annotated[list[UUID], Query(max_length=20)],  # noqa: A002
):
    """How far each broadcast of one submission got."""
    progress, error, status = [], "", 200
    try:
        for broadcast_id in id:
            progress.append(await _ask(request, "notify", "GET", f"/api/v1/broadcasts/{broadcast_id}"))
    except (Refused, Unavailable) as failure:
        error = failure.message
        status = failure.status
    html = pages.broadcast_progress_page(
        actor=actor, names=_names(request), csrf=_csrf(request), progress=progress, error=error
    )
    return _html(request, html, status)


async def _rlist_page(
    request: Request,
    actor: Actor,
    *,
    rows: list[rlist.Row] | None = None,
    version: str = "",
    errors: list[str] | None = None,
    done: str = "",
    status: int = 200,
) -> Response:
    try:
        answer = await _ask(request, "dispatch", "GET", "/api/v1/responsibility-list")
    except (Refused, Unavailable) as error:
        return _error(request, actor, error)
    html = pages.rlist_page(
        actor=actor,
        names=_names(request),
        csrf=_csrf(request),
        current_version=answer["current"]["version"],
        rows=rows if rows is not None else rlist.rows_of(answer["current"]),
        versions=answer["versions"],
        editable=rlist.may_edit(actor),
        version=version,
        errors=errors,
        done=done,
    )
    return _html(request, html, status)


@router.get("/responsibility-list")
async def responsibility_list(request: Request, actor: CurrentActor, done: str = ""):
    """责任清单: the list in force as a table; for admins an editor that publishes a new version."""
    return await _rlist_page(request, actor, done=done)


@router.post("/responsibility-list", dependencies=[Csrf])
async def publish_responsibility_list(request: Request, actor: CurrentActor):
    """Publish the edited table as a new version; errors go back next to their rows."""
    form = await request.form()
    version = str(form.get("version") or "").strip()
    names = _names(request)
    rows = rlist.rows_from_form(form, names.taxonomy.departments, rlist.scope_names(names.divisions))
    if any(row.errors for row in rows):
        return await _rlist_page(request, actor, rows=rows, version=version, status=422)
    try:
        await _ask(
            request, "dispatch", "POST", "/api/v1/responsibility-list", json=rlist.document_of(rows, version=version)
        )
    except Refused as refused:
        left = rlist.place_errors(rows, refused.errors) if refused.errors else [refused.message]
        return await _rlist_page(request, actor, rows=rows, version=version, errors=left, status=refused.status)
    except Unavailable as unavailable:
        return await _rlist_page(request, actor, rows=rows, version=version, errors=[str(unavailable)], status=502)
    return RedirectResponse(f"/responsibility-list?done={quote(version)}", status_code=303)


@router.get("/responsibility-list/diff")
async def responsibility_list_diff(
    request: Request,
    actor: CurrentActor,
    older: Annotated[str, Query(alias="from", max_length=100)],
    newer: Annotated[str, Query(alias="to", max_length=100)],
):
    """What changed between two versions, row by row."""
    try:
        documents = [
            (await _ask(request, "dispatch", "GET", f"/api/v1/responsibility-list/versions/{quote(v, safe='')}"))[
                "document"
            ]
            for v in (older, newer)
        ]
    except (Refused, Unavailable) as error:
        return _error(request, actor, error)
    html = pages.rlist_diff_page(
        actor=actor,
        names=_names(request),
        csrf=_csrf(request),
        older=older,
        newer=newer,
        changes=rlist.compare(*documents),
    )
    return _html(request, html)


@router.get("/locate")
async def reports_to_locate(request: Request, actor: CurrentActor, done: str = ""):
    """待定位: the reports of the person's area that came with only an address."""
    reports, error, status = [], "", 200
    try:
        reports = (await _ask(request, "intake", "GET", "/api/v1/reports-to-locate"))["reports"]
    except (Refused, Unavailable) as failure:
        error, status = failure.message, failure.status
    html = pages.locate_list_page(
        actor=actor, names=_names(request), csrf=_csrf(request), reports=reports, error=error, done=done
    )
    return _html(request, html, status)


async def _locate_page(request: Request, actor: Actor, report_id: UUID, *, error: str = "", status: int = 200):
    try:
        report = await _ask(request, "intake", "GET", f"/api/v1/reports/{report_id}")
    except (Refused, Unavailable) as failure:
        return _error(request, actor, failure)
    html = pages.locate_page(
        actor=actor,
        names=_names(request),
        csrf=_csrf(request),
        report=report,
        tiles_url=request.app.state.settings.console_map_tiles_url,
        error=error,
    )
    return _html(request, html, status)


@router.get("/locate/{report_id}")
async def locate_report_page(request: Request, actor: CurrentActor, report_id: UUID):
    """Place one report on the map of the person's area."""
    return await _locate_page(request, actor, report_id)


async def _locate(request: Request, report_id: UUID, form) -> dict:
    """Place a report at the point a locate form sent (the desktop's and the phone's page): intake
    decides, and refuses a point outside the county or the person's area. The placed report."""
    try:
        point = {"lat": float(str(form.get("lat"))), "lng": float(str(form.get("lng")))}
    except ValueError:
        raise Refused(422, "请在地图上点出位置，或填写数字形式的经纬度。") from None
    return await _ask(request, "intake", "POST", f"/api/v1/reports/{report_id}/location", json=point)


@router.post("/locate/{report_id}", dependencies=[Csrf])
async def locate_report(request: Request, actor: CurrentActor, report_id: UUID):
    """The point chosen: intake places the report (and refuses a point outside the person's area)."""
    try:
        report = await _locate(request, report_id, await request.form())
    except (Refused, Unavailable) as failure:
        return await _locate_page(request, actor, report_id, error=failure.message, status=failure.status)
    return RedirectResponse(f"/locate?done={quote(report.get('case_no') or '')}", status_code=303)


@router.get("/scorecards")
async def scorecards(
    request: Request,
    actor: CurrentActor,
    by: Annotated[str, Query(pattern="^(department|town)$")] = "department",
    span: Annotated[str, Query(pattern="^(month|week|30d)$")] = "month",
):
    """三率: departments' or towns' scorecards for this month, this week or the last 30 days."""
    today = datetime.now(pages.BEIJING).date()
    since = {"month": today.replace(day=1), "week": today - timedelta(days=today.weekday())}.get(
        span, today - timedelta(days=30)
    )
    params = {"by": by, "period": "all", "since": since.isoformat(), "until": today.isoformat()}
    rows, error, status = [], "", 200
    try:
        rows = (await _ask(request, "sla", "GET", "/api/v1/scorecards", params=params))["rows"]
    except (Refused, Unavailable) as failure:
        error, status = failure.message, failure.status
    html = pages.scorecards_page(
        actor=actor,
        names=_names(request),
        csrf=_csrf(request),
        by=by,
        span=span,
        since=since.isoformat(),
        until=today.isoformat(),
        rows=rows,
        error=error,
    )
    return _html(request, html, status)


@router.get("/screen")
async def screen(request: Request, actor: CurrentActor):
    """大屏: open and overdue cases, today's reports, this month's 三率 and the map; each part that
    cannot be had says so and the rest shows."""
    now = datetime.now(pages.BEIJING)
    month = now.date().replace(day=1).isoformat()
    parts: dict[str, Any] = {"grids": [], "today": [], "county": [], "departments": []}
    asks = {
        "grids": ("dispatch", "/api/v1/cases/by-grid", {}, "grids"),
        "today": ("dispatch", "/api/v1/cases", {"created_from": _day_start(now.date()), "limit": "200"}, "cases"),
        "county": ("sla", "/api/v1/scorecards", {"by": "county", "period": "all", "since": month}, "rows"),
        "departments": ("sla", "/api/v1/scorecards", {"by": "department", "period": "all", "since": month}, "rows"),
    }
    errors = []
    for part, (service, path, params, field) in asks.items():
        try:
            parts[part] = (await _ask(request, service, "GET", path, params=params))[field]
        except Refused as refused:
            errors.append(refused.message)
        except Unavailable as unavailable:
            errors.append(str(unavailable))
    html = pages.screen_page(
        actor=actor,
        names=_names(request),
        grids=parts["grids"],
        today=len(parts["today"]),
        county=parts["county"][0] if parts["county"] else None,
        departments=parts["departments"],
        tiles_url=request.app.state.settings.console_map_tiles_url,
        updated=now.strftime("%Y-%m-%d %H:%M"),
        errors=list(dict.fromkeys(errors)),
    )
    return _html(request, html)


# The exports as sla makes them, downloaded through the console (one origin, the person's token).
EXPORTS = {
    "assessment.xlsx": ("/api/v1/exports/assessment.xlsx", "month"),
    "weekly.pdf": ("/api/v1/reports/weekly.pdf", "week"),
}


@router.get("/scorecards/{name}")
async def scorecard_export(request: Request, actor: CurrentActor, name: str, month: str = "", week: str = ""):
    """月度考核表 (Excel) and 周报 (PDF) from sla, as files."""
    if name not in EXPORTS:
        return _error(request, actor, Refused(404, "没有这个报表。"))
    path, parameter = EXPORTS[name]
    value = {"month": month, "week": week}[parameter]
    try:
        answer = await _call(request, "sla", "GET", path, params={parameter: value} if value else {})
    except (Refused, Unavailable) as error:
        return _error(request, actor, error)
    headers = {"content-disposition": answer.headers.get("content-disposition", f'attachment; filename="{name}"')}
    return Response(answer.content, media_type=answer.headers.get("content-type"), headers=headers)


async def _directory_page(
    request: Request,
    actor: Actor,
    department: str = "",
    *,
    import_errors: list[dict] | None = None,
    imported: int | None = None,
    status: int = 200,
) -> Response:
    if actor.role != "admin":
        return _error(request, actor, Refused(403, "通讯录由管理员维护；如需修改请联系本级管理员。"))
    people, on_duty, error = [], None, ""
    try:
        params = {"department_code": department} if department else {}
        people = (await _ask(request, "dispatch", "GET", "/api/v1/directory/people", params=params))["people"]
        if department:
            try:
                on_duty = await _ask(
                    request,
                    "dispatch",
                    "GET",
                    f"/api/v1/directory/rosters/{quote(department)}/on-duty",
                    params={"jurisdiction_code": actor.jurisdiction_code},
                )
            except Refused as none:
                if none.status != 404:
                    raise
    except (Refused, Unavailable) as failure:
        error, status = failure.message, failure.status
    html = pages.directory_page(
        actor=actor,
        names=_names(request),
        csrf=_csrf(request),
        people=people,
        department=department,
        on_duty=on_duty,
        error=error,
        import_errors=import_errors,
        imported=imported,
    )
    return _html(request, html, status)


@router.get("/directory")
async def directory(request: Request, actor: CurrentActor, department: Annotated[str, Query(max_length=40)] = ""):
    """通讯录: people, their roles, WeCom ids and masked mobiles; who is on duty (admins)."""
    return await _directory_page(request, actor, department)


@router.post("/directory/import", dependencies=[Csrf])
async def directory_import(request: Request, actor: CurrentActor):
    """A people CSV, imported all or nothing by dispatch; every error listed with its line."""
    form = await request.form()
    upload = form.get("file")
    content = await upload.read() if isinstance(upload, UploadFile) else b""
    try:
        answer = await _ask(
            request,
            "dispatch",
            "POST",
            "/api/v1/directory/people/import",
            content=content,
            headers={"content-type": "text/csv"},
        )
    except Refused as refused:
        errors = refused.errors or [{"line": "—", "error": refused.message}]
        return await _directory_page(request, actor, import_errors=errors, status=refused.status)
    except Unavailable as unavailable:
        return await _directory_page(
            request, actor, import_errors=[{"line": "—", "error": str(unavailable)}], status=502
        )
    return await _directory_page(request, actor, imported=answer["imported"])


@router.get("/media/{media_id}")
async def photo(request: Request, actor: CurrentActor, media_id: UUID):
    """A case photo through the console (one origin: the browser never needs the object store)."""
    try:
        item = await _ask(request, "media", "GET", f"/api/v1/media/{media_id}")
        if item.get("restricted"):  # media tells others only that it exists
            raise Refused(403, "这张照片所属的案件不在您的辖区或部门范围内，无法查看。")
        url = item["urls"].get("public") or item["urls"].get("original")
        if url is None:
            raise Refused(404, "这张照片已过保存期限，已被清理。")
        content = await call(request.app.state.http, "media", "GET", url)
    except (Refused, Unavailable) as error:
        return _error(request, actor, error)
    media_type = "image/jpeg" if item["urls"].get("public") else item["content_type"]
    return Response(content.content, media_type=media_type, headers={"cache-control": "private, max-age=300"})


@router.get("/cases/{case_id}/comparison.jpg")
async def comparison(request: Request, actor: CurrentActor, case_id: UUID):
    """整改前后对比: media draws it once from the case's newest before and after photos (again only
    when they change); the console serves the image so the browser never needs the object store."""
    try:
        drawn = await _ask(request, "media", "POST", f"/api/v1/cases/{case_id}/comparison")
        content = await call(request.app.state.http, "media", "GET", drawn["url"])
    except (Refused, Unavailable) as error:
        return _error(request, actor, error)
    return Response(content.content, media_type="image/jpeg", headers={"cache-control": "private, max-age=300"})


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.get("/events")
async def live_events(request: Request, actor: CurrentActor):
    """Server-sent events: the case events this person may see, as they happen (the live queue)."""
    hub, settings = request.app.state.hub, request.app.state.settings
    token = request.state.token
    subscriber = hub.subscribe(actor)

    async def stream():
        try:
            yield "retry: 3000\n\n" + sse("ready", {})
            while True:
                try:
                    message = await asyncio.wait_for(subscriber.queue.get(), settings.console_heartbeat_s)
                    yield sse("case", message)
                except TimeoutError:
                    try:  # the session may have expired meanwhile
                        request.app.state.token_verifier.verify(token)
                    except InvalidToken:
                        yield sse("expired", {})
                        return
                    except ProviderUnavailable:
                        pass  # the provider's keys are out of reach for now: the next beat asks again
                    yield ": keep-alive\n\n"
        finally:
            hub.unsubscribe(subscriber)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"cache-control": "no-store", "x-accel-buffering": "no"}
    )


@router.get("/static/{name}")
@public("the console's own script and style sheet (no data; served here, never from a CDN)")
async def asset(name: str):
    if name not in ASSETS:
        raise Problem(404, "Not found", f"No asset {name}.", kind="not-found")
    return FileResponse(STATIC / name, media_type=f"{ASSETS[name]}; charset=utf-8")


# --- The mobile work page (/m/…): WeCom OAuth2 login, my cases, one case with its actions ---------


def _mobile_error(request: Request, status: int, message: str, actor: Actor | None = None) -> HTMLResponse:
    return _html(request, mobile.error_page(status=status, message=message, actor=actor, names=_names(request)), status)


@router.get("/m/auth/start")
@public("the mobile work page's login: sends the WeCom browser to WeCom's OAuth2 authorize page; no session yet")
async def wecom_start(request: Request, next: str = "/m/"):  # noqa: A002 - the query parameter's name
    next_path = sessions.safe_next(next)
    if not next_path.startswith("/m/"):
        next_path = "/m/"
    if not wecom.enabled(request):
        return _mobile_error(request, 404, "本环境未配置企业微信登录，请联系系统管理员。")
    flow = wecom.new_flow(next_path)
    response = RedirectResponse(wecom.authorize_url(request, flow), status_code=302)
    # Lax, not Strict: WeCom's authorize page sends the browser back here from its own site.
    settings = request.app.state.settings
    response.set_cookie(
        wecom.FLOW_COOKIE,
        wecom.flow_cookie(settings.auth_jwt_secret, flow),
        max_age=wecom.FLOW_TTL_S,
        httponly=True,
        samesite="lax",
        secure=settings.console_cookie_secure,
        path=wecom.FLOW_PATH,
    )
    return response


@router.get("/m/auth/callback")
@public("WeCom returns the person here with a one-time code; the state must match this browser's login")
async def wecom_callback(request: Request, code: Annotated[str, Query(max_length=512)] = "", state: str = ""):
    """Trade WeCom's code for the userid, the userid for the directory's person, and open the session.
    The flow cookie is forgotten whatever happens, so a state is used once."""
    settings = request.app.state.settings
    flow = wecom.read_flow_cookie(settings.auth_jwt_secret, request.cookies.get(wecom.FLOW_COOKIE, ""))

    def refused(status: int, message: str) -> HTMLResponse:
        response = _mobile_error(request, status, message)
        response.delete_cookie(wecom.FLOW_COOKIE, path=wecom.FLOW_PATH)
        return response

    if flow is None or not state or not hmac.compare_digest(state, flow.state):
        return refused(400, "登录已过期或不是从本页面发起的，请从企业微信重新打开本页面。")
    if not code:
        return refused(401, "企业微信未完成授权，请从企业微信重新打开本页面。")
    try:
        session = await wecom.open_session(request, await wecom.userid_for(request, code))
    except wecom.LoginFailed as failed:
        return refused(failed.status, failed.message)
    response = _html(request, mobile.signed_in_page(actor=session.actor, next_path=flow.next_path))
    sessions.set_cookies(
        response,
        secret=settings.auth_jwt_secret,
        token=session.token,
        max_age=sessions.max_age(session.token),
        secure=settings.console_cookie_secure,
    )
    response.delete_cookie(wecom.FLOW_COOKIE, path=wecom.FLOW_PATH)
    return response


@router.get("/m/")
async def mobile_home(request: Request, actor: CurrentActor, located: Annotated[str, Query(max_length=40)] = ""):
    """我的待办: the person's open cases (a grid worker: first those not yet checked on site, 核实),
    the resolved ones to ask the reporter about (回访), and the reports to place on the map (待定位)."""
    open_cases: list[dict] = []
    resolved: list[dict] = []
    to_locate: list[dict] | None = None
    error = ""
    try:
        asked = {"status": pages.OPEN_STATUSES, "limit": "50"}
        open_cases = (await _ask(request, "dispatch", "GET", "/api/v1/cases", params=asked))["cases"]
        if actor.role in ACTIONS["verify"].roles:
            checked = {"status": ["resolved"], "limit": "50"}
            resolved = (await _ask(request, "dispatch", "GET", "/api/v1/cases", params=checked))["cases"]
    except (Refused, Unavailable) as failure:
        error = failure.message
    if mobile.may_locate(actor):
        try:
            to_locate = (await _ask(request, "intake", "GET", "/api/v1/reports-to-locate"))["reports"]
        except (Refused, Unavailable) as failure:
            error = error or failure.message
    html = mobile.home_page(
        actor=actor,
        names=_names(request),
        open_cases=open_cases,
        resolved=resolved,
        to_locate=to_locate,
        error=error,
        located=located,
    )
    return _html(request, html)


async def _mobile_locate_page(
    request: Request, actor: Actor, report_id: UUID, *, error: str = "", point=("", ""), status: int = 200
) -> Response:
    """定位 on the phone, for those who place reports; anyone else gets the page that says who may."""
    if not mobile.may_locate(actor):
        message = "只有网格员和指挥中心人员可以为上报定位。如需定位，请联系所在网格的网格员。"
        return _mobile_error(request, 403, message, actor)
    try:
        report = await _ask(request, "intake", "GET", f"/api/v1/reports/{report_id}")
    except (Refused, Unavailable) as failure:
        return _mobile_error(request, failure.status, failure.message, actor)
    photos, hidden = [], 0
    for media_id in report.get("media_ids") or ():
        try:  # media decides who sees a report's photos (it answers "restricted" to the others)
            item = await _ask(request, "media", "GET", f"/api/v1/media/{media_id}")
        except (Refused, Unavailable):
            item = {"restricted": True}
        if item.get("restricted"):
            hidden += 1
        else:
            photos.append(str(media_id))
    html = mobile.locate_page(
        actor=actor,
        names=_names(request),
        csrf=_csrf(request),
        report=report,
        photos=photos,
        hidden_photos=hidden,
        tiles_url=request.app.state.settings.console_map_tiles_url,
        error=error,
        point=point,
    )
    return _html(request, html, status)


@router.get("/m/locate/{report_id}")
async def mobile_locate_page(request: Request, actor: CurrentActor, report_id: UUID):
    """Place a report that came with only an address, from the phone: the phone's position or a
    point picked on the map of the person's area."""
    return await _mobile_locate_page(request, actor, report_id)


@router.post("/m/locate/{report_id}", dependencies=[Csrf])
async def mobile_locate(request: Request, actor: CurrentActor, report_id: UUID):
    """The point from the phone, placed exactly as the desktop's 定位 places it (`_locate`)."""
    if not mobile.may_locate(actor):
        return await _mobile_locate_page(request, actor, report_id)
    form = await request.form()
    try:
        report = await _locate(request, report_id, form)
    except (Refused, Unavailable) as failure:
        point = (str(form.get("lat") or ""), str(form.get("lng") or ""))
        return await _mobile_locate_page(
            request, actor, report_id, error=failure.message, point=point, status=failure.status
        )
    return RedirectResponse(f"/m/?located={quote(report.get('case_no') or '')}", status_code=303)


async def _find_case(request: Request, reference: str) -> dict:
    """A case by its number (GL20261202-0007, as 派单 messages link it) or its id."""
    try:
        return await _ask(request, "dispatch", "GET", f"/api/v1/cases/{UUID(reference)}")
    except ValueError:
        pass
    found = (await _ask(request, "dispatch", "GET", "/api/v1/cases", params={"q": reference, "limit": "2"}))["cases"]
    numbered = [c for c in found if c.get("case_no") == reference]
    if len(numbered) != 1:
        raise Refused(404, f"没有找到案件「{reference}」，或它不在您的辖区或部门范围内。")
    return await _ask(request, "dispatch", "GET", f"/api/v1/cases/{numbered[0]['case_id']}")


async def _mobile_case_page(
    request: Request, actor: Actor, reference: str, *, done: str = "", failed=None, status: int = 200
) -> Response:
    try:
        case = await _find_case(request, reference)
    except (Refused, Unavailable) as error:
        return _mobile_error(request, error.status, error.message, actor)
    timers = None
    try:
        timers = (await _ask(request, "sla", "GET", f"/api/v1/cases/{case['case_id']}/timers"))["timers"]
    except (Refused, Unavailable):  # the page says the deadlines cannot be shown
        pass
    html = mobile.case_page(
        actor=actor,
        names=_names(request),
        csrf=_csrf(request),
        case=case,
        keys={name: f"mobile-{uuid.uuid4()}" for name in case["actions"]},
        timers=timers,
        tiles_url=request.app.state.settings.console_map_tiles_url,
        done=done,
        failed=failed,
    )
    return _html(request, html, status)


Reference = Annotated[str, Path(max_length=100, pattern=r"^[A-Za-z0-9-]+$")]


@router.get("/m/cases/{reference}")
async def mobile_case(request: Request, actor: CurrentActor, reference: Reference, done: str = ""):
    """A case on the phone (the link in 派单 messages): facts, photos, map, deadlines, and the
    actions the person may take now."""
    return await _mobile_case_page(request, actor, reference, done=done)


def _device(form) -> dict | None:
    """Where the phone was (the page's navigator.geolocation fields), or None when it did not say."""
    try:
        lat, lng = float(str(form.get("lat") or "")), float(str(form.get("lng") or ""))
    except ValueError:
        return None
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    try:
        accuracy: float | None = max(float(str(form.get("accuracy_m") or "")), 0.0)
    except ValueError:
        accuracy = None
    return {"lat": lat, "lng": lng, "accuracy_m": accuracy}


@router.post("/m/cases/{reference}/actions/{name}", dependencies=[Csrf])
async def mobile_action(request: Request, actor: CurrentActor, reference: Reference, name: str):
    """One action from the phone, as the person; 办结 and 即知即改 take new photos (with the phone's
    location) or the 整改后 photos taken before. Dispatch decides."""
    if name not in ACTIONS:
        raise Problem(404, "Not found", f"没有「{name}」这个操作。", kind="not-found")
    spec = ACTIONS[name]
    form = await request.form()
    values: dict = {}
    try:
        case = await _find_case(request, reference)
        case_id = UUID(case["case_id"])
        arguments, values = _arguments(name, form)
        await _post_action(
            request,
            case_id,
            spec,
            form,
            arguments,
            source="mobile",
            device=_device(form),
            earlier_after=mobile.unnamed_after_photos(case),
        )
    except (Refused, Unavailable) as failure:
        return await _mobile_case_page(
            request, actor, reference, failed=(name, failure.message, values), status=failure.status
        )
    return RedirectResponse(f"/m/cases/{reference}?done={name}", status_code=303)


@router.post("/m/cases/{reference}/photos", dependencies=[Csrf])
async def mobile_photo(request: Request, actor: CurrentActor, reference: Reference):
    """A 整改前 or 整改后 photo from the phone's camera, attached to the case as evidence with where
    the phone was."""
    form = await request.form()
    role = str(form.get("role") or "after")
    photo = form.get("photo")
    try:
        if role not in mobile.PHOTO_ROLES:
            raise Refused(422, "请选择「整改前」或「整改后」。")
        if not isinstance(photo, UploadFile) or not photo.filename:
            raise Refused(422, "请先拍照或选择照片。")
        case = await _find_case(request, reference)
        await _after_photos(request, UUID(case["case_id"]), [photo], role=role, device=_device(form))
    except (Refused, Unavailable) as failure:
        return await _mobile_case_page(
            request, actor, reference, failed=("photo", failure.message, {}), status=failure.status
        )
    return RedirectResponse(f"/m/cases/{reference}?done=photo", status_code=303)
