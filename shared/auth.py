"""Bearer tokens (JWT) and the actor they name.

Claims: `sub` (user id), `name`, `role` (dispatcher, handler, grid_worker, supervisor, admin),
`jurisdiction` (division code the actor works in; it sees that division and below),
`department` (handlers only), `exp`, `iat`. Tokens are signed and verified by PyJWT, which checks
the signature, the algorithm (only HS256 is accepted: no `none`, no key confusion), expiry and
not-before; a token that is malformed in any way is an `InvalidToken`, never an error page.
"""

import time
from dataclasses import dataclass
from typing import Any

import jwt

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


ALGORITHM = "HS256"


def issue_token(*, secret: str, actor: Actor, ttl_s: int = 8 * 3600, now: float | None = None) -> str:
    """A signed token for an actor."""
    if actor.role not in ROLES:
        raise ValueError(f"unknown role {actor.role}")
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": actor.subject,
        "name": actor.name,
        "role": actor.role,
        "jurisdiction": actor.jurisdiction_code,
        "iat": issued,
        "exp": issued + ttl_s,
    }
    if actor.department_code:
        claims["department"] = actor.department_code
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(*, secret: str, token: str) -> Actor:
    """The actor a valid, unexpired token names; raises InvalidToken."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise InvalidToken("token expired") from None
    except jwt.InvalidTokenError as error:
        raise InvalidToken(f"malformed or forged token: {error}") from None
    if claims.get("role") not in ROLES or not str(claims.get("jurisdiction", "")).isdigit():
        raise InvalidToken("token lacks a known role or a jurisdiction")
    if claims["role"] == "handler" and not claims.get("department"):
        raise InvalidToken("a handler token names its department")
    return Actor(
        subject=str(claims["sub"]),
        role=claims["role"],
        jurisdiction_code=claims["jurisdiction"],
        department_code=claims.get("department"),
        name=claims.get("name", ""),
    )
