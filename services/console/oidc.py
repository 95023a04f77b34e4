"""Logging staff in at the OpenID Connect provider: the authorization-code flow with PKCE.

/auth/start sends the browser to the provider's login form with a fresh `state`, `nonce` and PKCE
challenge, which are kept (with the page to return to) in a short-lived httpOnly cookie signed by
the console, so a callback that this browser did not start is refused. /auth/callback trades the
one-time code (with the PKCE verifier and the console's client secret) for the person's tokens at
the provider's token endpoint, checks the ID token (signature, issuer, audience = this client,
nonce) and the access token as every service checks it, and opens the session: the access token
in the httpOnly session cookie, forwarded to the services as today. Logout ends the provider's
session too (RP-initiated logout).
"""

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from fastapi import Request

from shared.auth import Actor, InvalidToken, OidcVerifier, ProviderUnavailable

FLOW_COOKIE = "gl_oidc"
ID_TOKEN_COOKIE = "gl_id"
FLOW_TTL_S = 600  # time to fill in the provider's login form
SCOPES = "openid profile gridlink"


class LoginFailed(Exception):
    """The provider's answer does not open a session; the message says what to do (in Chinese)."""


@dataclass(frozen=True)
class Flow:
    state: str
    nonce: str
    verifier: str
    next_path: str


def _sign(secret: str, data: str) -> str:
    return hmac.new(secret.encode(), f"oidc-flow:{data}".encode(), hashlib.sha256).hexdigest()


def new_flow(next_path: str) -> Flow:
    return Flow(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48), next_path)


def flow_cookie(secret: str, flow: Flow) -> str:
    # base64url without padding: a cookie value with "=" would be sent quoted.
    data = base64.urlsafe_b64encode(json.dumps([flow.state, flow.nonce, flow.verifier, flow.next_path]).encode())
    text = data.decode().rstrip("=")
    return f"{text}.{_sign(secret, text)}"


def read_flow_cookie(secret: str, value: str) -> Flow | None:
    data, _, signature = value.partition(".")
    if not data or not hmac.compare_digest(signature, _sign(secret, data)):
        return None
    try:
        state, nonce, verifier, next_path = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    except ValueError:
        return None
    return Flow(str(state), str(nonce), str(verifier), str(next_path))


def challenge(verifier: str) -> str:
    """PKCE S256: the code challenge the provider keeps until the verifier comes back."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def enabled(request: Request) -> bool:
    return bool(request.app.state.settings.auth_oidc_issuer)


def redirect_uri(request: Request) -> str:
    base = request.app.state.settings.console_public_url or str(request.base_url)
    return base.rstrip("/") + "/auth/callback"


def login_page_url(request: Request) -> str:
    base = request.app.state.settings.console_public_url or str(request.base_url)
    return base.rstrip("/") + "/login"


async def endpoints(request: Request) -> dict:
    """The provider's discovery document (its endpoints), fetched once per console process."""
    cached = getattr(request.app.state, "oidc_endpoints", None)
    if cached is not None:
        return cached
    settings = request.app.state.settings
    url = settings.auth_oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = await request.app.state.http.get(url)
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError):
        raise LoginFailed("统一身份认证服务暂时无法访问，请稍后再试。") from None
    request.app.state.oidc_endpoints = document
    return document


async def authorization_url(request: Request, flow: Flow) -> str:
    settings = request.app.state.settings
    query = {
        "client_id": settings.console_oidc_client_id,
        "response_type": "code",
        "scope": SCOPES,
        "redirect_uri": redirect_uri(request),
        "state": flow.state,
        "nonce": flow.nonce,
        "code_challenge": challenge(flow.verifier),
        "code_challenge_method": "S256",
        "resource": settings.auth_oidc_audience,
    }
    return f"{(await endpoints(request))['authorization_endpoint']}?{urlencode(query)}"


@dataclass(frozen=True)
class Session:
    actor: Actor
    access_token: str
    id_token: str


async def finish(request: Request, flow: Flow, *, code: str) -> Session:
    """Trade the code for the person's tokens and check them; raises LoginFailed."""
    settings = request.app.state.settings
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri(request),
        "code_verifier": flow.verifier,
        "resource": settings.auth_oidc_audience,
    }
    try:
        response = await request.app.state.http.post(
            (await endpoints(request))["token_endpoint"],
            data=form,
            auth=(settings.console_oidc_client_id, settings.console_oidc_client_secret),
        )
    except httpx.HTTPError:
        raise LoginFailed("统一身份认证服务暂时无法访问，请稍后再试。") from None
    if response.status_code != 200:
        raise LoginFailed("登录凭证已失效或已被使用，请重新登录。")
    tokens = response.json()
    verifier: OidcVerifier = request.app.state.token_verifier.oidc
    try:
        identity = verifier.claims(str(tokens.get("id_token", "")), audience=settings.console_oidc_client_id)
        if not hmac.compare_digest(str(identity.get("nonce", "")), flow.nonce):
            raise InvalidToken("the ID token answers another login")
        actor = verifier.verify(str(tokens.get("access_token", "")))
    except InvalidToken as error:
        raise LoginFailed(f"统一身份认证返回的身份无效（{error}），请联系管理员。") from None
    except ProviderUnavailable:
        raise LoginFailed("统一身份认证服务暂时无法访问，请稍后再试。") from None
    if actor.subject != identity["sub"]:
        raise LoginFailed("统一身份认证返回的身份不一致，请重新登录。")
    return Session(actor=actor, access_token=tokens["access_token"], id_token=tokens["id_token"])


async def logout_url(request: Request, id_token: str) -> str | None:
    """Where the browser ends the provider's session and comes back to the login page."""
    try:
        document = await endpoints(request)
    except LoginFailed:
        return None
    if not document.get("end_session_endpoint"):
        return None
    query = {
        "client_id": request.app.state.settings.console_oidc_client_id,
        "post_logout_redirect_uri": login_page_url(request),
    } | ({"id_token_hint": id_token} if id_token else {})
    return f"{document['end_session_endpoint']}?{urlencode(query)}"
