"""Callback security for WeCom applications and official accounts (the WXBizMsgCrypt scheme).

Signature: SHA-1 hex of the sorted strings (token, timestamp, nonce[, encrypt]), compared in
constant time (wechatpy's own comparison is not). Encryption: AES-256-CBC with wechatpy's
PrpCrypto (key = base64(EncodingAESKey + "="), IV = first 16 bytes of the key, plaintext =
16 random bytes + 4-byte big-endian length + message + receive id, PKCS#7 to 32-byte blocks).
The AI bot's media files (a 办结's photos) are the same AES with the bot's key, without that framing.
Pure functions: no clock, no I/O; freshness and nonce memory are the caller's.
"""

import base64
import binascii
import hashlib
import hmac
import xml.etree.ElementTree as ET

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.crypto import PrpCrypto


class CallbackRejected(Exception):
    """A callback we must not act on; `reason` is a short machine word for logs and metrics."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


def signature(*parts: str) -> str:
    """SHA-1 hex of the parts sorted and joined, as WeChat and WeCom sign callbacks."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def verify_signature(given: str, *parts: str) -> None:
    """Raise CallbackRejected unless `given` is the signature of `parts` (constant-time compare)."""
    if not hmac.compare_digest(signature(*parts).encode(), (given or "").lower().encode()):
        raise CallbackRejected("bad_signature")


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key behind a 43-character EncodingAESKey."""
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ValueError("EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


def decrypt(encrypted: str, *, key: bytes, receive_id: str) -> str:
    """Decrypt a callback payload and check it was meant for `receive_id` (the corp id or appid)."""
    try:
        return PrpCrypto(key).decrypt(encrypted, receive_id)
    except Exception as exc:  # bad base64, bad block size, wrong key or wrong receive id
        raise CallbackRejected("undecryptable", type(exc).__name__) from None


def encrypt(message: str, *, key: bytes, receive_id: str) -> str:
    """Encrypt a passive reply the way the platform expects (base64 text)."""
    return PrpCrypto(key).encrypt(message, receive_id).decode()


def parse_xml(text: str) -> dict[str, str]:
    """The child elements of a callback's <xml> root as strings; entity declarations are refused."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise CallbackRejected("bad_xml", "DTDs are not allowed")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise CallbackRejected("bad_xml", str(exc)) from None
    return {child.tag: (child.text or "").strip() for child in root}


def decrypt_aibot_file(data: bytes, *, key: bytes) -> bytes:
    """A file the AI bot's media URL serves: AES-256-CBC with the callback key, IV = the key's first
    16 bytes, PKCS#7 padding to 32-byte blocks. Raises ValueError when it is not that."""
    if not data or len(data) % 16:
        raise ValueError("not whole AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= 32 or plain[-pad:] != bytes([pad]) * pad:
        raise ValueError("bad padding")
    return plain[:-pad]
