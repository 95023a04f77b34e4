"""The analytics consumer: folds the report, case and sla topics into rounds, exactly once.

It runs inside the sla service beside sla's own consumer, as its own consumer group
(`<sla group>-analytics`) over its own schema (`<sla schema>_analytics`, with its own
processed_events), so rebuilding every figure from the start of the topics touches nothing of
sla's timers: stop sla, run `python -m services.sla.analytics.rebuild`, start sla.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from services.sla.analytics import metrics, store
from services.sla.analytics.scorecards import (
    Breach,
    Round,
    apply_step,
    mark_breaches,
    mark_recurrences,
    open_rounds,
)
from services.sla.calendar import CST
from services.sla.settings import SlaSettings
from shared.case_actions import CASE_TRANSITION_TYPES
from shared.db import apply_migrations, check_migrations, create_pool, schema_name
from shared.events import (
    CaseDispatched,
    CaseTransitioned,
    Event,
    ReportAttached,
    SlaBreached,
    submitted_report,
    utcnow,
)
from shared.kafka import ConsumerRunner, Handler
from shared.loops import repeat_until_stopped
from shared.service import Runtime
from shared.topics import CASES, REPORTS, SLA

log = logging.getLogger(__name__)

TOPICS = [REPORTS, CASES, SLA]
SERVICE_DIR = Path(__file__).parent


def analytics_settings(settings: SlaSettings) -> SlaSettings:
    """sla's settings as the analytics consumer's: its own group and its own schema (sla's, with
    `_analytics`: what `python -m shared.migrate sla` creates beside sla's own)."""
    return settings.model_copy(
        update={
            "service_name": f"{settings.service_name}-analytics",
            "database_schema": f"{schema_name(settings)}_analytics",
        }
    )


async def _save_changed(conn: asyncpg.Connection, before: list[Round], after: list[Round]) -> None:
    await store.save_rounds(conn, [r for r in after if r not in before])


async def _refold(conn: asyncpg.Connection, case_id, change, *, recurrences: bool = False) -> None:
    """Load a case's rounds, apply `change`, save what changed; with `recurrences`, also mark the
    resolutions later cases recurred after (only a dispatch or a resolution can change those)."""
    before = await store.case_rounds(conn, case_id=case_id)
    after = change(before)
    if recurrences:
        after = mark_recurrences(after, await store.recurrence_times(conn, case_id=case_id))
    await _save_changed(conn, before, after)


def make_handlers() -> dict[str, Handler]:
    async def on_dispatched(conn: asyncpg.Connection, event: Event) -> None:
        case = event.payload_as(CaseDispatched)
        breaches = await store.case_breaches(conn, case_id=case.case_id)
        facts = case.model_dump()
        await _refold(
            conn,
            case.case_id,
            lambda rounds: open_rounds(
                rounds, case=facts, started_at=case.dispatched_at, action=case.action, breaches=breaches
            ),
            recurrences=True,
        )
        if case.recurrence_of is not None:  # 回潮: counts against the earlier case's resolution
            await store.save_recurrence(
                conn, case_id=case.recurrence_of, later_case=case.case_id, at=case.dispatched_at
            )
            await _refold(conn, case.recurrence_of, lambda rounds: rounds, recurrences=True)

    async def on_step(conn: asyncpg.Connection, event: Event) -> None:
        step = event.payload_as(CaseTransitioned)
        await _refold(
            conn,
            step.case_id,
            lambda rounds: apply_step(rounds, event_type=event.type, at=step.at, detail=step.detail),
            recurrences=event.type == "case.resolved",
        )

    async def on_breached(conn: asyncpg.Connection, event: Event) -> None:
        b = event.payload_as(SlaBreached)
        breach = Breach(case_id=b.case_id, department_code=b.department_code, started_at=b.started_at, stage=b.stage)
        await store.save_breach(conn, breach, fired_at=b.fired_at)
        await _refold(conn, b.case_id, lambda rounds: mark_breaches(rounds, [breach]))

    async def on_report_submitted(conn: asyncpg.Connection, event: Event) -> None:
        report = submitted_report(event)
        await store.save_report(
            conn,
            report_id=report.report_id,
            case_id=report.case_id,
            submitted_at=report.submitted_at,
            seen_at=report.seen_at,
            category=report.category,
            channel=report.channel,
            town_code=report.place.town_code,
            village_code=report.place.village_code,
            grid_code=report.place.grid_code,
        )

    async def on_report_attached(conn: asyncpg.Connection, event: Event) -> None:
        report = event.payload_as(ReportAttached)
        await store.save_report(
            conn,
            report_id=report.report_id,
            case_id=report.case_id,
            submitted_at=report.submitted_at,
            category=report.category,
            channel=report.channel,
            attached=True,
        )

    handlers: dict[str, Handler] = {
        "case.dispatched": on_dispatched,
        "sla.breached": on_breached,
        "report.submitted": on_report_submitted,
        "report.attached": on_report_attached,
    }
    handlers.update(dict.fromkeys(CASE_TRANSITION_TYPES, on_step))
    return handlers


@dataclass
class Analytics:
    settings: SlaSettings
    pool: asyncpg.Pool
    consumer: ConsumerRunner


@asynccontextmanager
async def running_analytics(
    runtime: Runtime[SlaSettings], *, clock: Callable[[], datetime] = utcnow
) -> AsyncIterator[Analytics]:
    """Start the analytics consumer and the business-metrics loop inside a running sla service."""
    settings = analytics_settings(runtime.settings)
    pool = await create_pool(settings)
    try:
        if settings.database_migrate_on_start:
            await apply_migrations(pool, schema=schema_name(settings), service_dir=SERVICE_DIR)
        else:  # the init container migrated it with the schema owner's role
            await check_migrations(pool, schema=schema_name(settings), service_dir=SERVICE_DIR)
        consumer = ConsumerRunner(
            settings=settings, pool=pool, producer=runtime.producer, topics=TOPICS, handlers=make_handlers()
        )
        await consumer.start()
        tasks = [
            asyncio.create_task(consumer.run(runtime.stopping)),
            asyncio.create_task(_publish_metrics(settings, pool, runtime.stopping, clock)),
        ]

        async def consuming() -> None:
            if not consumer.running:
                raise RuntimeError("the analytics consumer is not running")

        runtime.checks["analytics_consumer"] = consuming
        try:
            yield Analytics(settings=settings, pool=pool, consumer=consumer)
        finally:
            runtime.stopping.set()
            for result in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(result, BaseException):
                    log.error("analytics task ended with %r", result)
    finally:
        await pool.close()


async def _publish_metrics(
    settings: SlaSettings, pool: asyncpg.Pool, stopping: asyncio.Event, clock: Callable[[], datetime]
) -> None:
    async def refresh() -> None:
        async with pool.acquire() as conn:
            await metrics.refresh(conn, today=clock().astimezone(CST).date())

    await repeat_until_stopped(stopping, settings.analytics_metrics_interval_s, refresh, what="scorecard metrics")


async def reset_offsets(settings: SlaSettings) -> dict[TopicPartition, int]:
    """Point the analytics consumer group at the start of its topics (the group must be empty:
    sla stopped). Returns the offsets committed."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=settings.consumer_group(), enable_auto_commit=False
    )
    await consumer.start()
    try:
        # Every partition the registry creates (shared.topics.ensure_topics).
        partitions = [TopicPartition(settings.topic(t.name), p) for t in TOPICS for p in range(t.partitions)]
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in starts.items()})
        return starts
    finally:
        await consumer.stop()
