"""Kafka producer, outbox relay and consumer runner.

Consuming: parse → in one Postgres transaction mark the event processed and apply the handler
(which writes state and outgoing events to the outbox) → commit the offset. A poison message or
one whose handler keeps failing goes to the dead-letter topic with the reason, then is committed.
A transient failure (the database or broker unavailable, a lost connection, a serialization
failure or deadlock) is not poison: the event is retried with capped exponential backoff for as
long as it takes, consumption waits, and readiness and a metric say so — a database blip never
turns an accepted report into a dead letter.
Producing: only the outbox relay produces domain events; the consumer produces dead letters
directly, because a dead letter is needed precisely when the handler's database work failed.
"""

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared import logs, metrics, tracing
from shared.db import is_transient, mark_processed, schema_name
from shared.events import Event, MalformedEvent, UnknownEventType, parse_event, utcnow
from shared.loops import repeat_until_stopped
from shared.settings import ServiceSettings
from shared.topics import DEAD_LETTERS, Topic

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Event], Awaitable[None]]
# Why a message is dead-lettered (the `reason` label of gridlink_dead_letters_total).
DEAD_LETTER_REASONS = ("malformed", "handler_failed")

# How long handled events' offsets may wait to be committed while more keep coming (ConsumerRunner.run).
COMMIT_INTERVAL_S = 0.5


def create_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **settings.kafka_client_options(),
        acks="all",
        enable_idempotence=True,
        # No lingering: the relay hands a whole batch to the producer before awaiting any of it, so
        # batches form anyway, and waiting 5 ms more would add to every event's latency.
        linger_ms=0,
    )


async def relay_outbox_once(
    settings: ServiceSettings, db: asyncpg.Pool | asyncpg.Connection, producer: AIOKafkaProducer
) -> int:
    """Publish one batch of outbox rows in order and delete them; returns how many. `db` is the
    pool, or a connection of the relay's own (its schema first on the search path)."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as pooled:
            return await relay_outbox_once(settings, pooled, producer)
    conn = db
    async with conn.transaction():
        # One statement (it runs for every commit of the service): one relay per service schema
        # at a time keeps events with the same key in order, so a row is taken only under the
        # schema's lock. The rows are deleted before they are published, in a transaction that
        # commits only after Kafka acknowledged them all: a failed send rolls the delete back, and
        # a crash between the acknowledgement and the commit republishes the batch, whose
        # duplicates consumers drop.
        rows = await conn.fetch(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE pg_try_advisory_xact_lock(hashtext($1)) "
            "ORDER BY id LIMIT 500) RETURNING id, topic, key, value, request_id, "
            "extract(epoch FROM clock_timestamp() - created_at)::float8 AS age",
            f"outbox:{schema_name(settings)}",
        )
        # The oldest event this pass published (none: nothing waits, or another replica relays).
        metrics.OUTBOX_OLDEST_AGE.labels(settings.service_name).set(max((r["age"] for r in rows), default=0))
        if not rows:
            return 0
        rows.sort(key=lambda r: r["id"])
        pending = [
            await producer.send(
                r["topic"], r["value"], key=r["key"].encode(), headers=_headers(settings, r["topic"], r["request_id"])
            )
            for r in rows
        ]
        await asyncio.gather(*pending)
    for r in rows:
        metrics.OUTBOX_PUBLISHED.labels(settings.service_name, r["topic"]).inc()
    return len(rows)


def _connection_lost(exc: Exception) -> bool:
    """Whether a failure says the PostgreSQL connection itself is gone (not Kafka, not the query)."""
    if isinstance(exc, (OSError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError)):
        return True
    return isinstance(exc, asyncpg.PostgresError) and is_transient(exc)


def _headers(settings: ServiceSettings, topic: str, origin: str | None) -> list[tuple[str, bytes]]:
    """The request id header, and the traceparent one when the row has a trace (shared/tracing.py)."""
    request_id, traceparent = tracing.split_origin(origin)
    headers = [(logs.KAFKA_HEADER, request_id.encode())] if request_id else []
    if traceparent:
        headers += tracing.publish_headers(settings.service_name, topic, traceparent)
    return headers


def _request_id_of(record: ConsumerRecord) -> str | None:
    for name, value in record.headers or ():
        if name == logs.KAFKA_HEADER and value:
            return value.decode(errors="replace")
    return None


class OutboxRelay:
    """Publishes the service's outbox as soon as a transaction writing to it commits: the outbox's
    trigger NOTIFYs `outbox_<schema>` (shared/migrations/003) and this relay LISTENs on its own
    connection, and relays on that same connection: it never waits for a pooled connection behind
    the requests and events that keep the pool busy under load (nor pays the pool's reset on
    every return). It also polls every `outbox_fallback_poll_s`, which covers a notification lost
    while that connection was down (it is reopened on the next step)."""

    def __init__(self, settings: ServiceSettings, pool: asyncpg.Pool, producer: AIOKafkaProducer):
        self.settings, self.pool, self.producer = settings, pool, producer
        self.channel = f"outbox_{schema_name(settings)}"
        self.wake = asyncio.Event()
        self.listener: asyncpg.Connection | None = None

    def _notified(self, *_: object) -> None:
        self.wake.set()

    async def listen(self) -> None:
        """(Re)open the listening connection if it is not open."""
        if self.listener is not None and not self.listener.is_closed():
            return
        self.listener = None
        conn = await asyncpg.connect(
            self.settings.database_url,
            timeout=5,
            server_settings={
                "search_path": schema_name(self.settings),
                "application_name": f"{self.settings.service_name} outbox listener",
            },
        )
        await conn.add_listener(self.channel, self._notified)
        conn.add_termination_listener(self._notified)  # reopen at once, not at the next poll
        self.listener = conn
        self.wake.set()  # what committed while nobody listened is relayed by one more pass

    async def step(self) -> int:
        try:
            await self.listen()
        except Exception as exc:  # the database is away: the relay below fails too, and is retried
            log.warning("outbox relay cannot listen for %s yet: %r", self.channel, exc)
        own = self.listener if self.listener is not None and not self.listener.is_closed() else None
        try:
            return await relay_outbox_once(self.settings, own or self.pool, self.producer)
        except Exception as exc:
            if own is not None and _connection_lost(exc):
                # Killed under the relay (its termination may not be noticed yet): the next step
                # reconnects at once instead of at the fallback poll.
                own.terminate()
                self.listener = None
                self.wake.set()
            raise

    async def run(self, stopping: asyncio.Event) -> None:
        """Relay until stopping."""
        try:
            await repeat_until_stopped(
                stopping, self.settings.outbox_fallback_poll_s, self.step, what="outbox relay", wake=self.wake
            )
        finally:
            if self.listener is not None:
                await self.listener.close()


class ConsumerRunner:
    """Consumes topics as the service's consumer group and applies handlers exactly once in effect."""

    def __init__(
        self,
        *,
        settings: ServiceSettings,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        topics: list[Topic],
        handlers: dict[str, Handler],
    ):
        self.settings, self.pool, self.producer, self.handlers = settings, pool, producer, handlers
        self.topic_names = [settings.topic(t.name) for t in topics]
        self.consumer: AIOKafkaConsumer | None = None
        self.running = False
        # While a transient failure is being waited out: what it is (readiness shows it).
        self.waiting_on: str | None = None
        self._lag_reported: set[TopicPartition] = set()
        # Each handled type's series exists from the start, at 0: a series born at its first event
        # shows Prometheus no increase, so the dashboard's handler p95 would miss the first events.
        for event_type in handlers:
            metrics.HANDLER_DURATION.labels(settings.service_name, event_type, "ok")
        for topic in self.topic_names:  # likewise the dead letters (their alert fires on an increase)
            for reason in DEAD_LETTER_REASONS:
                metrics.DEAD_LETTERS.labels(settings.service_name, topic, reason)
        self.dead_letters = 0  # published by this runner

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            *self.topic_names,
            **self.settings.kafka_client_options(),
            group_id=self.settings.consumer_group(),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await self.consumer.start()
        self.running = True

    async def run(self, stopping: asyncio.Event) -> None:
        """Poll, handle, commit. The effect of an event is exactly once through processed_events,
        not through the offset: offsets are committed at most every COMMIT_INTERVAL_S while events
        keep coming (each commit is a round trip to the group coordinator and a write to
        __consumer_offsets, which at one event per poll doubled the consumer's waits), at once
        when the topics go quiet or after a dead letter (so a redelivery never dead-letters twice),
        and when stopping. A crash or rebalance redelivers at most that interval's events, and
        they are skipped as processed."""
        assert self.consumer is not None
        done: dict[TopicPartition, int] = {}
        committed_at, dead_letters = time.monotonic(), self.dead_letters
        try:
            while not stopping.is_set():
                batches = await self.consumer.getmany(timeout_ms=200, max_records=200)
                for tp, records in batches.items():
                    for record in records:
                        if not await self.handle_record(record, stopping):
                            break  # stopping while waiting: the record is redelivered after the restart
                        done[tp] = record.offset + 1
                due = not batches or self.dead_letters != dead_letters
                if done and (due or time.monotonic() - committed_at >= COMMIT_INTERVAL_S):
                    await self.consumer.commit(done)
                    done, committed_at, dead_letters = {}, time.monotonic(), self.dead_letters
                    await self._update_lag()
                elif not batches:
                    await self._update_lag()
        finally:
            self.running = False
            try:
                if done:
                    await self.consumer.commit(done)
            except Exception as exc:  # the broker is away: these events are redelivered and skipped
                log.warning("could not commit offsets %s when stopping: %r", done, exc)
            await self.consumer.stop()

    async def handle_record(self, record: ConsumerRecord, stopping: asyncio.Event | None = None) -> bool:
        """Apply one record; False only when the service stopped while a transient failure was
        being waited out (nothing was applied, the offset must not be committed)."""
        service = self.settings.service_name
        try:
            event = parse_event(record.value)
        except UnknownEventType as exc:
            log.warning("skipping unknown event type %s at %s/%s", exc, record.topic, record.offset)
            metrics.EVENTS_SKIPPED.labels(service, str(exc)).inc()
            return True
        except MalformedEvent as exc:
            await self.dead_letter(record, "malformed", str(exc))
            return True
        handler = self.handlers.get(event.type)
        if handler is None:
            return True  # another service's event on a shared topic
        case = getattr(event.payload, "case_id", None)
        context = logs.bound(
            request=_request_id_of(record),
            correlation=str(event.correlation_id) if event.correlation_id else None,
            case=str(case) if case else None,
        )
        # The ids in every log line, and the request id in the events the handler causes; while
        # tracing, a consumer span whose parent is the publisher's (the traceparent header).
        with context, tracing.consuming(self.settings.service_name, record.headers, record.topic, event.type):
            return await self._apply(record, event, handler, stopping)

    async def _apply(
        self, record: ConsumerRecord, event: Event, handler: Handler, stopping: asyncio.Event | None
    ) -> bool:
        service = self.settings.service_name
        started = time.perf_counter()
        attempt, wait = 0, self.settings.consumer_retry_backoff_s
        while True:
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    fresh = await mark_processed(conn, event.event_id)
                    if fresh:
                        await handler(conn, event)
                outcome = "ok" if fresh else "duplicate"
                metrics.HANDLER_DURATION.labels(service, event.type, outcome).observe(time.perf_counter() - started)
                self._waiting(None)
                return True
            except Exception as exc:
                if is_transient(exc):
                    log.warning(
                        "waiting out %r while handling %s %s (next try in %.1fs)", exc, event.type, event.event_id, wait
                    )
                    metrics.TRANSIENT_FAILURES.labels(service, event.type).inc()
                    self._waiting(f"{type(exc).__name__}: {exc}")
                    if stopping is not None and stopping.is_set():
                        return False
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, self.settings.consumer_retry_max_backoff_s)
                    continue
                attempt += 1
                log.warning("handler for %s %s failed (attempt %d): %r", event.type, event.event_id, attempt, exc)
                if attempt >= self.settings.consumer_max_attempts:
                    self._waiting(None)
                    metrics.HANDLER_DURATION.labels(service, event.type, "dead_letter").observe(
                        time.perf_counter() - started
                    )
                    await self.dead_letter(record, "handler_failed", repr(exc))
                    return True
                await asyncio.sleep(self.settings.consumer_retry_backoff_s * attempt)

    def _waiting(self, reason: str | None) -> None:
        self.waiting_on = reason
        metrics.CONSUMER_WAITING.labels(self.settings.service_name).set(1 if reason else 0)

    async def dead_letter(self, record: ConsumerRecord, reason: str, error: str) -> None:
        """Publish the original message and the error to the dead-letter topic (awaiting the ack)."""
        log.error("dead-lettering %s/%s@%s: %s: %s", record.topic, record.partition, record.offset, reason, error)
        letter = {
            "original_topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key.decode(errors="replace") if record.key else None,
            "value_base64": base64.b64encode(record.value or b"").decode(),
            "reason": reason,
            "error": error[:4000],
            "consumer_group": self.settings.consumer_group(),
            "failed_at": utcnow().isoformat(),
        }
        await self.producer.send_and_wait(
            self.settings.topic(DEAD_LETTERS.name), json.dumps(letter, ensure_ascii=False).encode(), key=record.key
        )
        metrics.DEAD_LETTERS.labels(self.settings.service_name, record.topic, reason).inc()
        self.dead_letters += 1

    async def _update_lag(self) -> None:
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        # Partitions a rebalance gave to another replica: that replica reports them now, and a
        # frozen figure here would be summed with its live one.
        for tp in self._lag_reported - assigned:
            metrics.CONSUMER_LAG.remove(self.settings.service_name, tp.topic, str(tp.partition))
        self._lag_reported = set(assigned)
        for tp in assigned:
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            position = await self.consumer.position(tp)
            metrics.CONSUMER_LAG.labels(self.settings.service_name, tp.topic, str(tp.partition)).set(
                max(highwater - position, 0)
            )
