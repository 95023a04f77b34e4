"""Callback crypto against WeCom's published sample vectors and against the fake's own
encryption (written separately from the scheme), so neither side can agree with itself by accident."""

import importlib.util

import pytest

from services.notify import crypto
from services.notify.crypto import CallbackRejected
from shared.settings import PROJECT_ROOT

_spec = importlib.util.spec_from_file_location("fake_wecom", PROJECT_ROOT / "deploy" / "local" / "fake_wecom.py")
fake_wecom = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_wecom)

# The sample of WeCom's callback documentation (token QDG6eK, corp wx5823bf96d3bd56c7).
TOKEN, CORP_ID, AES_KEY = "QDG6eK", "wx5823bf96d3bd56c7", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
MESSAGE = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3"
    "TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gs"
    "ijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUa"
    "x5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIG"
    "HBZZIs2pDBS8R07+qN+E7Q=="
)


def test_official_url_check_vector():
    crypto.verify_signature("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", TOKEN, "1409659589", "263014780", ECHOSTR)
    assert crypto.decrypt(ECHOSTR, key=crypto.aes_key(AES_KEY), receive_id=CORP_ID) == "1616140317555161061"


def test_official_message_vector():
    crypto.verify_signature("477715d11cdb4164915debcba66cb864d751f3e6", TOKEN, "1409659813", "1372623149", MESSAGE)
    fields = crypto.parse_xml(crypto.decrypt(MESSAGE, key=crypto.aes_key(AES_KEY), receive_id=CORP_ID))
    assert fields["MsgType"] == "text" and fields["Content"] == "hello" and fields["FromUserName"] == "mycreate"
    assert fields["MsgId"] == "4561255354251345929" and fields["AgentID"] == "218"


@pytest.mark.parametrize(
    "tampered",
    [
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd4",
        "",
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3" + "0",
    ],
)
def test_a_wrong_signature_is_refused(tampered):
    with pytest.raises(CallbackRejected) as refused:
        crypto.verify_signature(tampered, TOKEN, "1409659589", "263014780", ECHOSTR)
    assert refused.value.reason == "bad_signature"


def test_a_message_for_another_corp_or_under_another_key_is_refused():
    with pytest.raises(CallbackRejected) as other_corp:
        crypto.decrypt(ECHOSTR, key=crypto.aes_key(AES_KEY), receive_id="ww-someone-else")
    assert other_corp.value.reason == "undecryptable"
    with pytest.raises(CallbackRejected):
        crypto.decrypt(ECHOSTR, key=crypto.aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"), receive_id=CORP_ID)
    with pytest.raises(CallbackRejected):
        crypto.decrypt("not base64!", key=crypto.aes_key(AES_KEY), receive_id=CORP_ID)


def test_the_fake_encrypts_exactly_as_the_platform_does(monkeypatch):
    # The fake's ciphertext decrypts with notify's code, Chinese included.
    text = "<xml><Content><![CDATA[幸福路井盖翻起来了]]></Content></xml>"
    encrypted = fake_wecom.encrypt(text, encoding_aes_key=AES_KEY, receive_id=CORP_ID, random16=b"0123456789abcdef")
    assert crypto.decrypt(encrypted, key=crypto.aes_key(AES_KEY), receive_id=CORP_ID) == text
    params, body = fake_wecom.callback_request(
        text, token=TOKEN, encoding_aes_key=AES_KEY, receive_id=CORP_ID, timestamp="1409659813", nonce="1372623149"
    )
    outer = crypto.parse_xml(body)
    crypto.verify_signature(params["msg_signature"], TOKEN, "1409659813", "1372623149", outer["Encrypt"])
    assert crypto.decrypt(outer["Encrypt"], key=crypto.aes_key(AES_KEY), receive_id=CORP_ID) == text
    # With the same random prefix, wechatpy's encryption (notify's replies) and the fake's are byte-identical.
    monkeypatch.setattr("wechatpy.crypto.PrpCrypto.get_random_string", lambda self: "0123456789abcdef")
    assert crypto.encrypt(text, key=crypto.aes_key(AES_KEY), receive_id=CORP_ID) == encrypted


def test_xml_with_entities_or_garbage_is_refused():
    with pytest.raises(CallbackRejected) as dtd:
        crypto.parse_xml('<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Content>&a;</Content></xml>')
    assert dtd.value.reason == "bad_xml"
    with pytest.raises(CallbackRejected):
        crypto.parse_xml("<xml><unclosed></xml>")


def test_the_aes_key_must_be_43_base64_characters():
    assert len(crypto.aes_key(AES_KEY)) == 32
    with pytest.raises(ValueError):
        crypto.aes_key("short")
