"""The example consumer other departments start from (docs/events/example_consumer.py), against the
real broker: it rebuilds one case's history from the case topic, and follows the topic as its own
consumer group, each event once."""

import asyncio
import importlib.util
import uuid
from datetime import UTC, datetime

import pytest

from shared.events import CaseDispatched, CaseTransitioned, new_event
from shared.kafka import create_producer
from shared.settings import PROJECT_ROOT
from shared.topics import CASES, ensure_topics

pytestmark = pytest.mark.integration

spec = importlib.util.spec_from_file_location(
    "example_consumer", PROJECT_ROOT / "docs" / "events" / "example_consumer.py"
)
example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(example)


STEP = "case.acknowledged"


def case_events(case_no: str) -> list:
    case_id, report_id, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    facts = dict(
        case_id=case_id,
        report_id=report_id,
        category="exposed_garbage",
        category_name="暴露垃圾",
        priority="normal",
        department_code="zjj",
        department_name="综合执法局",
        description="东关街菜市场门口垃圾堆了三天没人清",
        case_no=case_no,
        jurisdiction_code="330727101",
    )
    dispatched = CaseDispatched(
        **facts, seq=1, responsibility_list_version="1", rule="category", dispatched_at=now, status="dispatched"
    )
    accepted = CaseTransitioned(
        **facts, seq=2, action="acknowledge", from_status="dispatched", actor="worker", at=now, status="acknowledged"
    )
    return [
        new_event(dispatched, producer="dispatch", jurisdiction_code="330727101", key=str(case_id)),
        new_event(accepted, producer="dispatch", jurisdiction_code="330727101", key=str(case_id), event_type=STEP),
    ]


async def test_the_example_consumer_reads_a_case_history_and_follows_the_topic(make_settings):
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    topic = settings.topic(CASES.name)
    ours, other = case_events("20261202-000042"), case_events("20261202-000043")
    producer = create_producer(settings)
    await producer.start()
    try:
        for event in [ours[0], other[0], ours[1], other[1]]:
            await producer.send_and_wait(topic, event.to_bytes(), key=event.key.encode())
    finally:
        await producer.stop()

    history = await example.case_history(bootstrap=settings.kafka_bootstrap, case_no="20261202-000042", topic=topic)
    assert [(e["type"], e["payload"]["status"]) for e in history] == [
        ("case.dispatched", "dispatched"),
        ("case.acknowledged", "acknowledged"),
    ]

    seen: list[str] = []
    stop = asyncio.Event()

    async def handle(event: dict) -> None:
        seen.append(event["event_id"])
        if len(seen) == 4:
            stop.set()

    group = f"{settings.topic_prefix}dept-330727-zjj.case-feed"
    await asyncio.wait_for(
        example.follow(bootstrap=settings.kafka_bootstrap, group=group, handle=handle, topic=topic, stop=stop), 30
    )
    assert sorted(seen) == sorted(str(e.event_id) for e in ours + other)
    assert example.client_options(None, None) == {}
    assert example.client_options("dept", "pw")["sasl_mechanism"] == "SCRAM-SHA-512"
