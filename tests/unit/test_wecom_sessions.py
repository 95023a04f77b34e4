"""WeCom OAuth2 (网页授权) and the console's WeCom sessions, without servers: the fake's authorize
page and getuserinfo (one use, 5 minutes, both casings), the tokens services take from the console
(only for wecom: subjects, only with its key and audience), which directory role a session acts
in, and that production refuses the published development keys."""

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.console.settings import ConsoleSettings
from services.console.wecom import userid_of
from services.dispatch.directory import holds, session_role
from services.dispatch.settings import DispatchSettings
from shared.auth import (
    WECOM_ISSUER,
    WECOM_LOGIN_AUDIENCE,
    Actor,
    InvalidToken,
    TokenVerifier,
    WecomVerifier,
    issue_wecom_token,
)
from shared.settings import DEV_WECOM_PUBLIC_KEY
from tests.support import FakeClock, load_fake_wecom

fake_wecom = load_fake_wecom()
PRIVATE = ConsoleSettings().console_wecom_signing_key
AUDIENCE = "urn:gridlink:services"
HANDLER = {"name": "李强", "role": "handler", "jurisdiction": "330727", "department": "zhujian"}


def other_key_pair() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def verifier(public: str = DEV_WECOM_PUBLIC_KEY) -> TokenVerifier:
    return TokenVerifier(oidc=None, dev_secret=None, wecom=WecomVerifier(public_key=public, audience=AUDIENCE))


def test_a_console_token_names_the_wecom_user_as_the_directory_said():
    token = issue_wecom_token(private_key=PRIVATE, userid="liqiang", audience=AUDIENCE, ttl_s=600, claims=HANDLER)
    actor = verifier().verify(token)
    assert actor == Actor("wecom:liqiang", "handler", "330727", "zhujian", "李强")


def test_the_console_issuer_is_trusted_for_wecom_subjects_only():
    import jwt

    body = HANDLER | {"iss": WECOM_ISSUER, "aud": AUDIENCE, "sub": "demo-admin", "iat": 1, "exp": 4_000_000_000}
    with pytest.raises(InvalidToken, match="wecom: subjects"):
        verifier().verify(jwt.encode(body, PRIVATE, algorithm="ES256"))
    with pytest.raises(InvalidToken, match="wecom: subjects"):
        verifier().verify(jwt.encode(body | {"sub": "wecom:"}, PRIVATE, algorithm="ES256"))


def test_forged_expired_and_misdirected_console_tokens_are_refused():
    other_private, other_public = other_key_pair()
    forged = issue_wecom_token(
        private_key=other_private, userid="liqiang", audience=AUDIENCE, ttl_s=600, claims=HANDLER
    )
    with pytest.raises(InvalidToken, match="forged"):
        verifier().verify(forged)
    assert verifier(other_public).verify(forged).subject == "wecom:liqiang"  # with its own key it is fine
    expired = issue_wecom_token(
        private_key=PRIVATE, userid="liqiang", audience=AUDIENCE, ttl_s=60, claims=HANDLER, now=1_000_000
    )
    with pytest.raises(InvalidToken, match="expired"):
        verifier().verify(expired)
    assertion = issue_wecom_token(private_key=PRIVATE, userid="liqiang", audience=WECOM_LOGIN_AUDIENCE, ttl_s=60)
    with pytest.raises(InvalidToken, match="another audience"):
        verifier().verify(assertion)  # the login assertion opens nothing but dispatch's login route
    assert verifier().wecom.claims(assertion, audience=WECOM_LOGIN_AUDIENCE)["sub"] == "wecom:liqiang"
    without_key = TokenVerifier(oidc=None, dev_secret=None)
    with pytest.raises(InvalidToken, match="not accepted here"):
        without_key.verify(
            issue_wecom_token(private_key=PRIVATE, userid="x", audience=AUDIENCE, ttl_s=60, claims=HANDLER)
        )


def test_a_session_acts_in_the_persons_first_on_site_role_while_the_directory_gives_it():
    roles = [
        {"role": "admin", "jurisdiction_code": "330727", "department_code": None},
        {"role": "grid_worker", "jurisdiction_code": "330727001001001", "department_code": None},
        {"role": "grid_leader", "jurisdiction_code": "330727001001", "department_code": None},
    ]
    assert session_role(roles) == roles[1]
    assert session_role([{"role": "group_owner", "jurisdiction_code": "330727001001", "department_code": None}]) is None
    actor = Actor("wecom:hefei", "grid_worker", "330727001001001")
    assert holds(roles, actor)
    assert not holds(roles[:1], actor)  # the role was taken away
    assert not holds(roles, Actor("wecom:hefei", "grid_worker", "330727001001002"))


def test_getuserinfo_answers_are_read_in_both_casings():
    assert userid_of({"errcode": 0, "errmsg": "ok", "userid": "liqiang"}) == "liqiang"
    assert userid_of({"errcode": 0, "errmsg": "ok", "UserId": "liqiang", "DeviceId": ""}) == "liqiang"
    assert userid_of({"errcode": 0, "errmsg": "ok", "openid": "oAbc"}) is None


def test_production_refuses_the_published_wecom_keys():
    problems = " ".join(ConsoleSettings().unsafe_settings())
    assert "GRIDLINK_CONSOLE_WECOM_SIGNING_KEY is the development default" in problems
    assert "GRIDLINK_AUTH_WECOM_PUBLIC_KEY is the development default" in problems
    assert "GRIDLINK_CONSOLE_WECOM_SECRET is the development default" in problems
    private, public = other_key_pair()
    own = ConsoleSettings(console_wecom_signing_key=private, auth_wecom_public_key=public)
    assert not any("WECOM_SIGNING_KEY" in p or "WECOM_PUBLIC_KEY" in p for p in own.unsafe_settings())
    off = DispatchSettings(auth_wecom_public_key="")  # no WeCom sessions at all is safe too
    assert not any("WECOM_PUBLIC_KEY" in p for p in off.unsafe_settings())
    assert TokenVerifier.from_settings(off).wecom is None


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
async def wecom(clock):
    app = fake_wecom.create_app(clock=clock, trusted_domain="m.gridlink.example")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wecom") as client:
        yield client


async def authorize(wecom: httpx.AsyncClient, **overrides) -> httpx.Response:
    query = {
        "appid": fake_wecom.CORP_ID,
        "redirect_uri": "https://m.gridlink.example/m/auth/callback",
        "response_type": "code",
        "scope": "snsapi_base",
        "state": "abc123",
        "agentid": str(fake_wecom.AGENT_ID),
    } | overrides
    return await wecom.get("/connect/oauth2/authorize", params=query)


async def test_the_fake_authorize_page_checks_its_parameters_and_returns_a_code(wecom):
    answer = await authorize(wecom)
    assert answer.status_code == 302
    target = urlsplit(answer.headers["location"])
    assert (target.netloc, target.path) == ("m.gridlink.example", "/m/auth/callback")
    assert parse_qs(target.query)["state"] == ["abc123"] and parse_qs(target.query)["code"][0]
    assert "可信域名" in (await authorize(wecom, redirect_uri="https://evil.example/cb")).text
    for bad in ({"appid": "wx-other"}, {"scope": "snsapi_userinfo"}, {"state": "no spaces"}, {"agentid": "1"}):
        assert (await authorize(wecom, **bad)).status_code == 400, bad


async def test_a_code_works_once_for_five_minutes_in_either_path(wecom, clock):
    token = (
        await wecom.get(
            "/cgi-bin/gettoken", params={"corpid": fake_wecom.CORP_ID, "corpsecret": fake_wecom.CORP_SECRET}
        )
    ).json()["access_token"]

    async def code() -> str:
        return parse_qs(urlsplit((await authorize(wecom)).headers["location"]).query)["code"][0]

    async def userinfo(path: str, value: str) -> dict:
        return (await wecom.get(path, params={"access_token": token, "code": value})).json()

    first = await code()
    assert await userinfo("/cgi-bin/auth/getuserinfo", first) == {"errcode": 0, "errmsg": "ok", "userid": "zhangsan"}
    assert (await userinfo("/cgi-bin/auth/getuserinfo", first))["errcode"] == 40029  # used
    legacy = await userinfo("/cgi-bin/user/getuserinfo", await code())
    assert legacy["UserId"] == "zhangsan" and "userid" not in legacy
    late = await code()
    clock.now += 301
    assert (await userinfo("/cgi-bin/auth/getuserinfo", late))["errcode"] == 40029
    assert (await wecom.get("/cgi-bin/auth/getuserinfo", params={"access_token": "x", "code": "y"})).json()[
        "errcode"
    ] == 40014
    await wecom.post("/_fake/oauth/user", json={"openid": "oAbc"})
    outsider = await userinfo("/cgi-bin/auth/getuserinfo", await code())
    assert outsider == {"errcode": 0, "errmsg": "ok", "openid": "oAbc"}
