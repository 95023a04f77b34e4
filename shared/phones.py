"""Reporters' phone numbers: always shown masked, found by a keyed hash, and read back (only by
notify, to text the reporter) from AES-256-GCM ciphertext. Never stored or published in clear.

Ciphertext is a token `<key id>:<base64(nonce ‖ ciphertext)>`: it names the key that made it, so
keys can be rotated. A new key becomes current (GRIDLINK_PHONE_ENCRYPTION_KEY and _KEY_ID), the
retired one stays readable under its id (GRIDLINK_PHONE_ENCRYPTION_OLD_KEYS) until every stored
token has been re-encrypted with the current key (`reencrypt_tokens`, run by each service that
keeps tokens), and is then removed. Tokens from before key ids have no prefix and were made with
the first key, LEGACY_KEY_ID.
"""

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_AAD = b"reporter-phone"
LEGACY_KEY_ID = "k1"


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


class UnknownPhoneKey(KeyError):
    """A token made with a key this service is not given (retired too early, or another county's)."""


def key_id_of(token: str) -> str:
    """The id of the key a token was made with."""
    key_id, separator, _ = token.rpartition(":")
    return key_id if separator else LEGACY_KEY_ID


@dataclass(frozen=True)
class PhoneKeys:
    """The current key (which encrypts) and every key still read, by id."""

    current_id: str
    keys: Mapping[str, str]  # id → secret; includes the current one

    def encrypt(self, phone: str) -> str:
        """A token naming the current key."""
        blob = encrypt_phone(phone, self.keys[self.current_id])
        return f"{self.current_id}:{base64.b64encode(blob).decode()}"

    def decrypt(self, token: str) -> str:
        key_id = key_id_of(token)
        if key_id not in self.keys:
            raise UnknownPhoneKey(f"phone key {key_id!r} is not configured (GRIDLINK_PHONE_ENCRYPTION_OLD_KEYS)")
        return decrypt_phone(base64.b64decode(token.rpartition(":")[2]), self.keys[key_id])

    def is_current(self, token: str) -> bool:
        """Made with the current key and naming it (a token from before key ids is rewritten too)."""
        return token.startswith(f"{self.current_id}:")

    def reencrypt(self, token: str) -> str:
        """The same phone under the current key (the token itself when it already is)."""
        return token if self.is_current(token) else self.encrypt(self.decrypt(token))


def phone_token(phone: str, keys: PhoneKeys) -> str:
    """The encrypted phone as text, for events, notification targets and databases."""
    return keys.encrypt(phone)


def phone_from_token(token: str, keys: PhoneKeys) -> str:
    return keys.decrypt(token)


async def reencrypt_tokens(
    conn: asyncpg.Connection,
    *,
    table: str,
    column: str,
    key: str,
    keys: PhoneKeys,
    where: str = "TRUE",
    batch_size: int = 500,
) -> int:
    """Rewrite every token in `table.column` not made with the current key, a batch per
    transaction (rows locked, locked ones skipped: safe beside running services). `key` is the
    table's primary-key column, `where` narrows the rows that hold tokens. Returns how many tokens
    were rewritten."""
    done = 0
    current = f"{keys.current_id}:%"
    while True:
        async with conn.transaction():
            rows = await conn.fetch(
                # Table and column names come from the calling service's code, never from input.
                f"SELECT {key} AS id, {column} AS token FROM {table} "
                f"WHERE ({where}) AND {column} IS NOT NULL AND {column} NOT LIKE $1 "
                f"LIMIT {int(batch_size)} FOR UPDATE SKIP LOCKED",
                current,
            )
            if not rows:
                return done
            await conn.executemany(
                f"UPDATE {table} SET {column} = $2 WHERE {key} = $1",
                [(r["id"], keys.reencrypt(r["token"])) for r in rows],
            )
            done += len(rows)
