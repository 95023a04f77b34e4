"""Private by default: every route of every service answers 401 without a token unless its
endpoint is declared `@public(reason)`; the public ones are listed here so that opening a route
is a visible, reviewed change. And every JSON route declares its response model, so /docs shows
what comes back."""

import re
from contextlib import asynccontextmanager
from urllib.parse import quote
from uuid import uuid4

import httpx
import pytest
from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts

from services.console.app import create_app as console_app
from services.dispatch.app import create_app as dispatch_app
from services.intake.app import create_app as intake_app
from services.media.app import create_app as media_app
from services.notify.app import create_app as notify_app
from services.sla.app import create_app as sla_app
from shared.web import DOCUMENTATION_PATHS, public_reason
from tests.support import SETTINGS_CLASSES

FACTORIES = {
    "intake": intake_app,
    "dispatch": dispatch_app,
    "sla": sla_app,
    "notify": notify_app,
    "media": media_app,
    "console": console_app,
}

# (service, method, path) of every route open without a token. Each endpoint says why in its
# @public reason; this list makes a newly opened route fail here until someone adds it on purpose.
PUBLIC = {
    ("intake", "POST", "/api/v1/reports"),
    ("intake", "POST", "/api/v1/triage"),
    ("intake", "POST", "/api/v1/query"),
    ("intake", "POST", "/api/v1/query/codes"),
    ("intake", "POST", "/api/v1/query/by-phone"),
    ("intake", "POST", "/api/v1/confirmations"),
    ("intake", "GET", "/api/v1/locate"),
    ("intake", "GET", "/api/v1/captcha"),
    ("intake", "GET", "/h5/"),
    ("intake", "GET", "/h5/query"),
    ("intake", "GET", "/h5/confirm"),
    ("intake", "GET", "/h5/static/{name}"),
    ("intake", "GET", "/open311/v2/discovery.{fmt}"),
    ("intake", "GET", "/open311/v2/services.{fmt}"),
    ("intake", "GET", "/open311/v2/services/{service_code}.{fmt}"),
    ("intake", "POST", "/open311/v2/requests.{fmt}"),
    ("intake", "GET", "/open311/v2/requests.{fmt}"),
    ("intake", "GET", "/open311/v2/requests/{request_id}.{fmt}"),
    ("intake", "GET", "/open311/v2/tokens/{token}.{fmt}"),
    ("media", "POST", "/api/v1/media"),
    ("media", "GET", "/api/v1/media/{media_id}"),
    ("media", "POST", "/api/v1/uploads"),
    ("media", "GET", "/api/v1/uploads/{upload_id}"),
    ("media", "POST", "/api/v1/uploads/{upload_id}/complete"),
    ("notify", "GET", "/api/v1/callbacks/wecom"),
    ("notify", "POST", "/api/v1/callbacks/wecom"),
    ("notify", "GET", "/api/v1/callbacks/wechat"),
    ("notify", "POST", "/api/v1/callbacks/wechat"),
    ("notify", "GET", "/api/v1/callbacks/wecom-aibot"),
    ("notify", "POST", "/api/v1/callbacks/wecom-aibot"),
    ("dispatch", "POST", "/api/v1/auth/dev-tokens"),
    ("console", "GET", "/login"),
    ("console", "POST", "/login"),
    ("console", "GET", "/auth/start"),
    ("console", "GET", "/auth/callback"),
    # The mobile work page's WeCom OAuth2 login (no session yet; the callback checks the state).
    ("console", "GET", "/m/auth/start"),
    ("console", "GET", "/m/auth/callback"),
    # The console's one-minute WeCom identity assertion, checked in the route (its own audience).
    ("dispatch", "POST", "/api/v1/directory/wecom-login"),
    ("console", "GET", "/static/{name}"),
    *{
        (service, "GET", path)
        for service in FACTORIES
        for path in ("/healthz", "/readyz", "/metrics", "/asyncapi.json")
    },
}


@asynccontextmanager
async def no_lifespan(app):
    yield


def service_routes():
    for service, factory in FACTORIES.items():
        app = factory(SETTINGS_CLASSES[service](service_name=service))
        app.router.lifespan_context = no_lifespan  # routes only: no servers needed to ask them
        for route in iter_route_contexts(app.routes):
            if route.path not in DOCUMENTATION_PATHS:
                for method in sorted(route.methods - {"HEAD"}):
                    yield service, app, method, route


ROUTES = list(service_routes())


def concrete(path: str) -> str:
    """A request path for a route template: any value will do, the token is checked first."""
    return re.sub(r"\{(\w+)\}", lambda m: "json" if m[1] == "fmt" else str(uuid4()), path)


def test_every_public_route_is_listed_and_says_why():
    declared = {(service, method, route.path) for service, _, method, route in ROUTES if public_reason(route)}
    assert declared == PUBLIC
    assert all(len(public_reason(route)) > 10 for *_, route in ROUTES if public_reason(route))


def test_there_are_routes_to_check():
    assert {service for service, *_ in ROUTES} == set(FACTORIES)
    assert len(ROUTES) > 60


@pytest.mark.parametrize(
    "service,app,method,route",
    [r for r in ROUTES if not public_reason(r[3])],
    ids=lambda v: v if isinstance(v, str) else getattr(v, "path", ""),
)
async def test_private_route_answers_401_without_a_token(service, app, method, route):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gridlink") as client:
        anonymous = await client.request(method, concrete(route.path))
        forged = await client.request(method, concrete(route.path), headers={"authorization": "Bearer a.b.c"})
    for response in (anonymous, forged):
        assert response.status_code == 401, (service, method, route.path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("unauthenticated")


# Routes that answer JSON without a declared response model, on purpose: (path pattern, why).
UNDECLARED = {
    r"/(healthz|readyz|metrics)": "probes and Prometheus' scrape, not API: left out of /docs (shared/web.py)",
    r"/asyncapi\.json": "the AsyncAPI document: a description like /openapi.json, in its own standard's shape",
    r"/open311/v2/.+\.\{fmt\}": "Open311 answers XML or JSON by the format in the path, in the spec's own shapes",
}


def answers_json(route) -> bool:
    """Whether the route's response class is JSON (not plain text, HTML or files)."""
    response_class = route.response_class
    if isinstance(response_class, DefaultPlaceholder):
        response_class = response_class.value
    return issubclass(response_class, JSONResponse)


def undeclared(route) -> bool:
    return any(re.fullmatch(pattern, route.path) for pattern in UNDECLARED)


def test_every_json_route_declares_its_response_model():
    """Every route /docs shows says what it answers; pages (H5, the console) are not in /docs."""
    missing = [
        (service, method, route.path)
        for service, _, method, route in ROUTES
        if route.include_in_schema and answers_json(route) and not undeclared(route) and route.response_model is None
    ]
    assert missing == []


def test_every_undeclared_pattern_still_names_a_route():
    for pattern in UNDECLARED:
        assert any(re.fullmatch(pattern, route.path) for *_, route in ROUTES), pattern


# The console's private routes check its session cookie, not a bearer token: without a session, a
# browser asking for a page (Accept: text/html) is sent to the login page, which returns it to the
# page asked for; everything else (the live queue's stream, scripts, forms posted by other tools)
# answers 401 problem+json, like the services — as the test above asks.
CONSOLE_PAGES = [
    (app, route)
    for service, app, method, route in ROUTES
    if service == "console" and method == "GET" and not public_reason(route)
]


def test_the_console_has_pages_to_check():
    assert {route.path for _, route in CONSOLE_PAGES} >= {"/", "/cases/{reference}", "/supervision", "/events", "/map"}


@pytest.mark.parametrize("app,route", CONSOLE_PAGES, ids=lambda v: getattr(v, "path", ""))
async def test_a_console_page_without_a_session_sends_the_browser_to_login(app, route):
    path = concrete(route.path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gridlink") as client:
        page = await client.get(path, headers={"accept": "text/html,application/xhtml+xml"})
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gridlink", cookies={"gl_session": "a.b"}
    ) as client:
        forged = await client.get(path, headers={"accept": "text/html"})
    for response in (page, forged):
        assert response.status_code == 303, (route.path, response.text)
        login = "/m/auth/start" if path.startswith("/m/") else "/login"  # the mobile pages: WeCom's OAuth2
        assert response.headers["location"] == f"{login}?next=" + quote(path)
    assert "gl_session=" in forged.headers["set-cookie"]  # the forged session is cleared
