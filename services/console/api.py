"""The console's routes: login and logout, the queue (工作台) with its live feed, a case with its
action forms, the supervision list (督办), photos, and the page assets. Thin: the services decide
everything; these routes ask them with the person's token and show the answer."""

import asyncio
import hmac
import json
import uuid
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile

from services.console import oidc, pages, sessions
from services.console.upstream import Refused, Unavailable, call
from shared.auth import Actor, InvalidToken, ProviderUnavailable
from shared.case_actions import ACTIONS
from shared.problems import Problem
from shared.web import CurrentActor, public

STATIC = Path(__file__).parent / "static"
ASSETS = {"console.css": "text/css", "console.js": "text/javascript"}

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


async def _ask(request: Request, service: str, method: str, path: str, **kwargs):
    """A service's answer to the person's request (their own token), as JSON."""
    response = await call(
        request.app.state.http, service, method, _url(request, service, path), token=request.state.token, **kwargs
    )
    return response.json()


def _html(request: Request, html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})


def _error(request: Request, actor: Actor, error: Refused | Unavailable) -> Response:
    if isinstance(error, Refused) and error.status == 401:  # the services no longer take the token
        return sessions.login_required_response(request)
    message = error.message if isinstance(error, Refused) else str(error)
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


@router.get("/")
async def queue(
    request: Request,
    actor: CurrentActor,
    tab: Annotated[str, Query(pattern="^(" + "|".join(pages.TABS) + ")$")] = "open",
    q: Annotated[str, Query(max_length=100)] = "",
):
    """工作台: the person's cases by tab, newest first; a search looks in every status."""
    cases: dict[str, dict] = {}
    error, status = "", 200
    try:
        for filters in pages.TABS["all" if q.strip() else tab][1]:
            params = filters | {"limit": "100"} | ({"q": q.strip()} if q.strip() else {})
            for case in (await _ask(request, "dispatch", "GET", "/api/v1/cases", params=params))["cases"]:
                cases[case["case_id"]] = case
    except Refused as refused:
        if refused.status == 401:
            return sessions.login_required_response(request)
        error, status = refused.message, refused.status
    except Unavailable as unavailable:
        error, status = str(unavailable), 502
    rows = sorted(cases.values(), key=lambda c: c["created_at"], reverse=True)
    html = pages.queue_page(
        actor=actor, names=_names(request), csrf=_csrf(request), tab=tab, q=q, cases=rows, error=error
    )
    return _html(request, html, status)


async def _case_page(
    request: Request, actor: Actor, case_id: UUID, *, done: str = "", failed=None, status: int = 200
) -> Response:
    try:
        case = await _ask(request, "dispatch", "GET", f"/api/v1/cases/{case_id}")
    except (Refused, Unavailable) as error:
        return _error(request, actor, error)
    # A fresh Idempotency-Key per form and page: a double click or a resubmitted form acts once.
    keys = {name: f"console-{uuid.uuid4()}" for name in case["actions"]}
    html = pages.case_page(
        actor=actor, names=_names(request), csrf=_csrf(request), case=case, keys=keys, done=done, failed=failed
    )
    return _html(request, html, status)


@router.get("/cases/{case_id}")
async def case_page(request: Request, actor: CurrentActor, case_id: UUID, done: str = ""):
    """A case: its facts, timeline, photos and a form for each action the person may take now."""
    return await _case_page(request, actor, case_id, done=done)


async def _after_photos(request: Request, case_id: UUID, photos: list[UploadFile]) -> list[str]:
    """Store each photo in media and attach it to the case as 整改后; their media ids."""
    ids = []
    for photo in photos:
        content = await photo.read()
        files = {"file": (photo.filename or "after.jpg", content, photo.content_type or "application/octet-stream")}
        stored = await _ask(request, "media", "POST", "/api/v1/media", files=files)
        await _ask(
            request,
            "media",
            "POST",
            f"/api/v1/cases/{case_id}/media",
            json={"media_id": stored["media_id"], "role": "after"},
        )
        ids.append(stored["media_id"])
    return ids


def _arguments(name: str, form) -> tuple[dict, dict]:
    """The action's request body from its form (and the values to show again if it is refused)."""
    spec = ACTIONS[name]
    arguments: dict[str, Any] = {}
    values: dict[str, str] = {}
    for field, info in spec.request.model_fields.items():
        if field == "after_media_ids":
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
        if "after_media_ids" in spec.request.model_fields:
            photos = [p for p in form.getlist("photos") if isinstance(p, UploadFile) and p.filename]
            if photos:
                arguments["after_media_ids"] = await _after_photos(request, case_id, photos)
        key = str(form.get("idempotency_key") or f"console-{uuid.uuid4()}")
        await _ask(
            request,
            "dispatch",
            "POST",
            f"/api/v1/cases/{case_id}/{spec.path}",
            json=arguments,
            headers={"idempotency-key": key},
        )
    except Refused as refused:
        if refused.status == 401:
            return sessions.login_required_response(request)
        return await _case_page(request, actor, case_id, failed=(name, refused.message, values), status=refused.status)
    except Unavailable as unavailable:
        return await _case_page(request, actor, case_id, failed=(name, str(unavailable), values), status=502)
    return RedirectResponse(f"/cases/{case_id}?done={name}", status_code=303)


@router.get("/supervision")
async def supervision(request: Request, actor: CurrentActor):
    """督办: deadlines missed below this level — who, what, how late."""
    breaches, error, status = [], "", 200
    try:
        breaches = (await _ask(request, "dispatch", "GET", "/api/v1/supervision"))["breaches"]
    except Refused as refused:
        if refused.status == 401:
            return sessions.login_required_response(request)
        error, status = refused.message, refused.status
    except Unavailable as unavailable:
        error, status = str(unavailable), 502
    html = pages.supervision_page(
        actor=actor, names=_names(request), csrf=_csrf(request), breaches=breaches, error=error
    )
    return _html(request, html, status)


@router.get("/media/{media_id}")
async def photo(request: Request, actor: CurrentActor, media_id: UUID):
    """A case photo through the console (one origin: the browser never needs the object store)."""
    try:
        item = await _ask(request, "media", "GET", f"/api/v1/media/{media_id}")
        url = item["urls"].get("public") or item["urls"].get("original")
        if url is None:
            raise Refused(404, "这张照片已过保存期限，已被清理。")
        content = await call(request.app.state.http, "media", "GET", url)
    except (Refused, Unavailable) as error:
        return _error(request, actor, error)
    media_type = "image/jpeg" if item["urls"].get("public") else item["content_type"]
    return Response(content.content, media_type=media_type, headers={"cache-control": "private, max-age=300"})


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
