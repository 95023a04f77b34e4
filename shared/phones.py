"""Reporters' phone numbers: always shown masked, found by a keyed hash, and read back (only by
notify, to text the reporter) from AES-256-GCM ciphertext. Never stored or published in clear."""

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_AAD = b"reporter-phone"


def mask_phone(phone: str) -> str:
    """138****1234: how a phone number is always shown."""
    return f"{phone[:3]}****{phone[-4:]}"


def phone_hash(phone: str, key: str) -> bytes:
    """Keyed hash so reports can be found by phone without keeping the number readable."""
    return hmac.new(key.encode(), phone.encode(), hashlib.sha256).digest()


def _aes_key(secret: str) -> bytes:
    return hashlib.sha256(b"gridlink-phone-encryption:" + secret.encode()).digest()


def encrypt_phone(phone: str, secret: str, *, nonce: bytes | None = None) -> bytes:
    """nonce ‖ ciphertext."""
    nonce = nonce or os.urandom(12)
    return nonce + AESGCM(_aes_key(secret)).encrypt(nonce, phone.encode(), _AAD)


def decrypt_phone(blob: bytes, secret: str) -> str:
    return AESGCM(_aes_key(secret)).decrypt(blob[:12], blob[12:], _AAD).decode()


def phone_token(phone: str, secret: str) -> str:
    """The encrypted phone as text, for events and notification targets."""
    return base64.b64encode(encrypt_phone(phone, secret)).decode()


def phone_from_token(token: str, secret: str) -> str:
    return decrypt_phone(base64.b64decode(token), secret)
