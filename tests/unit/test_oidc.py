"""Tokens of an OpenID Connect provider: checked by signature against the keys it publishes
(discovered from its /.well-known/openid-configuration, cached, fetched again when it rotates
them), issuer, audience, expiry and not-before; every bad token is InvalidToken, a 401
problem+json at a service, never a 500. The keys are served by a real HTTP server on loopback
(the way a provider serves them); the provider itself is tested in
tests/integration/test_oidc_login.py."""

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Request
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from shared.auth import Actor, InvalidToken, OidcVerifier, ProviderUnavailable, TokenVerifier, issue_token
from shared.settings import ServiceSettings
from shared.web import create_service_app, current_actor

AUDIENCE = "urn:gridlink:services"
HANDLER_CLAIMS = {
    "sub": "demo-zhujian",
    "name": "李强",
    "role": "handler",
    "jurisdiction": "330727",
    "department": "zhujian",
}


class Key:
    """A signing key of the provider and its public JWK."""

    def __init__(self, kid: str, algorithm: str):
        self.kid, self.algorithm = kid, algorithm
        if algorithm == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            public = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        self.jwk = public | {"kid": kid, "alg": algorithm, "use": "sig"}


class Provider:
    """What a provider publishes (discovery and JWKS) on a loopback HTTP server, and how it signs."""

    def __init__(self):
        self.keys = [Key("rsa-1", "RS256"), Key("ec-1", "ES256")]
        self.fetches = 0
        self.discovered_issuer: str | None = None
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    body = {
                        "issuer": provider.discovered_issuer or provider.issuer,
                        "jwks_uri": f"{provider.issuer}/jwks",
                    }
                elif self.path == "/jwks":
                    provider.fetches += 1
                    body = {"keys": [key.jwk for key in provider.keys]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"

    def token(self, *, key: Key | None = None, headers: dict | None = None, **claims) -> str:
        key = key or self.keys[1]
        now = int(time.time())
        body = {"iss": self.issuer, "aud": AUDIENCE, "iat": now, "exp": now + 600} | HANDLER_CLAIMS | claims
        body = {name: value for name, value in body.items() if value is not None}
        return jwt.encode(body, key.private, algorithm=key.algorithm, headers={"kid": key.kid} | (headers or {}))


@contextmanager
def serving_provider():
    provider = Provider()
    thread = threading.Thread(target=provider.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        provider.server.shutdown()
        provider.server.server_close()


@pytest.fixture
def provider():
    with serving_provider() as provider:
        yield provider


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verifier(provider: Provider, **options) -> OidcVerifier:
    return OidcVerifier(issuer=provider.issuer, audience=AUDIENCE, **options)


def test_a_token_signed_with_either_published_key_names_its_person(provider):
    check = verifier(provider)
    expected = Actor("demo-zhujian", "handler", "330727", "zhujian", "李强")
    assert check.verify(provider.token(key=provider.keys[0])) == expected  # RS256
    assert check.verify(provider.token(key=provider.keys[1])) == expected  # ES256
    assert provider.fetches == 1  # the key set is cached


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://idp.elsewhere.example"}, "unknown issuer"),
        ({"aud": "urn:another:api"}, "another audience"),
        ({"exp": -60}, "expired"),  # seconds from now: the times are taken when the test runs
        ({"nbf": 600}, "not valid yet"),
        ({"exp": None}, "malformed"),
        ({"role": "mayor"}, "known role"),
        ({"department": None}, "department"),
    ],
)
def test_bad_claims_are_invalid_tokens(provider, claims, reason):
    now = int(time.time())
    claims = {name: now + value if name in ("exp", "nbf") and value else value for name, value in claims.items()}
    with pytest.raises(InvalidToken, match=reason):
        verifier(provider).verify(provider.token(**claims))


def test_forged_none_confused_and_unknown_key_tokens_are_invalid(provider):
    check = verifier(provider, refresh_cooldown_s=0)
    good = provider.token()
    head, body, _ = good.split(".")
    none = jwt.encode(jwt.decode(good, options={"verify_signature": False}), None, algorithm="none")
    public_pem = (
        provider.keys[0]
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    stranger = Key("rsa-1", "RS256")  # a key of the same id the provider never published
    for token, reason in [
        (none, "algorithm 'none'"),
        (f"{head}.{body}.AAAA", "malformed or forged"),
        (provider.token(key=stranger), "malformed or forged"),
        (provider.token(key=Key("rsa-9", "RS256")), "malformed or forged"),  # unknown key id
        ("not-a-token", "malformed"),
    ]:
        with pytest.raises(InvalidToken, match=reason):
            check.verify(token)
    # Key confusion: HS256 "signed" with the published public key (by hand: PyJWT refuses to).
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': 'rsa-1'}).encode())}.{body}"
    confused = f"{signing_input}.{b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())}"
    with pytest.raises(InvalidToken, match="algorithm 'HS256'"):
        check.verify(confused)
    with pytest.raises(InvalidToken, match="development tokens"):
        TokenVerifier(oidc=check, dev_secret=None).verify(confused)


def test_rotated_keys_are_fetched_at_once_but_unknown_key_ids_do_not_hammer_the_provider(provider):
    check = verifier(provider, refresh_cooldown_s=0)
    assert check.verify(provider.token()).subject == "demo-zhujian"
    rotated = Key("ec-2", "ES256")
    provider.keys = [provider.keys[1], rotated]  # the provider publishes its next key and signs with it
    assert check.verify(provider.token(key=rotated)).subject == "demo-zhujian"
    assert provider.fetches == 2
    patient = verifier(provider, refresh_cooldown_s=60)
    patient.verify(provider.token(key=rotated))
    for n in range(5):
        with pytest.raises(InvalidToken):
            patient.verify(provider.token(key=Key(f"made-up-{n}", "ES256")))
    assert provider.fetches == 3  # one fetch for the second verifier, none for the made-up key ids


def test_an_unreachable_or_wrong_provider_is_unavailable_not_unauthenticated(provider):
    provider.discovered_issuer = "https://impostor.example"
    with pytest.raises(ProviderUnavailable, match="does not describe"):
        verifier(provider).verify(provider.token())
    provider.discovered_issuer = None
    token = provider.token()
    down = OidcVerifier(issuer=provider.issuer, audience=AUDIENCE, jwks_url="http://127.0.0.1:9/jwks", timeout_s=1)
    with pytest.raises(ProviderUnavailable):
        down.verify(token)
    with pytest.raises(ProviderUnavailable):
        OidcVerifier(issuer="http://127.0.0.1:9", audience=AUDIENCE, timeout_s=1).discovery()


def test_development_tokens_only_in_development(provider):
    secret = "a-test-secret-that-is-long-enough-for-hs256"
    dev_token = issue_token(secret=secret, actor=Actor("d1", "dispatcher", "330727"))
    development = TokenVerifier.from_settings(ServiceSettings(auth_jwt_secret=secret, auth_oidc_issuer=provider.issuer))
    assert development.verify(dev_token).subject == "d1"
    assert development.verify(provider.token()).subject == "demo-zhujian"
    production = TokenVerifier(oidc=verifier(provider), dev_secret=None)
    with pytest.raises(InvalidToken, match="only in development"):
        production.verify(dev_token)
    with pytest.raises(InvalidToken, match="no identity provider"):
        TokenVerifier(oidc=None, dev_secret=secret).verify(provider.token())


@asynccontextmanager
async def no_lifespan(app):
    yield


async def test_a_service_answers_bad_tokens_with_401_and_a_missing_provider_with_503(provider):
    async def whoami(request: Request):
        return {"subject": current_actor(request).subject}

    async def ask(settings: ServiceSettings, token: str) -> httpx.Response:
        app = create_service_app(settings, title="t", lifespan=no_lifespan)
        app.get("/api/v1/whoami")(whoami)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
            return await client.get("/api/v1/whoami", headers={"authorization": f"Bearer {token}"})

    settings = ServiceSettings(service_name="svc", auth_oidc_issuer=provider.issuer)
    assert (await ask(settings, provider.token())).json() == {"subject": "demo-zhujian"}
    for bad in (provider.token(aud="urn:another:api"), provider.token(exp=int(time.time()) - 5), "x.y.z"):
        answer = await ask(settings, bad)
        assert answer.status_code == 401 and answer.headers["content-type"] == "application/problem+json"
        assert "请重新登录" in answer.json()["detail"]
    elsewhere = ServiceSettings(
        service_name="svc", auth_oidc_issuer=provider.issuer, auth_oidc_jwks_url="http://127.0.0.1:9/"
    )
    down = await ask(elsewhere, provider.token())
    assert down.status_code == 503 and down.json()["status"] == 503


def test_the_local_provider_knows_exactly_the_consoles_demo_people_with_the_same_claims():
    from services.console.api import DEMO_PEOPLE
    from shared.settings import PROJECT_ROOT

    oidc = PROJECT_ROOT / "deploy" / "local" / "oidc"
    people = json.loads((oidc / "people.json").read_text(encoding="utf-8"))["people"]
    assert {p["username"] for p in people} == set(DEMO_PEOPLE)
    for person in people:
        demo = DEMO_PEOPLE[person["username"]]
        assert (person["sub"], person["name"], person["role"], person["jurisdiction"], person.get("department")) == (
            demo["subject"],
            demo["name"],
            demo["role"],
            demo["jurisdiction_code"],
            demo.get("department_code"),
        )
        assert Actor(person["sub"], person["role"], person["jurisdiction"], person.get("department"), person["name"])
    # The provider is pinned: the lock file installs exactly the version package.json names.
    wanted = json.loads((oidc / "package.json").read_text())["dependencies"]["oidc-provider"]
    locked = json.loads((oidc / "package-lock.json").read_text())["packages"]["node_modules/oidc-provider"]["version"]
    assert wanted == locked


def test_the_consoles_login_cookie_is_signed_and_its_challenge_is_s256():
    from services.console import oidc

    flow = oidc.new_flow("/cases/1")
    value = oidc.flow_cookie("k" * 32, flow)
    assert oidc.read_flow_cookie("k" * 32, value) == flow
    data, _, signature = value.partition(".")
    assert oidc.read_flow_cookie("other-secret" * 3, value) is None  # another console's, or forged
    assert oidc.read_flow_cookie("k" * 32, f"{data}x.{signature}") is None
    garbage = "bm90LWpzb24"  # base64 of "not-json", signed
    assert oidc.read_flow_cookie("k" * 32, f"{garbage}.{oidc._sign('k' * 32, garbage)}") is None
    assert oidc.read_flow_cookie("k" * 32, "") is None
    # S256: a SHA-256 in base64url without padding (the provider checks it against the verifier).
    assert re.fullmatch(r"[\w-]{43}", oidc.challenge(flow.verifier)) and oidc.challenge("a") != oidc.challenge("b")
