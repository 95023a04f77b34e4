"""Bearer tokens: what a valid one says, and that every kind of bad one is refused as invalid
(never an error page)."""

import base64
import json
import time

import jwt
import pytest

from shared.auth import Actor, InvalidToken, issue_token, verify_token

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
HANDLER = Actor("h1", "handler", "330727", "zhujian", "王建国")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_token_names_its_actor():
    assert verify_token(secret=SECRET, token=issue_token(secret=SECRET, actor=HANDLER)) == HANDLER


def test_expired_and_not_yet_valid_tokens_are_refused():
    old = issue_token(secret=SECRET, actor=HANDLER, ttl_s=60, now=time.time() - 3600)
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(secret=SECRET, token=old)
    early = jwt.encode(
        {
            "sub": "h1",
            "role": "dispatcher",
            "jurisdiction": "330727",
            "exp": time.time() + 600,
            "nbf": time.time() + 300,
        },
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken):
        verify_token(secret=SECRET, token=early)


def test_forged_tokens_are_refused():
    token = issue_token(secret=SECRET, actor=HANDLER)
    with pytest.raises(InvalidToken):
        verify_token(secret="another-secret-that-is-long-enough-too", token=token)
    header, body, _ = token.split(".")
    unsigned = f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{body}."
    with pytest.raises(InvalidToken):
        verify_token(secret=SECRET, token=unsigned)
    admin = json.loads(base64.urlsafe_b64decode(body + "=="))
    admin["role"] = "admin"
    with pytest.raises(InvalidToken):  # the claims changed, the signature did not
        verify_token(secret=SECRET, token=f"{header}.{b64(json.dumps(admin).encode())}.{token.split('.')[2]}")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "x",
        "a.b.c",
        f"{b64(b'[]')}.{b64(b'{}')}.x",
        f"{b64(json.dumps({'alg': 'HS256'}).encode())}.{b64(b'[1]')}.x",
        f"{b64(bytes([0xFF]))}.a.b",
    ],
)
def test_malformed_tokens_are_invalid_not_errors(token):
    with pytest.raises(InvalidToken):
        verify_token(secret=SECRET, token=token)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "x", "role": "mayor", "jurisdiction": "330727"},  # no such role
        {"sub": "x", "role": "dispatcher"},  # no jurisdiction
        {"sub": "x", "role": "handler", "jurisdiction": "330727"},  # a handler without a department
        {"role": "dispatcher", "jurisdiction": "330727"},  # nobody
    ],
)
def test_tokens_must_name_a_person_a_known_role_and_a_jurisdiction(claims):
    token = jwt.encode({**claims, "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        verify_token(secret=SECRET, token=token)
