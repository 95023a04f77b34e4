"""Phone ciphertext names its key, so the key can be rotated: new tokens use the current key, old
ones stay readable while their key is configured, and re-encryption moves them to the current one."""

import base64

import pytest
from pydantic import ValidationError

from services.intake.settings import IntakeSettings
from services.notify.settings import NotifySettings
from shared.phones import LEGACY_KEY_ID, PhoneKeys, UnknownPhoneKey, encrypt_phone, key_id_of, phone_token

OLD, NEW = "o" * 32, "n" * 32


def test_a_token_names_its_key_and_hides_the_phone():
    keys = PhoneKeys(current_id="k2", keys={"k1": OLD, "k2": NEW})
    token = phone_token("13812341234", keys)
    assert token.startswith("k2:") and key_id_of(token) == "k2" and "1234" not in token
    assert keys.decrypt(token) == "13812341234" and keys.is_current(token)
    assert phone_token("13812341234", keys) != token  # a fresh nonce each time


def test_old_tokens_are_read_with_their_key_and_rewritten_with_the_current_one():
    before = PhoneKeys(current_id="k1", keys={"k1": OLD})
    old_token = before.encrypt("13800001111")
    after = PhoneKeys(current_id="k2", keys={"k1": OLD, "k2": NEW})
    assert after.decrypt(old_token) == "13800001111" and not after.is_current(old_token)
    rewritten = after.reencrypt(old_token)
    assert rewritten.startswith("k2:") and after.reencrypt(rewritten) == rewritten
    # Once the old key is dropped, only the rewritten token is readable.
    retired = PhoneKeys(current_id="k2", keys={"k2": NEW})
    assert retired.decrypt(rewritten) == "13800001111"
    with pytest.raises(UnknownPhoneKey, match="k1"):
        retired.decrypt(old_token)


def test_tokens_from_before_key_ids_were_made_with_the_first_key():
    legacy = base64.b64encode(encrypt_phone("13900002222", OLD)).decode()
    assert key_id_of(legacy) == LEGACY_KEY_ID == "k1"
    keys = PhoneKeys(current_id="k1", keys={"k1": OLD})
    assert keys.decrypt(legacy) == "13900002222"
    assert not keys.is_current(legacy)  # rewritten once, to name its key
    assert keys.reencrypt(legacy).startswith("k1:")


def test_intake_and_notify_build_the_same_keys_from_their_settings(monkeypatch):
    monkeypatch.setenv("GRIDLINK_PHONE_ENCRYPTION_KEY", NEW)
    monkeypatch.setenv("GRIDLINK_PHONE_ENCRYPTION_KEY_ID", "2027a")
    monkeypatch.setenv("GRIDLINK_PHONE_ENCRYPTION_OLD_KEYS", f'{{"k1": "{OLD}"}}')
    intake, notify = IntakeSettings().phone_keys(), NotifySettings().phone_keys()
    assert intake == notify == PhoneKeys(current_id="2027a", keys={"k1": OLD, "2027a": NEW})
    assert notify.decrypt(intake.encrypt("13700003333")) == "13700003333"


def test_production_refuses_a_weak_old_key_and_ids_that_cannot_be_in_a_token(monkeypatch):
    with pytest.raises(ValidationError):
        NotifySettings(phone_encryption_key_id="k:1")
    monkeypatch.setenv("GRIDLINK_ENV", "production")
    with pytest.raises(ValidationError, match=r"GRIDLINK_PHONE_ENCRYPTION_OLD_KEYS\[k1\] is not a real key"):
        NotifySettings(phone_encryption_old_keys={"k1": "local-development-only"})
