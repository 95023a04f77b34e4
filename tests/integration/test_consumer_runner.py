"""The shared consumer runner against real Kafka and PostgreSQL: duplicates applied once,
poison messages and failing handlers dead-lettered with the reason, unknown types skipped."""

import asyncio
import base64
import json
import os
import subprocess
import sys
from uuid import uuid4

import asyncpg
import pytest
import yaml
from aiokafka.errors import MessageSizeTooLargeError
from prometheus_client import REGISTRY

from services.dispatch.app import create_app as dispatch_app
from services.notify.app import create_app as notify_app
from shared import deadletters
from shared.db import create_pool, enqueue
from shared.events import ReportPlace, ReportSubmitted, new_event, utcnow
from shared.kafka import create_producer, relay_outbox_once
from shared.topics import CASES, DEAD_LETTERS, REPORTS, ensure_topics
from tests.support import bearer, case_dispatched, eventually, publish, read_topic, running


def report_event(category: str = "road_damage"):
    return new_event(
        ReportSubmitted(
            report_id=uuid4(),
            case_id=uuid4(),
            description="路面有个大坑",
            category=category,
            place=ReportPlace(division_code="330727"),
            channel="api",
            submitted_at=utcnow(),
        ),
        producer="test",
        jurisdiction_code="330727",
        key="k",
    )


async def test_duplicates_once_poison_dead_lettered_unknown_skipped(make_settings):
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    event = report_event()
    unknown = json.loads(report_event().to_bytes()) | {"type": "report.retracted"}
    await publish(
        settings, REPORTS.name, event.to_bytes(), b"{not json", json.dumps(unknown).encode(), event.to_bytes()
    )
    async with running(dispatch_app(settings)) as client:
        letters = await read_topic(settings, DEAD_LETTERS.name, until=lambda ms: len(ms) >= 1)
        assert letters[0]["reason"] == "malformed"
        assert base64.b64decode(letters[0]["value_base64"]) == b"{not json"
        assert letters[0]["original_topic"] == settings.topic(REPORTS.name)

        async def case_exists():
            r = await client.get(f"/api/v1/cases/{event.payload.case_id}", headers=bearer(settings, "dispatcher"))
            return r.status_code == 200

        assert await eventually(case_exists)
        metrics = (await client.get("/metrics")).text
        assert 'gridlink_events_skipped_total{event_type="report.retracted v2",service="dispatch"}' in metrics

    db = await asyncpg.connect(settings.database_url)
    try:
        assert await db.fetchval("SELECT count(*) FROM dispatch.cases") == 1
        assert await db.fetchval("SELECT count(*) FROM dispatch.case_timeline") == 2
        assert await db.fetchval("SELECT count(*) FROM dispatch.outbox") == 0  # relayed
    finally:
        await db.close()


async def test_handler_that_keeps_failing_goes_to_dead_letters_and_consumption_goes_on(make_settings):
    settings = make_settings("notify")
    await ensure_topics(settings)

    broken, fine = case_dispatched("no_such_department"), case_dispatched("zhujian")
    await publish(settings, CASES.name, broken.to_bytes(), fine.to_bytes())
    async with running(notify_app(settings)) as client:
        letters = await read_topic(settings, DEAD_LETTERS.name, until=lambda ms: len(ms) >= 1)
        assert letters[0]["reason"] == "handler_failed"
        assert "no_such_department" in letters[0]["error"]

        async def fine_was_handled():
            r = await client.get(
                f"/api/v1/cases/{fine.payload.case_id}/notifications", headers=bearer(settings, "dispatcher")
            )
            return r.json()["notifications"]

        assert await eventually(fine_was_handled)


async def test_a_database_outage_is_waited_out_and_no_report_is_dead_lettered(make_settings, infra):
    """PostgreSQL refuses every connection for a while (its connections killed, new ones refused)
    while reports arrive: the consumer waits, says so, and opens every case once it is back."""
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    database = settings.database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(infra.database_url("postgres"))
    events = [report_event() for _ in range(3)]
    try:
        async with running(dispatch_app(settings), raise_app_exceptions=False) as client:
            await admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
            await publish(settings, REPORTS.name, *(e.to_bytes() for e in events))

            async def waiting():
                ready = await client.get("/readyz")
                return ready if ready.status_code == 503 and "transient" in ready.json()["checks"]["consumer"] else None

            assert await eventually(waiting)
            await asyncio.sleep(2)  # far beyond the three quick attempts that used to dead-letter it
            metrics = (await client.get("/metrics")).text
            assert 'gridlink_consumer_waiting{service="dispatch"} 1.0' in metrics
            # Meanwhile a staff request is told to come back, not shown an error page.
            busy = await client.get("/api/v1/cases", headers=bearer(settings, "dispatcher"))
            assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
            assert busy.headers["content-type"] == "application/problem+json"
            await admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')

            async def every_case():
                found = [
                    await client.get(f"/api/v1/cases/{e.payload.case_id}", headers=bearer(settings, "dispatcher"))
                    for e in events
                ]
                return all(r.status_code == 200 for r in found)

            assert await eventually(every_case, timeout=60)
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
        await admin.close()
    for reason in ("handler_failed", "malformed"):  # nothing of this test's topic was dead-lettered
        labels = {"service": "dispatch", "topic": settings.topic(REPORTS.name), "reason": reason}
        # The series exists from the consumer's start (at 0, so Prometheus sees a first dead letter).
        assert REGISTRY.get_sample_value("gridlink_dead_letters_total", labels) == 0


async def test_a_dead_letter_is_replayed_once_its_cause_is_fixed(make_settings, tmp_path):
    """A 派单 for a department missing from the directory is dead-lettered; once the directory has
    it, the operator replays the letter and the message goes out — once, however often replayed."""
    settings = make_settings("notify")
    await ensure_topics(settings)
    broken = case_dispatched("new_bureau")
    await publish(settings, CASES.name, broken.to_bytes())
    async with running(notify_app(settings)):
        await read_topic(settings, DEAD_LETTERS.name, until=lambda ms: len(ms) >= 1)

    mine = deadletters.LetterFilter(consumer_group=settings.consumer_group())
    counted = await deadletters.replay(settings, only=mine, dry_run=True, idle_s=1)
    assert (counted.matched, counted.replayed) == (1, 0) and "new_bureau" in counted.letters[0]["error"]
    # What the operator types (make dlq ARGS="show ..."): the letter whole, with the message that failed.
    command = [sys.executable, "-m", "shared.deadletters", "show", "--group", settings.consumer_group()]
    env = os.environ | {
        "GRIDLINK_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "GRIDLINK_TOPIC_PREFIX": settings.topic_prefix,
    }
    shown = subprocess.run(command + ["--topic", CASES.name], env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "new_bureau" in shown.stdout and '"type": "case.dispatched"' in shown.stdout
    assert "matched 1, replayed 0" in shown.stdout
    elsewhere = subprocess.run(
        command + ["--topic", REPORTS.name], env=env, capture_output=True, text=True, timeout=120
    )
    assert "matched 0" in elsewhere.stdout
    # The cause is fixed: the new bureau gets its WeCom group in the directory.
    directory = yaml.safe_load(settings.directory_path.read_text(encoding="utf-8"))
    directory["departments"]["new_bureau"] = {"robot_key": "demo-new_bureau", "mentioned_mobiles": []}
    fixed = tmp_path / "directory.yaml"
    fixed.write_text(yaml.safe_dump(directory, allow_unicode=True), encoding="utf-8")
    settings = settings.model_copy(update={"directory_path": fixed})

    assert (await deadletters.replay(settings, only=mine, idle_s=1)).replayed == 1
    assert (await deadletters.replay(settings, only=mine, idle_s=1)).replayed == 0  # once
    async with running(notify_app(settings)) as client:

        async def sent():
            r = await client.get(
                f"/api/v1/cases/{broken.payload.case_id}/notifications", headers=bearer(settings, "dispatcher")
            )
            return [n for n in r.json()["notifications"] if n["status"] == "sent"]

        [notification] = await eventually(sent, timeout=30)
        assert notification["recipient"] == "部门群（new_bureau）"


async def test_the_relay_is_woken_by_the_commit_and_a_dead_consumer_fails_liveness(make_settings, infra):
    """With the fallback poll a minute away, case.dispatched still leaves at once: the committing
    transaction's NOTIFY wakes the relay, also after its listening connection was killed. A
    consumer that dies makes /healthz fail, so the pod is restarted."""
    settings = make_settings("dispatch", outbox_fallback_poll_s=60)
    await ensure_topics(settings)
    first, second = report_event(), report_event()
    admin = await asyncpg.connect(infra.database_url("postgres"))
    try:
        async with running(dispatch_app(settings)) as client:
            assert (await client.get("/healthz")).status_code == 200

            def dispatched(*events):
                wanted = {str(e.payload.case_id) for e in events}
                return lambda ms: wanted <= {m["payload"]["case_id"] for m in ms}

            await publish(settings, REPORTS.name, first.to_bytes())
            await read_topic(settings, CASES.name, until=dispatched(first), timeout=10)
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 "
                "AND datname = $2",
                "dispatch outbox listener",
                settings.database_url.rsplit("/", 1)[1],
            )
            assert killed == 1
            await publish(settings, REPORTS.name, second.to_bytes())
            await read_topic(settings, CASES.name, until=dispatched(first, second), timeout=10)

            runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
            runtime.tasks["consumer"].cancel()
            await asyncio.sleep(0.1)
            dead = await client.get("/healthz")
            assert dead.status_code == 503 and dead.json()["stopped"] == ["consumer"]
    finally:
        await admin.close()


async def test_one_relay_at_a_time_and_rows_stay_until_kafka_has_them(make_settings):
    """The relay takes outbox rows only under its schema's lock (another replica holding it gets
    none), and a batch Kafka refused stays in the outbox, in order, for the next try."""
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    pool = await create_pool(settings)
    producer = create_producer(settings)
    await producer.start()
    try:
        async with pool.acquire() as conn:
            await enqueue(conn, settings, report_event())
            async with conn.transaction():  # another replica relaying right now
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('outbox:dispatch'))")
                assert await relay_outbox_once(settings, pool, producer) == 0
            # A message over the producer's request limit: the send fails, the batch stays.
            await conn.execute(
                "INSERT INTO outbox (event_id, topic, key, value) VALUES (gen_random_uuid(), $1, 'k', $2)",
                settings.topic(REPORTS.name),
                b"x" * 2_000_000,
            )
            with pytest.raises(MessageSizeTooLargeError):
                await relay_outbox_once(settings, pool, producer)
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 2
            await conn.execute("DELETE FROM outbox WHERE length(value) > 1000000")
            assert await relay_outbox_once(settings, pool, producer) == 1
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await producer.stop()
        await pool.close()
