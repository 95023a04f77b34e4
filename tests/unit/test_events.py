import json
from uuid import uuid4

import pytest
from pydantic import ValidationError

from shared.events import (
    CaseFacts,
    Event,
    MalformedEvent,
    MediaAttached,
    ReportPlace,
    ReportSubmitted,
    ReportSubmittedV1,
    SlaBreached,
    UnknownEventType,
    new_event,
    parse_event,
    submitted_report,
    utcnow,
)


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


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"type": "sla.breached"}',
        b"\xff\xfe",
        b'{"type": "sla.breached", "schema_version": 1, "payload": {}}',
    ],
)
def test_garbage_is_malformed(raw):
    with pytest.raises(MalformedEvent):
        parse_event(raw)


def test_additive_field_from_newer_producer_is_ignored():
    raw = json.loads(new_event(_breach(), producer="sla", jurisdiction_code="330727", key="k").to_bytes())
    raw["payload"]["escalated_to"] = "330727001"
    assert parse_event(json.dumps(raw)).payload.stage == "acknowledge"


def test_payload_as_gives_the_payload_as_the_model_the_handler_expects():
    event = parse_event(new_event(_breach(), producer="sla", jurisdiction_code="330727", key="k").to_bytes())
    breach = event.payload_as(SlaBreached)
    assert breach is event.payload and breach.stage == "acknowledge"


def test_payload_as_accepts_a_subclass_of_the_model():
    event = parse_event(
        json.dumps(
            {
                "type": "case.acknowledged",
                "schema_version": 1,
                "producer": "dispatch",
                "jurisdiction_code": "330727",
                "key": "k",
                "payload": {
                    "case_id": str(uuid4()),
                    "report_id": str(uuid4()),
                    "category": "manhole",
                    "category_name": "井盖",
                    "priority": "normal",
                    "department_code": "zhujian",
                    "department_name": "住建局",
                    "description": "井盖翻起来了",
                    "action": "acknowledge",
                    "from_status": "dispatched",
                    "actor": "staff:1",
                    "at": utcnow().isoformat(),
                },
            }
        )
    )
    assert event.payload_as(CaseFacts).status == "dispatched"  # CaseTransitioned is a CaseFacts


def test_payload_as_refuses_another_model_naming_both():
    event = Event(
        type="sla.breached", schema_version=1, producer="sla", jurisdiction_code="330727", key="k", payload=_breach()
    )
    with pytest.raises(MalformedEvent, match="sla.breached v1 carries SlaBreached, expected MediaAttached"):
        event.payload_as(MediaAttached)


def _submitted_v1(**place) -> bytes:
    report = ReportSubmittedV1(
        report_id=uuid4(),
        case_id=uuid4(),
        description="井盖翻起来了",
        category="manhole",
        channel="api",
        media_ids=[uuid4()],
        submitted_at=utcnow(),
        priority="urgent",
        **place,
    )
    return new_event(report, producer="intake", jurisdiction_code="330727", key=str(report.case_id)).to_bytes()


def test_report_submitted_v1_is_read_as_v2_with_the_same_place():
    event = parse_event(
        _submitted_v1(
            lat=29.08, lng=120.05, grid_code="330727001002001", village_code="330727001002", town_code="330727001"
        )
    )
    assert event.schema_version == 1
    report = submitted_report(event)
    assert isinstance(report, ReportSubmitted)
    assert report.place == ReportPlace(
        division_code="330727001002",
        town_code="330727001",
        village_code="330727001002",
        grid_code="330727001002001",
        lat=29.08,
        lng=120.05,
        datum="wgs84",
    )
    v1 = event.payload
    assert (report.report_id, report.case_id, report.media_ids, report.priority, report.submitted_at) == (
        v1.report_id,
        v1.case_id,
        v1.media_ids,
        v1.priority,
        v1.submitted_at,
    )


def test_a_v1_report_is_in_its_most_precise_division_or_the_instances():
    town_only = submitted_report(parse_event(_submitted_v1(town_code="330727001")))
    assert town_only.place.division_code == "330727001"
    address_only = submitted_report(parse_event(_submitted_v1(address="幸福路12号", needs_locating=True)))
    assert address_only.place.division_code == "330727"  # the v1 envelope's: intake's own division
    assert (address_only.place.lat, address_only.place.grid_code, address_only.address) == (None, None, "幸福路12号")


def test_intake_produces_report_submitted_v2_and_it_is_read_as_it_is():
    place = ReportPlace(division_code="330727001002", village_code="330727001002", lat=29.08, lng=120.05)
    report = ReportSubmitted(
        report_id=uuid4(), case_id=uuid4(), description="井盖翻起来了", channel="h5", submitted_at=utcnow(), place=place
    )
    event = parse_event(
        new_event(report, producer="intake", jurisdiction_code=place.division_code, key=str(report.case_id)).to_bytes()
    )
    assert (event.type, event.schema_version) == ("report.submitted", 2)
    assert submitted_report(event) == report


def test_a_place_is_always_wgs84():
    with pytest.raises(ValidationError):
        ReportPlace(division_code="330727", lat=29.08, lng=120.05, datum="gcj02")


def test_transient_failures_are_told_from_poison():
    import asyncpg
    from aiokafka.errors import KafkaConnectionError

    from shared.db import is_transient

    def postgres(sqlstate: str, message: str = "x"):
        error = asyncpg.PostgresError(message)
        error.sqlstate = sqlstate
        return error

    for transient in (
        ConnectionRefusedError(),
        TimeoutError(),
        asyncpg.exceptions.ConnectionDoesNotExistError("gone"),
        postgres("40001"),  # serialization failure
        postgres("40P01"),  # deadlock
        postgres("57P01"),  # the server is shutting down
        postgres("53300"),  # too many connections
        postgres("55000", 'database "x" is not currently accepting connections'),
        KafkaConnectionError(),
    ):
        assert is_transient(transient), transient
    for poison in (ValueError("bad"), KeyError("x"), postgres("23505"), postgres("55000", "lock not available")):
        assert not is_transient(poison), poison
