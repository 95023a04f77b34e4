"""Bearer tokens (JWT) and the actor they name.

Claims: `sub` (user id), `name`, `role` (dispatcher, handler, grid_worker, supervisor, admin),
`jurisdiction` (division code the actor works in; it sees that division and below),
`department` (handlers only), `exp`, `iat`.

Two issuers. Staff log in at the county's OpenID Connect provider, whose access tokens (RS256 or
ES256) are checked against its published keys, issuer and audience (`OidcVerifier`). In
development only (GRIDLINK_ENV=development) dispatch's development issuer also mints HS256 tokens
with the shared secret (`issue_token`), which `make up`'s demo login and the tests use.
A third kind, the console's WeCom sessions (below, `WecomVerifier`), covers people who open the
mobile work page inside WeCom. `TokenVerifier` is what the services check with. PyJWT checks
signature, algorithm (no `none`, no key confusion), expiry and not-before; a token that is
malformed in any way is an `InvalidToken` (401), never an error page.
"""

import json
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError

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
    return actor_from_claims(claims)


# --- OpenID Connect: staff tokens from the county's identity provider -----------------------------

# Asymmetric only: the services hold no key that could mint a token, and `none` or HS256 with the
# public key as a secret (key confusion) are refused before any key is looked at.
OIDC_ALGORITHMS = ("RS256", "ES256")


class ProviderUnavailable(Exception):
    """The identity provider's discovery document or keys could not be fetched: the token may be
    valid, so the answer is 503 (try again), not 401."""


def actor_from_claims(claims: dict[str, Any]) -> Actor:
    """The actor a verified token's claims name (the same claims from either issuer)."""
    if claims.get("role") not in ROLES or not str(claims.get("jurisdiction", "")).isdigit():
        raise InvalidToken("token lacks a known role or a jurisdiction")
    if claims["role"] == "handler" and not claims.get("department"):
        raise InvalidToken("a handler token names its department")
    return Actor(
        subject=str(claims["sub"]),
        role=claims["role"],
        jurisdiction_code=str(claims["jurisdiction"]),
        department_code=claims.get("department"),
        name=str(claims.get("name", "")),
    )


class OidcVerifier:
    """Tokens of one OpenID Connect provider, checked by signature against its published keys
    (JWKS), issuer, audience, expiry and not-before.

    The JWKS address comes from the provider's discovery document unless given. Keys are cached
    (PyJWT's PyJWKClient): the key set is fetched again after `jwks_lifespan_s`, and a token signed
    with a key not yet known (the provider rotated its keys) fetches it at once — at most once per
    `refresh_cooldown_s`, so tokens with made-up key ids cannot make us hammer the provider.
    Fetching blocks (urllib, `timeout_s`); it happens once per lifespan, not per request.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str = "",
        timeout_s: float = 5.0,
        jwks_lifespan_s: float = 300.0,
        refresh_cooldown_s: float = 30.0,
    ):
        self.issuer, self.audience, self.jwks_url = issuer.rstrip("/"), audience, jwks_url
        self.timeout_s, self.jwks_lifespan_s, self.refresh_cooldown_s = timeout_s, jwks_lifespan_s, refresh_cooldown_s
        self._keys: PyJWKClient | None = None
        self._lock = threading.Lock()

    def discovery(self) -> dict[str, Any]:
        """The provider's /.well-known/openid-configuration, checked to be this issuer's."""
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:  # noqa: S310 - http(s) issuer URL
                document = json.load(response)
        except (OSError, ValueError) as error:
            raise ProviderUnavailable(f"{url}: {error}") from None
        if not isinstance(document, dict) or str(document.get("issuer", "")).rstrip("/") != self.issuer:
            raise ProviderUnavailable(f"{url} does not describe the issuer {self.issuer}")
        return document

    def _key_set(self) -> PyJWKClient:
        with self._lock:
            if self._keys is None:
                url = self.jwks_url or str(self.discovery().get("jwks_uri") or "")
                if not url:
                    raise ProviderUnavailable(f"{self.issuer} publishes no jwks_uri")
                self._keys = PyJWKClient(
                    url,
                    lifespan=self.jwks_lifespan_s,
                    timeout=self.timeout_s,
                    cooldown_duration=self.refresh_cooldown_s,
                )
            return self._keys

    def claims(self, token: str, *, audience: str | None = None, leeway_s: float = 0) -> dict[str, Any]:
        """A valid token's claims (for `audience`, by default the services'); raises InvalidToken."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in OIDC_ALGORITHMS:
                raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
            unverified = jwt.decode(token, options={"verify_signature": False})
            if str(unverified.get("iss", "")).rstrip("/") != self.issuer:  # before asking any provider for keys
                raise InvalidToken("token from an unknown issuer")
            key = self._key_set().get_signing_key_from_jwt(token)
            return jwt.decode(
                token,
                key,
                algorithms=list(OIDC_ALGORITHMS),
                audience=audience or self.audience,
                issuer=unverified["iss"],
                leeway=leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except PyJWKClientConnectionError as error:
            raise ProviderUnavailable(str(error)) from None
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("token not valid yet") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("token for another audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("token from an unknown issuer") from None
        except (jwt.PyJWTError, ValueError, TypeError) as error:  # malformed, forged, unknown key id
            raise InvalidToken(f"malformed or forged token: {error}") from None

    def verify(self, token: str) -> Actor:
        """The actor a valid access token names; raises InvalidToken (or ProviderUnavailable)."""
        return actor_from_claims(self.claims(token))


# --- WeCom sessions: the console's own tokens for people who open the mobile pages in WeCom --------

WECOM_ISSUER = "urn:gridlink:console:wecom"
WECOM_SUBJECT_PREFIX = "wecom:"
# The audience of the console's one-minute identity assertion, which only dispatch's WeCom login
# route takes (it names a WeCom user, no role): every other route refuses it.
WECOM_LOGIN_AUDIENCE = "urn:gridlink:dispatch:wecom-login"
WECOM_ALGORITHM = "ES256"


def wecom_subject(userid: str) -> str:
    return f"{WECOM_SUBJECT_PREFIX}{userid}"


def issue_wecom_token(
    *, private_key: str, userid: str, audience: str, ttl_s: int, claims: dict[str, Any] | None = None, now=None
) -> str:
    """A token the console signs (ES256) for the WeCom user it has just seen through WeCom's OAuth2."""
    issued = int(now if now is not None else time.time())
    body = (claims or {}) | {
        "iss": WECOM_ISSUER,
        "aud": audience,
        "sub": wecom_subject(userid),
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
    }
    return jwt.encode(body, private_key, algorithm=WECOM_ALGORITHM)


class WecomVerifier:
    """Tokens the console signs for people who logged in through WeCom's OAuth2 (网页授权).

    Why a second issuer, and why this one. WeCom's OAuth2 gives the console a WeCom userid, not a
    token the services could check; the county's OIDC provider does not know WeCom users and cannot
    be asked to mint tokens for them. So the console, having traded the one-time code with WeCom
    itself, signs a short-lived ES256 token: the services hold only its public key (a setting, no
    network fetch), so no service can mint one, and a stolen service configuration forges nothing.
    The trust is narrow: from this issuer only `wecom:<userid>` subjects are accepted (it can never
    speak for an OIDC subject), the role, division and department in it are those dispatch's
    directory (通讯录) gave at login — an unknown or deactivated userid gets no token at all — and
    dispatch, which owns the directory, checks them against it again on every request, so removing
    a person or a role takes effect there at once and elsewhere when the token ends (hours at most).
    """

    def __init__(self, *, public_key: str, audience: str):
        self.public_key, self.audience = public_key, audience

    def claims(self, token: str, *, audience: str | None = None) -> dict[str, Any]:
        try:
            if jwt.get_unverified_header(token).get("alg") != WECOM_ALGORITHM:
                raise InvalidToken("a WeCom session token is ES256")
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=[WECOM_ALGORITHM],
                audience=audience or self.audience,
                issuer=WECOM_ISSUER,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("token for another audience") from None
        except (jwt.PyJWTError, ValueError, TypeError) as error:
            raise InvalidToken(f"malformed or forged token: {error}") from None
        subject = str(claims["sub"])
        if not subject.startswith(WECOM_SUBJECT_PREFIX) or len(subject) == len(WECOM_SUBJECT_PREFIX):
            raise InvalidToken("the WeCom issuer speaks only for wecom: subjects")
        return claims

    def verify(self, token: str) -> Actor:
        return actor_from_claims(self.claims(token))


class TokenVerifier:
    """What every service checks a bearer token with: the identity provider's tokens, the console's
    WeCom session tokens (when a public key is set), and in development (GRIDLINK_ENV=development)
    also the development issuer's HS256 tokens."""

    def __init__(self, *, oidc: OidcVerifier | None, dev_secret: str | None, wecom: WecomVerifier | None = None):
        self.oidc, self.dev_secret, self.wecom = oidc, dev_secret, wecom

    @classmethod
    def from_settings(cls, settings: Any) -> "TokenVerifier":
        oidc = None
        if settings.auth_oidc_issuer:
            oidc = OidcVerifier(
                issuer=settings.auth_oidc_issuer,
                audience=settings.auth_oidc_audience,
                jwks_url=settings.auth_oidc_jwks_url,
            )
        wecom = None
        if settings.auth_wecom_public_key:
            wecom = WecomVerifier(public_key=settings.auth_wecom_public_key, audience=settings.auth_oidc_audience)
        return cls(
            oidc=oidc, dev_secret=settings.auth_jwt_secret if settings.env == "development" else None, wecom=wecom
        )

    def verify(self, token: str) -> Actor:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError as error:
            raise InvalidToken(f"malformed token: {error}") from None
        if algorithm == ALGORITHM:
            if self.dev_secret is None:
                raise InvalidToken(
                    "development tokens are accepted only in development; log in through the identity provider"
                )
            return verify_token(secret=self.dev_secret, token=token)
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError as error:
            raise InvalidToken(f"malformed token: {error}") from None
        if issuer == WECOM_ISSUER:
            if self.wecom is None:
                raise InvalidToken("WeCom sessions are not accepted here (GRIDLINK_AUTH_WECOM_PUBLIC_KEY)")
            return self.wecom.verify(token)
        if self.oidc is None:
            raise InvalidToken("no identity provider is configured (GRIDLINK_AUTH_OIDC_ISSUER)")
        return self.oidc.verify(token)
