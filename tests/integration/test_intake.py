"""Intake against real PostgreSQL and Kafka: bad input → problem+json, nothing half-stored;
a report and its event are durable together; Idempotency-Key returns the same report."""

import asyncpg
import pytest

from services.intake.app import create_app
from shared.topics import REPORTS
from tests.support import bearer, read_topic, running

GOOD = {
    "description": "东关街菜市场门口垃圾堆了三天没人清",
    "category": "exposed_garbage",
    "lat": 29.08,
    "lng": 120.04,
    "reporter_phone": "13912345678",
}


@pytest.mark.parametrize(
    "body,field",
    [
        ({"category": "exposed_garbage"}, "description"),
        ({**GOOD, "lat": 200}, "lat"),
        ({**GOOD, "reporter_phone": "110"}, "reporter_phone"),
        ({**GOOD, "description": "x" * 5000}, "description"),
        ({**GOOD, "media_ids": ["not-a-uuid"]}, "media_ids.0"),
        ({**GOOD, "seen_at": "2026-12-02T08:00:00"}, "seen_at"),  # no time zone: which 8 o'clock?
    ],
)
async def test_bad_reports_get_problem_json_and_nothing_is_stored(make_settings, body, field):
    settings = make_settings("intake")
    async with running(create_app(settings)) as client:
        r = await client.post("/api/v1/reports", json=body)
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["status"] == 422 and problem["title"]
        assert field in [e["field"] for e in problem["errors"]]
        unknown = await client.post("/api/v1/reports", json={**GOOD, "category": "ufo"})
        assert unknown.status_code == 422 and unknown.json()["type"].endswith("unknown-category")
        missing = await client.get(
            "/api/v1/reports/00000000-0000-0000-0000-000000000000", headers=bearer(settings, "dispatcher")
        )
        assert missing.status_code == 404
    db = await asyncpg.connect(settings.database_url)
    try:
        assert await db.fetchval("SELECT count(*) FROM intake.reports") == 0
        assert await db.fetchval("SELECT count(*) FROM intake.outbox") == 0
    finally:
        await db.close()


async def test_a_character_the_database_cannot_store_is_refused_and_nothing_is_stored(make_settings):
    # PostgreSQL refuses U+0000 in text, which JSON can carry: it answered 500, as the search that
    # fuzzing found did in dispatch.
    settings = make_settings("intake")
    async with running(create_app(settings)) as client:
        r = await client.post("/api/v1/reports", json={**GOOD, "description": "垃圾堆了三天\x00没人清"})
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 422 and r.json()["type"].endswith("unstorable-character")
        assert (await client.post("/api/v1/reports", json=GOOD)).status_code == 201  # the connection still works
    db = await asyncpg.connect(settings.database_url)
    try:
        assert await db.fetchval("SELECT count(*) FROM intake.reports") == 1
    finally:
        await db.close()


async def test_report_is_stored_published_and_idempotent(make_settings):
    settings = make_settings("intake")
    async with running(create_app(settings)) as client:
        first = await client.post("/api/v1/reports", json=GOOD, headers={"Idempotency-Key": "abc-1"})
        again = await client.post("/api/v1/reports", json=GOOD, headers={"Idempotency-Key": "abc-1"})
        assert first.status_code == 201 and again.status_code == 200
        assert again.json()["report_id"] == first.json()["report_id"]
        assert again.json()["reporter_phone"] == "139****5678"
        # The same key with another report (a guessed or reused key) shows nothing of the first.
        other = GOOD | {"description": "别人的反映：楼道灯不亮", "reporter_phone": "13700000000"}
        reused = await client.post("/api/v1/reports", json=other, headers={"Idempotency-Key": "abc-1"})
        assert reused.status_code == 422 and reused.json()["type"].endswith("idempotency-key-reused")
        assert first.json()["report_id"] not in reused.text and "5678" not in reused.text
        events = await read_topic(settings, REPORTS.name, until=lambda ms: len(ms) >= 1)
        assert [e["payload"]["report_id"] for e in events] == [first.json()["report_id"]]
    db = await asyncpg.connect(settings.database_url)
    try:
        stored = await db.fetchrow("SELECT * FROM intake.reports")
        assert stored["reporter_phone_masked"] == "139****5678"
        assert b"13912345678" not in bytes(stored["reporter_phone_hash"])
    finally:
        await db.close()


async def test_when_the_problem_was_seen_travels_with_the_report(make_settings):
    settings = make_settings("intake")
    async with running(create_app(settings)) as client:
        seen = "2026-12-02T08:00:00+08:00"
        r = await client.post("/api/v1/reports", json=GOOD | {"seen_at": seen})
        assert r.status_code == 201, r.text
        future = await client.post("/api/v1/reports", json=GOOD | {"seen_at": "2099-01-01T00:00:00+08:00"})
        assert future.status_code == 422 and "seen_at is in the future" in future.text
        events = await read_topic(settings, REPORTS.name, until=lambda ms: len(ms) >= 1)
        assert events[0]["payload"]["seen_at"] == "2026-12-02T00:00:00Z"
