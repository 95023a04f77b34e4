"""SLA's event handlers and the ticker that turns due timers into events."""

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.sla import store
from services.sla.domain import acknowledgement_due
from shared.db import enqueue
from shared.events import CaseDispatched, Event, SlaBreached, new_event
from shared.settings import Settings

log = logging.getLogger(__name__)


def make_handlers(*, settings: Settings):
    async def on_case_dispatched(conn: asyncpg.Connection, event: Event) -> None:
        case: CaseDispatched = event.payload
        await store.start_timer(
            conn, case_id=case.case_id, stage="acknowledge", department_code=case.department_code,
            started_at=case.dispatched_at,
            due_at=acknowledgement_due(dispatched_at=case.dispatched_at, priority=case.priority, settings=settings),
        )

    return {"case.dispatched": on_case_dispatched}


async def fire_due_timers(*, settings: Settings, pool: asyncpg.Pool, now: datetime, batch: int = 500) -> int:
    """Fire every timer due at `now` (in batches); returns how many fired."""
    fired = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await store.claim_due_timers(conn, now=now, limit=batch)
            for row in rows:
                breach = SlaBreached(
                    case_id=row["case_id"], stage=row["stage"], department_code=row["department_code"],
                    started_at=row["started_at"], due_at=row["due_at"],
                )
                await enqueue(conn, settings, new_event(
                    breach, producer=settings.service_name, jurisdiction_code=settings.jurisdiction_code,
                    key=str(row["case_id"]),
                ))
        fired += len(rows)
        if len(rows) < batch:
            return fired


def make_ticker(clock: Callable[[], datetime]):
    """A background loop firing due timers every `sla_tick_interval_s`."""

    async def ticker(runtime) -> None:
        while not runtime.stopping.is_set():
            try:
                await fire_due_timers(settings=runtime.settings, pool=runtime.pool, now=clock())
            except Exception:
                log.exception("firing timers failed; retrying")
            try:
                await asyncio.wait_for(runtime.stopping.wait(), runtime.settings.sla_tick_interval_s)
            except TimeoutError:
                pass

    return ticker
