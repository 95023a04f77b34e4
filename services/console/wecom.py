"""Logging in on the mobile work page (/m/…) through WeCom's OAuth2 (网页授权, snsapi_base).

/m/auth/start sends the WeCom browser to WeCom's authorize page with a fresh `state` (letters and
digits, as WeCom requires), kept with the page to return to in a short-lived httpOnly cookie the
console signs, so a callback this browser did not start is refused. WeCom sends the browser back
to /m/auth/callback with a one-time code (it works once, for 5 minutes); the console trades it at
`cgi-bin/auth/getuserinfo` with its application's access token for the WeCom userid.

The userid then becomes a person of dispatch's directory (通讯录): the console signs a one-minute
assertion for `wecom:<userid>` that only dispatch's WeCom login route accepts, and dispatch answers
with the person, their roles and the role the session acts in — or 403 in Chinese for a userid it
does not know or has deactivated. The session is then a short-lived token the console signs (ES256)
with those claims; every service checks it with the console's public key (shared.auth's
WecomVerifier says why this is the design), and dispatch checks the person against its directory
again on every request.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from fastapi import Request

from services.console.upstream import Refused, Unavailable, call
from shared.auth import WECOM_LOGIN_AUDIENCE, Actor, InvalidToken, issue_wecom_token

FLOW_COOKIE = "gl_wecom"
FLOW_PATH = "/m/auth"
FLOW_TTL_S = 600
ASSERTION_TTL_S = 60
# access_token errcodes after which a fresh token is fetched once: invalid, expired, not the latest.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
INVALID_CODE = 40029


class LoginFailed(Exception):
    """WeCom's answer does not open a session; `message` says what to do, in Chinese."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Flow:
    state: str
    next_path: str


def enabled(request: Request) -> bool:
    return bool(request.app.state.settings.console_wecom_signing_key)


def _sign(secret: str, data: str) -> str:
    return hmac.new(secret.encode(), f"wecom-flow:{data}".encode(), hashlib.sha256).hexdigest()


def new_flow(next_path: str) -> Flow:
    return Flow(secrets.token_hex(16), next_path)  # WeCom's state: a-zA-Z0-9, at most 128 bytes


def flow_cookie(secret: str, flow: Flow) -> str:
    text = base64.urlsafe_b64encode(json.dumps([flow.state, flow.next_path]).encode()).decode().rstrip("=")
    return f"{text}.{_sign(secret, text)}"


def read_flow_cookie(secret: str, value: str) -> Flow | None:
    data, _, signature = value.partition(".")
    if not data or not hmac.compare_digest(signature, _sign(secret, data)):
        return None
    try:
        state, next_path = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    except ValueError:
        return None
    return Flow(str(state), str(next_path))


def redirect_uri(request: Request) -> str:
    base = request.app.state.settings.console_public_url or str(request.base_url)
    return base.rstrip("/") + "/m/auth/callback"


def authorize_url(request: Request, flow: Flow) -> str:
    """WeCom's authorize page for this login, with its parameters in WeCom's documented order."""
    settings = request.app.state.settings
    query = urlencode(
        {
            "appid": settings.console_wecom_corp_id,
            "redirect_uri": redirect_uri(request),
            "response_type": "code",
            "scope": "snsapi_base",
            "state": flow.state,
            "agentid": settings.console_wecom_agent_id,
        }
    )
    return f"{settings.console_wecom_oauth_url.rstrip('/')}/connect/oauth2/authorize?{query}#wechat_redirect"


async def _access_token(request: Request, *, fresh: bool = False) -> str:
    """The application's access_token, fetched once and kept until shortly before it expires."""
    app, settings = request.app, request.app.state.settings
    cached = getattr(app.state, "wecom_access_token", None)
    if cached and not fresh and time.monotonic() < cached[1]:
        return cached[0]
    answer = await _get(
        request,
        "/cgi-bin/gettoken",
        {"corpid": settings.console_wecom_corp_id, "corpsecret": settings.console_wecom_secret},
    )
    if answer.get("errcode", 0) != 0 or not answer.get("access_token"):
        raise LoginFailed(502, f"企业微信应用配置有误（{answer.get('errcode')}），请联系管理员。")
    app.state.wecom_access_token = (answer["access_token"], time.monotonic() + int(answer["expires_in"]) - 300)
    return answer["access_token"]


async def _get(request: Request, path: str, params: dict) -> dict:
    url = request.app.state.settings.console_wecom_api_url.rstrip("/") + path
    try:
        response = await request.app.state.http.get(url, params=params)
        answer = response.json()
    except (httpx.HTTPError, ValueError):
        raise LoginFailed(502, "企业微信暂时无法访问，请稍后再试。") from None
    if not isinstance(answer, dict):
        raise LoginFailed(502, "企业微信暂时无法访问，请稍后再试。")
    return answer


def userid_of(answer: dict) -> str | None:
    """The member's userid in getuserinfo's answer: `userid`, or the legacy path's `UserId`."""
    userid = answer.get("userid") or answer.get("UserId")
    return str(userid) if userid else None


async def userid_for(request: Request, code: str) -> str:
    """Trade WeCom's one-time code for the member's userid; raises LoginFailed."""
    answer: dict = {}
    for fresh in (False, True):
        token = await _access_token(request, fresh=fresh)
        answer = await _get(request, "/cgi-bin/auth/getuserinfo", {"access_token": token, "code": code})
        if answer.get("errcode", 0) not in TOKEN_ERRORS:
            break
    errcode = answer.get("errcode", 0)
    if errcode == INVALID_CODE:
        raise LoginFailed(401, "企业微信授权已失效或已使用，请从企业微信重新打开本页面。")
    if errcode != 0:
        raise LoginFailed(502, f"企业微信未能确认您的身份（错误码 {errcode}），请稍后再试。")
    userid = userid_of(answer)
    if userid is None:  # not a member of the organisation (an openid only)
        raise LoginFailed(403, "移动工作台仅供本单位企业微信成员使用。")
    return userid


@dataclass(frozen=True)
class Session:
    actor: Actor
    token: str


async def open_session(request: Request, userid: str) -> Session:
    """The person dispatch's directory knows by this WeCom userid, and their session token."""
    settings = request.app.state.settings
    key = settings.console_wecom_signing_key
    assertion = issue_wecom_token(private_key=key, userid=userid, audience=WECOM_LOGIN_AUDIENCE, ttl_s=ASSERTION_TTL_S)
    url = settings.console_dispatch_url.rstrip("/") + "/api/v1/directory/wecom-login"
    try:
        person = (await call(request.app.state.http, "dispatch", "POST", url, token=assertion)).json()
    except Refused as refused:
        raise LoginFailed(403 if refused.status == 403 else 502, refused.message) from None
    except Unavailable as unavailable:
        raise LoginFailed(502, unavailable.message) from None
    role = person["session_role"]
    claims = {"name": person["name"], "role": role["role"], "jurisdiction": role["jurisdiction_code"]}
    if role.get("department_code"):
        claims["department"] = role["department_code"]
    token = issue_wecom_token(
        private_key=key,
        userid=userid,
        audience=settings.auth_oidc_audience,
        ttl_s=settings.console_wecom_session_s,
        claims=claims,
    )
    try:
        actor = request.app.state.token_verifier.verify(token)
    except InvalidToken as error:  # the services' public key is not this key's: a configuration error
        raise LoginFailed(502, f"移动工作台的登录密钥配置有误（{error}），请联系管理员。") from None
    return Session(actor=actor, token=token)
