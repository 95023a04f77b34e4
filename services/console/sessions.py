"""The console's sessions: the person's bearer token (from the identity provider, services/console/
oidc.py, or in development from the development issuer) in an httpOnly, SameSite=Strict cookie, and a
CSRF token every form and script sends back (double submit: a cookie and a form field that must be
equal, and equal to an HMAC of the session, so a token from another session is worth nothing).

The console's pages are private like every route (`shared.web`): its own app-wide check reads the
cookie instead of an Authorization header. Without a valid session a browser asking for a page
(Accept: text/html) is redirected to the login page, which then returns to the page asked for;
a form posted from a page goes to the login page and back to that page (the mobile pages, /m/…,
to WeCom's OAuth2 login instead, services/console/wecom.py); anything else (scripts,
the live queue, other tools) answers 401 problem+json.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from shared.auth import Actor, InvalidToken, ProviderUnavailable
from shared.problems import problem_response
from shared.web import public_reason

SESSION_COOKIE = "gl_session"
CSRF_COOKIE = "gl_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Exception):
    """No valid session: redirect a browser's page request to the login page, else 401."""


def csrf_for(secret: str, session: str) -> str:
    """The CSRF token bound to a session (the cookie's value), so it changes with every login."""
    return hmac.new(secret.encode(), f"csrf:{session}".encode(), hashlib.sha256).hexdigest()


def new_login_csrf() -> str:
    """Before a session there is nothing to bind to: the login form's token is a random one."""
    return secrets.token_hex(16)


def set_cookies(response: Response, *, secret: str, token: str, max_age: int, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/"
    )
    # Readable by the page's script (it sends it back in a header); worthless without the session.
    response.set_cookie(
        CSRF_COOKIE, csrf_for(secret, token), max_age=max_age, httponly=False, samesite="strict", secure=secure
    )


def clear_cookies(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


def session_actor(request: Request) -> Actor | None:
    """The person of a valid session cookie, else None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return request.app.state.token_verifier.verify(token)
    except (InvalidToken, ProviderUnavailable):
        return None


async def authenticate(request: Request) -> None:
    """App-wide dependency: a private route needs a valid session; `@public` routes pass."""
    if public_reason(request.scope.get("route")) is not None:
        return
    actor = session_actor(request)
    if actor is None:
        raise LoginRequired()
    request.state.actor = actor
    request.state.token = request.cookies[SESSION_COOKIE]


def safe_next(target: str | None) -> str:
    """Only a path of this console is a place to return to after login (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_required_response(request: Request) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        # A page: back to it after login. A form posted from a page: back to that page (this site's only).
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            referer = urlsplit(request.headers.get("referer", ""))
            target = referer.path if referer.netloc == request.url.netloc else "/"
        # The mobile work page (/m/…, opened inside WeCom) logs in through WeCom's OAuth2 instead.
        login = "/m/auth/start" if target.startswith("/m/") else "/login"
        response: Response = RedirectResponse(f"{login}?next={quote(target)}", status_code=303)
    else:
        response = problem_response(
            request, 401, "Authentication required", "登录已失效，请重新登录。", kind="unauthenticated"
        )
    if request.cookies.get(SESSION_COOKIE):
        clear_cookies(response)  # an expired or forged session is forgotten
    return response


async def check_csrf(request: Request) -> None:
    """Dependency of every state-changing route with a session: the form field (or the script's
    header) equals the CSRF cookie and is the one bound to this session."""
    form = await request.form() if "form" in request.headers.get("content-type", "") else {}
    sent = str(form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    expected = csrf_for(request.app.state.settings.auth_jwt_secret, request.cookies.get(SESSION_COOKIE, ""))
    if not (sent and hmac.compare_digest(sent, cookie) and hmac.compare_digest(sent, expected)):
        raise CsrfFailed()


class CsrfFailed(Exception):
    """A form from another site, another session or a page from before the last login."""

    message = "页面已过期，请刷新页面后重新提交。"


def csrf_failed_response(request: Request) -> Response:
    return problem_response(request, 403, "CSRF check failed", CsrfFailed.message, kind="csrf")


def max_age(token: str) -> int:
    """Seconds until a (verified) token expires: the session cookie lasts as long as the token."""
    body = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return max(int(claims["exp"] - time.time()), 0)
