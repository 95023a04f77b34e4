"""Bearer tokens (JWT, HS256) and the actor they name.

Claims: `sub` (user id), `name`, `role` (dispatcher, handler, grid_worker, supervisor, admin),
`jurisdiction` (division code the actor works in; it sees that division and below),
`department` (handlers only), `exp`. HS256 is computed with the standard library so any JWT
library or identity provider sharing the key can issue tokens.
"""

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

ROLES = ("dispatcher", "handler", "grid_worker", "supervisor", "admin")


@dataclass(frozen=True)
class Actor:
    subject: str
    role: str
    jurisdiction_code: str
    department_code: str | None = None
    name: str = ""

    @property
    def label(self) -> str:
        return f"{self.role}:{self.subject}"


class InvalidToken(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(*, secret: str, actor: Actor, ttl_s: int = 8 * 3600, now: float | None = None) -> str:
    """A signed token for an actor."""
    if actor.role not in ROLES:
        raise ValueError(f"unknown role {actor.role}")
    claims = {
        "sub": actor.subject,
        "name": actor.name,
        "role": actor.role,
        "jurisdiction": actor.jurisdiction_code,
        "exp": int((now or time.time()) + ttl_s),
    }
    if actor.department_code:
        claims["department"] = actor.department_code
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims, ensure_ascii=False).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def verify_token(*, secret: str, token: str, now: float | None = None) -> Actor:
    """The actor a valid, unexpired HS256 token names; raises InvalidToken."""
    try:
        header, body, signature = token.split(".")
        if json.loads(_unb64(header)).get("alg") != "HS256":
            raise InvalidToken("only HS256 tokens are accepted")
        expected = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise InvalidToken("bad signature")
        claims = json.loads(_unb64(body))
    except (ValueError, TypeError) as error:
        raise InvalidToken(f"malformed token: {error}") from None
    if not isinstance(claims.get("exp"), int) or claims["exp"] < (now or time.time()):
        raise InvalidToken("token expired")
    if claims.get("role") not in ROLES or not str(claims.get("jurisdiction", "")).isdigit():
        raise InvalidToken("token lacks a known role or a jurisdiction")
    if claims["role"] == "handler" and not claims.get("department"):
        raise InvalidToken("a handler token names its department")
    return Actor(
        subject=str(claims.get("sub")),
        role=claims["role"],
        jurisdiction_code=claims["jurisdiction"],
        department_code=claims.get("department"),
        name=claims.get("name", ""),
    )
