"""SLA timers against real PostgreSQL: with a controllable clock, two replicas firing at once
fire each due timer exactly once and nothing fires early."""

import asyncio
from datetime import timedelta
from uuid import uuid4

import asyncpg

from services.sla import store
from services.sla.handlers import fire_due_timers
from shared.db import create_pool
from shared.events import utcnow


async def test_two_replicas_fire_each_due_timer_once(make_settings):
    settings = make_settings("sla")
    pool = await create_pool(settings)
    start = utcnow()
    try:
        async with pool.acquire() as conn:
            for i in range(300):
                await store.start_timer(conn, case_id=uuid4(), stage="acknowledge", department_code="zhujian",
                                        started_at=start, due_at=start + timedelta(minutes=10, seconds=i))
        assert await fire_due_timers(settings=settings, pool=pool, now=start + timedelta(minutes=9)) == 0

        later = start + timedelta(minutes=20)
        fired = await asyncio.gather(*(fire_due_timers(settings=settings, pool=pool, now=later, batch=25)
                                       for _ in range(2)))
        assert sum(fired) == 300
        assert await fire_due_timers(settings=settings, pool=pool, now=later) == 0
        db = await asyncpg.connect(settings.database_url)
        try:
            assert await db.fetchval("SELECT count(*) FROM sla.outbox") == 300
            assert await db.fetchval(
                "SELECT count(DISTINCT (convert_from(value, 'UTF8')::jsonb #>> '{payload,case_id}')) FROM sla.outbox") == 300
        finally:
            await db.close()
    finally:
        await pool.close()

