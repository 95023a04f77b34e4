"""Logging in through the real local OpenID Connect provider (node-oidc-provider, started by
infra.sh like make up's): a person's access token from the authorization-code flow with PKCE is
taken by dispatch as that person (role, jurisdiction, department), and the console logs staff in
with it (login form at the provider → callback → httpOnly session → logout at the provider)."""

import base64
import dataclasses
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt

from devtools.local_servers import Infra
from services.console import oidc
from services.console.app import create_app as console_app
from services.dispatch.app import create_app as dispatch_app
from tests.support import follow, log_in_at_provider, running, serving

AUDIENCE = "urn:gridlink:services"
CLIENT = ("gridlink-console", "local-development-only")
HTML = {"accept": "text/html"}


async def authorize(http: httpx.AsyncClient, infra: Infra, verifier: str) -> httpx.Response:
    """An authorization request as the console sends it: the provider's login form."""
    callback = f"http://127.0.0.1:{infra.console_port}/auth/callback"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "client_id": CLIENT[0],
        "response_type": "code",
        "scope": "openid profile gridlink",
        "redirect_uri": callback,
        "state": "s-1",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": AUDIENCE,
    }
    form = await follow(http, await http.get(f"{infra.oidc_issuer}/auth", params=query), stop_at=callback)
    assert form.status_code == 200 and "统一身份认证" in form.text
    return form


async def provider_tokens(http: httpx.AsyncClient, infra: Infra, *, username: str, password: str) -> dict:
    """The person's tokens, got as the console gets them (the code never reaches a console here)."""
    callback = f"http://127.0.0.1:{infra.console_port}/auth/callback"
    verifier = secrets.token_urlsafe(48)
    form = await authorize(http, infra, verifier)
    back = await log_in_at_provider(http, form, username=username, password=password, stop_at=callback)
    assert back.is_redirect, back.text
    answer = parse_qs(urlsplit(back.headers["location"]).query)
    assert answer["state"] == ["s-1"] and answer["iss"] == [infra.oidc_issuer]
    token = await http.post(
        f"{infra.oidc_issuer}/token",
        auth=CLIENT,
        data={
            "grant_type": "authorization_code",
            "code": answer["code"][0],
            "redirect_uri": callback,
            "code_verifier": verifier,
            "resource": AUDIENCE,
        },
    )
    assert token.status_code == 200, token.text
    return token.json()


async def test_a_token_from_the_provider_is_taken_by_dispatch_as_its_person(make_settings, infra):
    async with httpx.AsyncClient(timeout=10) as http:
        # A wrong password is refused on the provider's own form.
        form = await authorize(http, infra, secrets.token_urlsafe(48))
        wrong = await log_in_at_provider(http, form, username="zhujian", password="guess")
        assert wrong.status_code == 401 and "用户名或密码不正确" in wrong.text
        tokens = await provider_tokens(http, infra, username="zhujian", password="gridlink-demo")
    async with httpx.AsyncClient(timeout=10) as http:  # another browser: the provider's session is per browser
        supervisor = await provider_tokens(http, infra, username="supervisor", password="gridlink-demo")
    access = tokens["access_token"]
    assert jwt.get_unverified_header(access)["alg"] in ("RS256", "ES256")
    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["aud"] == AUDIENCE and claims["iss"] == infra.oidc_issuer
    assert (claims["role"], claims["department"], claims["name"]) == ("handler", "zhujian", "李强")

    async with running(dispatch_app(make_settings("dispatch"))) as dispatch:

        def ask(path: str, token: str):
            return dispatch.get(path, headers={"authorization": f"Bearer {token}"})

        assert (await ask("/api/v1/cases", access)).status_code == 200
        # A handler is not a supervisor: the role came from the provider's claims.
        assert (await ask("/api/v1/supervision", access)).status_code == 403
        assert (await ask("/api/v1/supervision", supervisor["access_token"])).status_code == 200
        # The ID token is for the console, not the services; a tampered token is nobody's.
        head, body, signature = access.split(".")
        for bad in (tokens["id_token"], f"{head}.{body}.{signature[::-1]}", "x.y.z"):
            refused = await ask("/api/v1/cases", bad)
            assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"


async def test_the_console_logs_staff_in_and_out_at_the_provider(make_settings, infra):
    dispatch_settings = make_settings("dispatch")
    async with serving(dispatch_app(dispatch_settings)) as dispatch_url:
        settings = make_settings("console", console_dispatch_url=dispatch_url)  # no demo people: production's page
        async with (
            serving(console_app(settings), port=infra.console_port) as origin,
            httpx.AsyncClient(timeout=10, headers=HTML) as http,
        ):
            page = await http.get(f"{origin}/login?next=/supervision")
            assert 'id="oidc-login"' in page.text and "演示人员" not in page.text
            start = await http.get(f"{origin}/auth/start", params={"next": "/supervision"})
            assert start.is_redirect and start.headers["location"].startswith(f"{infra.oidc_issuer}/auth?")
            flow_cookie = start.headers["set-cookie"]
            assert "HttpOnly" in flow_cookie and "samesite=lax" in flow_cookie.lower()
            query = parse_qs(urlsplit(start.headers["location"]).query)
            assert query["code_challenge_method"] == ["S256"] and query["resource"] == ["urn:gridlink:services"]

            form = await follow(http, start)
            callback = await log_in_at_provider(
                http, form, username="dispatcher", password="gridlink-demo", stop_at=f"{origin}/auth/callback"
            )
            callback_url = str(callback.url.join(callback.headers["location"]))
            landed = await http.get(callback_url)
            assert landed.status_code == 200 and "王敏" in landed.text and 'url=/supervision"' in landed.text
            session_cookie = next(c for c in landed.headers.get_list("set-cookie") if c.startswith("gl_session="))
            assert "HttpOnly" in session_cookie and "samesite=strict" in session_cookie.lower()
            queue = await http.get(f"{origin}/supervision")
            assert queue.status_code == 200 and "王敏" in queue.text

            # The code is single use, and a callback this browser did not start is refused.
            assert (await http.get(callback_url)).status_code in (400, 401)
            assert (await http.get(f"{origin}/auth/callback", params={"code": "x", "state": "y"})).status_code == 400

            # A login whose ID token answers another login (its nonce) opens no session; neither
            # does one the person cancelled at the provider.
            async with httpx.AsyncClient(timeout=10, headers=HTML) as other:
                start = await other.get(f"{origin}/auth/start")
                flow = oidc.read_flow_cookie(settings.auth_jwt_secret, other.cookies["gl_oidc"])
                form = await follow(other, start)
                back = await log_in_at_provider(
                    other, form, username="zhujian", password="gridlink-demo", stop_at=f"{origin}/auth/callback"
                )
                other.cookies.set(
                    "gl_oidc",
                    oidc.flow_cookie(settings.auth_jwt_secret, dataclasses.replace(flow, nonce="another")),
                    path="/auth",
                )
                refused = await other.get(str(back.url.join(back.headers["location"])))
                assert refused.status_code == 401 and "身份无效" in refused.text and "gl_session" not in other.cookies
                cancelled = await other.get(
                    f"{origin}/auth/callback", params={"error": "access_denied", "state": flow.state}
                )
                assert cancelled.status_code == 401 and "未完成登录" in cancelled.text

            # Logout: the console forgets the session and the provider ends its own.
            out = await http.post(f"{origin}/logout", data={"csrf_token": http.cookies["gl_csrf"]})
            assert out.is_redirect and "/session/end?" in out.headers["location"]
            assert "id_token_hint=" in out.headers["location"]
            confirm = await follow(http, out)
            fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', confirm.text))
            action = re.search(r'<form method="post" action="([^"]+)"', confirm.text) or re.search(
                r'action="([^"]+)"', confirm.text
            )
            assert action, confirm.text
            done = await follow(
                http, await http.post(str(confirm.url.join(action[1])), data=fields | {"logout": "yes"})
            )
            assert str(done.url).startswith(f"{origin}/login") and "gl_session" not in http.cookies
            assert (await http.get(f"{origin}/")).headers["location"] == "/login?next=/"
