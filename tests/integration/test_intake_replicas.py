"""Intake as several replicas (or uvicorn workers) on one database: reports posted to either at
once get distinct case numbers and ids, each is published once, and an Idempotency-Key sent to
two replicas at the same moment makes one report, answered to both."""

import asyncio
from contextlib import AsyncExitStack

import asyncpg

from services.intake.app import create_app as intake_app
from shared.topics import REPORTS, ensure_topics
from tests.support import read_topic, running


def body(i: int) -> dict:
    return {
        "description": f"第{i}号路灯不亮了，晚上很黑",
        "category": "signboard_lighting",
        # 300 m apart, so none joins another's case.
        "lat": 29.0829 + 0.003 * (i % 10),
        "lng": 120.0546 + 0.003 * (i // 10),
        "channel": "api",
    }


async def test_two_replicas_share_case_numbers_events_and_idempotency_keys(make_settings):
    settings = make_settings("intake", intake_rate_limit_ip_per_minute=1000)  # one test client, many reports
    await ensure_topics(settings)
    async with AsyncExitStack() as stack:
        replicas = [await stack.enter_async_context(running(intake_app(settings))) for _ in range(2)]
        plain = [replicas[i % 2].post("/api/v1/reports", json=body(i)) for i in range(30)]
        # The same key to both replicas at once: a client's retry racing its first try.
        keyed = [
            replica.post("/api/v1/reports", json=body(100 + k), headers={"idempotency-key": f"retry-{k}"})
            for k in range(5)
            for replica in replicas
        ]
        answers = await asyncio.gather(*plain, *keyed)
        assert all(a.status_code == 201 for a in answers[:30]), [a.text for a in answers[:30]]
        for first, second in zip(answers[30::2], answers[31::2], strict=True):
            assert sorted([first.status_code, second.status_code]) == [200, 201], (first.text, second.text)
            assert first.json()["report_id"] == second.json()["report_id"]
            assert first.json()["case_no"] == second.json()["case_no"]
        created = [a.json() for a in answers if a.status_code == 201]
        assert len({a["case_no"] for a in created}) == len({a["case_id"] for a in created}) == 35

        wanted = {a["case_id"] for a in created}
        messages = await read_topic(
            settings, REPORTS.name, until=lambda ms: wanted <= {m["payload"]["case_id"] for m in ms}, timeout=20
        )
        await asyncio.sleep(1)  # a second relay publishing the same rows would show up by now
        messages = await read_topic(settings, REPORTS.name, until=lambda ms: len(ms) >= len(messages))
        assert sorted(m["payload"]["case_id"] for m in messages) == sorted(wanted)

    db = await asyncpg.connect(settings.database_url)
    try:
        assert await db.fetchval("SELECT count(*) FROM intake.reports") == 35
        assert await db.fetchval("SELECT count(DISTINCT case_no) FROM intake.reports") == 35
    finally:
        await db.close()
