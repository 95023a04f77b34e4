import json
from uuid import uuid4

import pytest

from shared.events import MalformedEvent, SlaBreached, UnknownEventType, new_event, parse_event, utcnow


def _breach():
    now = utcnow()
    return SlaBreached(case_id=uuid4(), stage="acknowledge", department_code="zhujian", started_at=now, due_at=now)


def test_new_event_carries_registered_type_and_version():
    event = new_event(_breach(), producer="sla", jurisdiction_code="330727", key="k")
    assert (event.type, event.schema_version) == ("sla.breached", 1)
    assert parse_event(event.to_bytes()) == event


def test_unknown_type_is_not_malformed():
    raw = json.loads(new_event(_breach(), producer="sla", jurisdiction_code="330727", key="k").to_bytes())
    raw["schema_version"] = 99
    with pytest.raises(UnknownEventType):
        parse_event(json.dumps(raw))


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"type": "sla.breached"}', b"\xff\xfe",
                                 b'{"type": "sla.breached", "schema_version": 1, "payload": {}}'])
def test_garbage_is_malformed(raw):
    with pytest.raises(MalformedEvent):
        parse_event(raw)


def test_additive_field_from_newer_producer_is_ignored():
    raw = json.loads(new_event(_breach(), producer="sla", jurisdiction_code="330727", key="k").to_bytes())
    raw["payload"]["escalated_to"] = "330727001"
    assert parse_event(json.dumps(raw)).payload.stage == "acknowledge"
