"""Pure intake rules: the report a client may submit, phone masking and keyed hashing."""

import hashlib
import hmac
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

# The county's bounding box is checked by triage later; here only what a coordinate can be.
MAX_DESCRIPTION_CHARS = 2000


class Channel(StrEnum):
    api = "api"
    h5 = "h5"
    wechat_group = "wechat_group"
    official_account = "official_account"
    open311 = "open311"


class ReportIn(BaseModel):
    """A report as a client submits it."""

    description: str = Field(min_length=2, max_length=MAX_DESCRIPTION_CHARS)
    category: str | None = Field(default=None, max_length=64)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)
    reporter_phone: str | None = Field(default=None, pattern=r"^1[3-9]\d{9}$")
    channel: Channel = Channel.api
    media_ids: list[UUID] = Field(default=[], max_length=9)

    @model_validator(mode="after")
    def _coordinates_come_in_pairs(self):
        if (self.lat is None) != (self.lng is None):
            raise ValueError("lat and lng must be given together")
        self.description = self.description.strip()
        return self


def mask_phone(phone: str) -> str:
    """138****1234: how a phone number is always shown."""
    return f"{phone[:3]}****{phone[-4:]}"


def phone_hash(phone: str, key: str) -> bytes:
    """Keyed hash so reports can be found by phone without keeping the number readable."""
    return hmac.new(key.encode(), phone.encode(), hashlib.sha256).digest()
