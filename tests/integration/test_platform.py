"""Production's database roles against the real PostgreSQL: migrations run as the schema's owner
(shared/migrate.py, the pods' init container); a service runs as a role that reads and writes rows
but may not change the schema, checks that no migration is pending, and creates no topics."""

import io
import json
import logging
import uuid

import asyncpg
import pytest

from services.dispatch.app import create_app as dispatch_app
from services.sla.app import create_app as sla_app
from shared.db import MigrationsPending
from shared.migrate import MigrationSettings, main, migrate
from shared.settings import PROJECT_ROOT
from shared.topics import ensure_topics
from tests.support import running

pytestmark = pytest.mark.integration


def as_role(url: str, role: str) -> str:
    return url.replace("postgresql://gridlink@", f"postgresql://{role}@")


@pytest.fixture
async def roles_database(infra):
    """A fresh, empty database with an owner role (may create schemas) and an app role (may not)."""
    suffix = uuid.uuid4().hex[:8]
    name, owner, app = f"roles_{suffix}", f"owner_{suffix}", f"app_{suffix}"
    admin = await asyncpg.connect(infra.database_url("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        await admin.execute(f"CREATE ROLE {owner} LOGIN")
        await admin.execute(f"CREATE ROLE {app} LOGIN")
        await admin.execute(f"GRANT CREATE ON DATABASE {name} TO {owner}")
    finally:
        await admin.close()
    url = infra.database_url(name)
    return as_role(url, owner), as_role(url, app), app


async def test_a_service_runs_as_a_role_that_cannot_change_its_schema(roles_database, make_settings):
    owner_url, app_url, app_role = roles_database
    applied = await migrate(
        service="sla", settings=MigrationSettings(database_url=owner_url, database_runtime_role=app_role)
    )
    assert applied[0] == "shared/001_outbox_and_processed_events.sql" and "sla/001_timers.sql" in applied
    again = await migrate(
        service="sla", settings=MigrationSettings(database_url=owner_url, database_runtime_role=app_role)
    )
    assert again == []  # idempotent: every pod's init container runs it

    settings = make_settings("sla", database_url=app_url, database_migrate_on_start=False, kafka_create_topics=False)
    await ensure_topics(make_settings("sla"))  # in production: KafkaTopic resources, not the service
    async with running(sla_app(settings)) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text

    conn = await asyncpg.connect(app_url)
    try:
        await conn.execute("SET search_path TO sla")
        await conn.fetch("SELECT * FROM outbox")  # rows: yes
        for ddl in ("CREATE TABLE sla.sneaky (id int)", "DROP TABLE sla.outbox", "CREATE SCHEMA sneaky"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(ddl)
    finally:
        await conn.close()


async def test_a_service_whose_migrations_are_pending_refuses_to_start(roles_database, make_settings):
    _, app_url, _ = roles_database
    settings = make_settings(
        "dispatch",
        database_url=app_url,
        database_schema="dispatch_330727101",
        database_migrate_on_start=False,
        kafka_create_topics=False,
    )
    with pytest.raises(
        MigrationsPending, match=r"dispatch_330727101 lacks migrations .*python -m shared.migrate dispatch"
    ):
        async with running(dispatch_app(settings)):
            pass


def test_the_migration_command_names_what_it_applied(roles_database, monkeypatch, capsys):
    owner_url, _, app_role = roles_database
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", owner_url)
    monkeypatch.setenv("GRIDLINK_DATABASE_SCHEMA", "dispatch_330727101")
    monkeypatch.setenv("GRIDLINK_DATABASE_RUNTIME_ROLE", app_role)
    main(["dispatch"])
    first = capsys.readouterr().out
    shipped = len(list((PROJECT_ROOT / "shared" / "migrations").glob("*.sql")))
    shipped += len(list((PROJECT_ROOT / "services" / "dispatch" / "migrations").glob("*.sql")))
    assert first.startswith(f"dispatch: {shipped} migration(s) applied: shared/001_outbox_and_processed_events.sql, ")
    assert ", dispatch/009_supervised_case_no.sql" in first
    main(["dispatch"])
    assert capsys.readouterr().out.strip() == "dispatch: 0 migration(s) applied"
    with pytest.raises(SystemExit, match="unknown service 'console'"):
        main(["console"])


async def test_the_outbox_backlog_is_the_age_of_its_oldest_event(database_url, make_settings):
    from aiokafka import AIOKafkaProducer
    from prometheus_client import REGISTRY

    from shared.db import create_pool
    from shared.kafka import relay_outbox_once

    settings = make_settings("sla", database_url=database_url)
    await ensure_topics(settings)
    pool = await create_pool(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO outbox (event_id, topic, key, value, created_at) "
                "VALUES (gen_random_uuid(), $1, 'k', '{}', now() - interval '90 seconds')",
                settings.topic("gridlink.sla"),
            )
        assert await relay_outbox_once(settings, pool, producer) == 1
        age = REGISTRY.get_sample_value("gridlink_outbox_oldest_age_seconds", {"service": "sla"})
        assert 90 <= age < 120
        assert await relay_outbox_once(settings, pool, producer) == 0
        assert REGISTRY.get_sample_value("gridlink_outbox_oldest_age_seconds", {"service": "sla"}) == 0
    finally:
        await producer.stop()
        await pool.close()


async def test_lag_of_partitions_given_away_is_no_longer_reported(database_url, make_settings):
    from aiokafka import TopicPartition
    from prometheus_client import REGISTRY

    from shared import metrics
    from shared.db import create_pool
    from shared.kafka import ConsumerRunner, create_producer
    from shared.topics import CASES

    settings = make_settings("sla", database_url=database_url, service_name="lag-probe")
    await ensure_topics(settings)
    pool = await create_pool(settings)
    producer = create_producer(settings)
    await producer.start()
    runner = ConsumerRunner(settings=settings, pool=pool, producer=producer, topics=[CASES], handlers={})
    await runner.start()
    try:
        # A partition this runner reported before a rebalance gave it to another replica.
        gone = TopicPartition("gridlink.elsewhere", 7)
        metrics.CONSUMER_LAG.labels("lag-probe", gone.topic, "7").set(42)
        runner._lag_reported = {gone}
        await runner._update_lag()
        labels = {"service": "lag-probe", "topic": gone.topic, "partition": "7"}
        assert REGISTRY.get_sample_value("gridlink_consumer_lag_messages", labels) is None
        assert gone not in runner._lag_reported
    finally:
        await runner.consumer.stop()
        await producer.stop()
        await pool.close()


async def test_a_request_id_goes_from_http_into_the_event_headers_and_the_consumers_logs(make_settings):
    from aiokafka import AIOKafkaConsumer

    from services.intake.app import create_app as intake_app
    from shared import logs
    from shared.db import create_pool, enqueue
    from shared.kafka import ConsumerRunner, create_producer
    from shared.topics import REPORTS

    settings = make_settings("intake")
    report = {
        "description": "东关街菜市场门口垃圾堆了三天没人清",
        "category": "exposed_garbage",
        "lat": 29.08,
        "lng": 120.04,
        "reporter_phone": "13912345678",
    }
    async with running(intake_app(settings)) as client:
        created = await client.post("/api/v1/reports", json=report, headers={"X-Request-ID": "resident-req-1"})
        assert created.status_code == 201 and created.headers["X-Request-ID"] == "resident-req-1"
        consumer = AIOKafkaConsumer(
            settings.topic(REPORTS.name), bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            record = await consumer.getone()
        finally:
            await consumer.stop()
    assert ("request_id", b"resident-req-1") in list(record.headers)

    # A consumer handling it logs with that id and passes it on to the events it causes.
    dispatch = make_settings("dispatch", database_url=settings.database_url)
    pool = await create_pool(dispatch)
    producer = create_producer(dispatch)
    await producer.start()
    handler_log = logging.getLogger("services.dispatch.handlers")

    async def on_submitted(conn, event):
        handler_log.warning("placing report %s", event.payload.report_id)
        await enqueue(conn, dispatch, event.model_copy(update={"event_id": uuid.uuid4()}))

    runner = ConsumerRunner(
        settings=dispatch, pool=pool, producer=producer, topics=[REPORTS], handlers={"report.submitted": on_submitted}
    )
    stream = io.StringIO()
    captured = logging.StreamHandler(stream)
    captured.setFormatter(logs.JsonFormatter("dispatch"))
    handler_log.addHandler(captured)
    try:
        assert await runner.handle_record(record)
        async with pool.acquire() as conn:
            stored = await conn.fetchval("SELECT request_id FROM dispatch.outbox")
    finally:
        handler_log.removeHandler(captured)
        await producer.stop()
        await pool.close()
    assert stored == "resident-req-1"
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["request_id"] == "resident-req-1" and line["service"] == "dispatch"
    assert line["message"] == f"placing report {created.json()['report_id']}"
    assert logs.request_id.get() is None  # the ids belong to the handled event only
