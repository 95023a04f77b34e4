"""Runs what every service needs around its own code: pool, migrations, topics, producer,
outbox relay, consumer and background loops, started and stopped in the right order."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer

from shared.db import apply_migrations, check_migrations, create_pool, schema_name
from shared.kafka import ConsumerRunner, Handler, OutboxRelay, create_producer, relay_outbox_once
from shared.settings import ServiceSettings
from shared.topics import Topic, ensure_topics

log = logging.getLogger(__name__)

S = TypeVar("S", bound=ServiceSettings)


@dataclass
class Runtime(Generic[S]):
    settings: S  # the service's own settings class (Runtime[MediaSettings]), so its fields are typed
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    stopping: asyncio.Event
    consumer: ConsumerRunner | None = None
    tasks: dict[str, asyncio.Task] = field(default_factory=dict)
    # Extra readiness probes (e.g. the object store): name → coroutine that raises when not ready.
    checks: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)
    # Conditions worth an operator's attention that do not make the service unready (e.g. sla's
    # calendar lacking next year): name → function giving a sentence, or None when all is well.
    notes: dict[str, Callable[[], str | None]] = field(default_factory=dict)

    def noted(self) -> dict[str, str]:
        """The notes that currently say something."""
        return {name: text for name, note in self.notes.items() if (text := note())}

    def stopped_tasks(self) -> list[str]:
        """Background tasks (relay, consumer, loops) that ended while the service is not stopping:
        the process no longer does its work and must be restarted (liveness fails)."""
        if self.stopping.is_set():
            return []
        return [name for name, task in self.tasks.items() if task.done()]

    async def readiness(self) -> dict[str, str]:
        """Name → 'ok' or the reason it is not ready."""
        checks: dict[str, str] = {}
        try:
            async with self.pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1")
            checks["postgres"] = "ok"
        except Exception as exc:
            checks["postgres"] = f"unavailable: {exc!r}"
        for name, task in self.tasks.items():
            checks[name] = "ok" if not task.done() else "stopped"
        for name, probe in self.checks.items():
            try:
                await asyncio.wait_for(probe(), 2)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unavailable: {exc!r}"
        if self.consumer is not None:
            if not self.consumer.running:
                checks["consumer"] = "not running"
            elif self.consumer.waiting_on:
                checks["consumer"] = f"waiting out a transient failure: {self.consumer.waiting_on}"
            else:
                checks["consumer"] = "ok"
        return checks


# A coroutine function, not any awaitable: each loop runs as its own task (asyncio.create_task).
BackgroundLoop = Callable[[Runtime], Coroutine[Any, Any, None]]


@asynccontextmanager
async def running_service(
    settings: S,
    *,
    service_dir: Path,
    topics: Sequence[Topic] = (),
    handlers: dict[str, Handler] | None = None,
    loops: dict[str, BackgroundLoop] | None = None,
    checks: dict[str, Callable[[], Awaitable[None]]] | None = None,
    notes: dict[str, Callable[[], str | None]] | None = None,
    setup: Callable[[asyncpg.Pool], Awaitable[None]] | None = None,
) -> AsyncIterator[Runtime[S]]:
    """Start the service's infrastructure; on exit, stop consuming first and relay last."""
    pool = await create_pool(settings)
    if settings.database_migrate_on_start:
        await apply_migrations(pool, schema=schema_name(settings), service_dir=service_dir)
    else:
        try:
            await check_migrations(pool, schema=schema_name(settings), service_dir=service_dir)
        except BaseException:
            await pool.close()
            raise
    if setup:  # data the handlers need before the first event arrives
        await setup(pool)
    if settings.kafka_create_topics:
        await ensure_topics(settings)
    producer = create_producer(settings)
    await producer.start()
    runtime = Runtime(
        settings=settings,
        pool=pool,
        producer=producer,
        stopping=asyncio.Event(),
        checks=checks or {},
        notes=notes or {},
    )
    runtime.tasks["outbox_relay"] = asyncio.create_task(OutboxRelay(settings, pool, producer).run(runtime.stopping))
    if handlers:
        runtime.consumer = ConsumerRunner(
            settings=settings, pool=pool, producer=producer, topics=list(topics), handlers=handlers
        )
        await runtime.consumer.start()
        runtime.tasks["consumer"] = asyncio.create_task(runtime.consumer.run(runtime.stopping))
    for name, loop in (loops or {}).items():
        runtime.tasks[name] = asyncio.create_task(loop(runtime))
    # What start-up built (models, maps, the taxonomy, imported modules) lives as long as the
    # process: out of the collector's sight, a full collection no longer walks it, which paused
    # every request and event for 100–300 ms at a time under load.
    gc.collect()
    gc.freeze()
    try:
        yield runtime
    finally:
        # Graceful shutdown (SIGTERM via uvicorn): loops finish their current batch, the relay
        # gets a last chance to publish what is committed, then connections close.
        runtime.stopping.set()
        results = await asyncio.gather(*runtime.tasks.values(), return_exceptions=True)
        for name, result in zip(runtime.tasks, results, strict=True):
            if isinstance(result, BaseException):
                log.error("%s ended with %r", name, result)
        try:  # what the consumer committed after the relay's last poll
            while await relay_outbox_once(settings, pool, producer):
                pass
        except Exception:
            log.exception("final outbox relay failed; the rows stay for the next start")
        await producer.stop()
        await pool.close()
        gc.unfreeze()  # a process that starts services again (tests) lets the stopped one's objects go
