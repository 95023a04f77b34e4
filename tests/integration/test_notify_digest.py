"""派单 digests on the real stack (Kafka, PostgreSQL, the fake WeCom that enforces 20 messages a
minute per robot with errcode 45009): a burst to one group reaches it within seconds, each case in
exactly one message, each notification marked sent once, by its own message or by its digest."""

import re
from uuid import uuid4

import asyncpg
import httpx

from services.notify.app import create_app
from shared.topics import CASES, NOTIFICATIONS, ensure_topics
from tests.integration.test_notify_delivery import fake_messages, one_robot_directory
from tests.support import bearer, case_dispatched, eventually, publish, read_topic, running

BURST = 40


async def test_a_burst_to_one_group_is_merged_into_digests_and_each_case_is_sent_once(
    make_settings, fake_wecom, tmp_path
):
    robot = f"digest-{uuid4().hex[:8]}"
    settings = make_settings("notify", directory_path=one_robot_directory(tmp_path, robot))
    await ensure_topics(settings)
    events = [case_dispatched(case_no=f"20261202-{i:06d}") for i in range(BURST)]
    await publish(settings, CASES.name, *(e.to_bytes() for e in events))

    async def rows():
        db = await asyncpg.connect(settings.database_url)
        try:
            return await db.fetch("SELECT * FROM notify.notifications ORDER BY created_at")
        finally:
            await db.close()

    async with running(create_app(settings)) as client:
        client.headers.update(bearer(settings, "dispatcher"))

        async def all_sent():
            found = await rows()
            return found if len(found) == BURST and all(r["status"] == "sent" for r in found) else None

        sent = await eventually(all_sent, timeout=40)
        merged = [r for r in sent if r["digest_id"] is not None]
        statuses = (await client.get(f"/api/v1/cases/{merged[0]['case_id']}/notifications")).json()
        metrics = (await client.get("/metrics")).text

    # Forty do not fit in the five slots beyond the reserve: past the first few, the queue goes out merged.
    assert len(merged) >= BURST - 5
    assert all(r["attempts"] == 1 and r["last_error"] is None for r in sent)
    received = fake_messages(fake_wecom, robot)
    assert len(received) <= 5
    quoted = [re.findall(r"20261202-\d{6}", m["body"]["text"]["content"]) for m in received]
    assert sorted(n for numbers in quoted for n in numbers) == sorted(e.payload.case_no for e in events)
    digests = [m for m, numbers in zip(received, quoted, strict=True) if len(numbers) > 1]
    assert digests and all(m["body"]["text"]["content"].startswith("【派单汇总】") for m in digests)
    assert all(m["body"]["text"]["mentioned_mobile_list"] == ["13900000301"] for m in digests)
    assert all(
        "｜井盖缺失｜" in m["body"]["text"]["content"] and "前接单" in m["body"]["text"]["content"] for m in digests
    )
    # The first 派单 went out at once; the merged ones within seconds, never a minute later.
    waits = [(r["sent_at"] - r["created_at"]).total_seconds() for r in sent]
    assert max(waits) < 20, waits
    assert httpx.get(f"{fake_wecom}/_fake/stats").json()["robot_rate_limited"].get(robot, 0) == 0

    # One notification.sent per notification, whichever message carried it.
    announced = await read_topic(settings, NOTIFICATIONS.name, until=lambda ms: len(ms) >= BURST)
    assert sorted(str(r["notification_id"]) for r in sent) == sorted(
        m["payload"]["notification_id"] for m in announced if m["type"] == "notification.sent"
    )
    db = await asyncpg.connect(settings.database_url)
    try:
        carried = await db.fetch("SELECT digest_id, notifications, sent_at FROM notify.digests")
    finally:
        await db.close()
    assert len(carried) == len(digests) and all(d["sent_at"] is not None for d in carried)
    assert sum(d["notifications"] for d in carried) == len(merged)
    assert statuses["notifications"][0]["digest_id"] == str(merged[0]["digest_id"])
    assert "gridlink_notify_digests_total" in metrics and 'outcome="sent"' in metrics
