"""Versioned event envelope and payload models.

Every message on a GridLink topic is one `Event`: a frozen envelope (id, type, schema version,
time, producer, jurisdiction, correlation id, key) around a typed payload. Additive changes add
optional fields under the same version; a breaking change adds a new (type, version) pair that
consumers accept before producers switch to it.
"""

import json
from datetime import datetime, timezone
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ReportSubmitted(Payload):
    """A report was accepted by intake and is durable; a case id is reserved for it."""

    report_id: UUID
    case_id: UUID
    description: str
    category: str | None = None
    lat: float | None = None
    lng: float | None = None
    channel: str
    reporter_phone_masked: str | None = None
    media_ids: list[UUID] = []
    submitted_at: datetime


class CaseDispatched(Payload):
    """Dispatch routed a case to its lead department by the responsibility list."""

    case_id: UUID
    report_id: UUID
    category: str
    category_name: str
    priority: str
    department_code: str
    department_name: str
    description: str
    lat: float | None = None
    lng: float | None = None
    responsibility_list_version: str
    rule: str
    dispatched_at: datetime


class SlaBreached(Payload):
    """A case deadline passed without the stage being completed (督办)."""

    case_id: UUID
    stage: str
    department_code: str
    started_at: datetime
    due_at: datetime


class MediaStored(Payload):
    """A media object passed validation and is stored (content-addressed by SHA-256)."""

    media_id: UUID
    sha256: str
    content_type: str
    size_bytes: int
    object_key: str
    filename: str | None = None


class NotificationSent(Payload):
    """A notification reached its channel and the channel confirmed it."""

    notification_id: UUID
    case_id: UUID | None = None
    channel: str
    target: str
    template: str


class NotificationFailed(Payload):
    """A notification was given up after its retries; the reason says why."""

    notification_id: UUID
    case_id: UUID | None = None
    channel: str
    target: str
    template: str
    reason: str


# (type, schema_version) -> payload model. The one place event types are declared.
PAYLOAD_TYPES: dict[tuple[str, int], type[Payload]] = {
    ("report.submitted", 1): ReportSubmitted,
    ("case.dispatched", 1): CaseDispatched,
    ("sla.breached", 1): SlaBreached,
    ("media.stored", 1): MediaStored,
    ("notification.sent", 1): NotificationSent,
    ("notification.failed", 1): NotificationFailed,
}
TYPE_OF_PAYLOAD = {model: key for key, model in PAYLOAD_TYPES.items()}


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: UUID = Field(default_factory=uuid4)
    type: str
    schema_version: int
    occurred_at: datetime = Field(default_factory=utcnow)
    producer: str
    jurisdiction_code: str
    correlation_id: UUID | None = None
    # Kafka message key: the case id where there is one, so a case's events stay in order.
    key: str
    payload: SerializeAsAny[Payload]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class UnknownEventType(Exception):
    """A well-formed envelope whose (type, version) this consumer does not know: skip, don't fail."""


class MalformedEvent(Exception):
    """Bytes that are not a valid GridLink event: a poison message for the dead-letter topic."""


def new_event(
    payload: Payload,
    *,
    producer: str,
    jurisdiction_code: str,
    key: str,
    correlation_id: UUID | None = None,
) -> Event:
    """Wrap a payload in a fresh envelope of its registered type and version."""
    event_type, version = TYPE_OF_PAYLOAD[type(payload)]
    return Event(
        type=event_type,
        schema_version=version,
        producer=producer,
        jurisdiction_code=jurisdiction_code,
        key=key,
        correlation_id=correlation_id,
        payload=payload,
    )


def parse_event(raw: bytes | str | dict[str, Any]) -> Event:
    """Decode and validate an event; raises MalformedEvent or UnknownEventType."""
    try:
        data = raw if isinstance(raw, dict) else json.loads(raw)
        if not isinstance(data, dict):
            raise MalformedEvent("event is not a JSON object")
        key = (data.get("type"), data.get("schema_version"))
        model = PAYLOAD_TYPES.get(key)  # type: ignore[arg-type]
        if model is None:
            if isinstance(key[0], str) and isinstance(key[1], int):
                raise UnknownEventType(f"{key[0]} v{key[1]}")
            raise MalformedEvent("missing or invalid 'type'/'schema_version'")
        payload = model.model_validate(data.get("payload"))
        return Event.model_validate({**data, "payload": payload})
    except (ValueError, ValidationError) as exc:
        raise MalformedEvent(str(exc)) from exc
