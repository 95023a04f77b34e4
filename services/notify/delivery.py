"""The delivery loop: claim due notifications within each robot's budget, send them concurrently,
record each outcome with its event.

A batch is claimed in one short transaction (rows become 'sending' with a lease), sent with no
database connection held (many robots in parallel over one pooled HTTP client), and its outcomes
are written in a second transaction. A crash between the two leaves leased rows that are sent
again after the lease: delivery is at least once, and a row is never claimed by two senders.
"""

import asyncio
import logging
import time
from datetime import timedelta

import asyncpg

from services.notify import metrics, store
from services.notify.channels import DeliveryError, Senders, as_delivery_error
from services.notify.domain import ROBOT_WINDOW_S, backoff_seconds, plan_robot_sends
from services.notify.settings import NotifySettings
from shared.db import enqueue
from shared.events import Event, NotificationFailed, NotificationSent, new_event, utcnow
from shared.loops import repeat_until_stopped

log = logging.getLogger(__name__)


async def deliver_batch(*, settings: NotifySettings, pool: asyncpg.Pool, senders: Senders) -> int:
    """Send one batch of due notifications; returns how many were attempted (0: nothing due now)."""
    now = utcnow()
    async with pool.acquire() as conn, conn.transaction():
        rows = await store.claim_due(conn, now=now, limit=settings.notify_delivery_batch)
        if not rows:
            return 0
        robot_rows = [(r["notification_id"], r["target"]) for r in rows if r["channel"] == "wecom_robot"]
        windows = await store.lock_robot_windows(conn, sorted({key for _, key in robot_rows}))
        plan = plan_robot_sends(robot_rows, windows, now=now, per_minute=settings.notify_robot_per_minute)
        picked = set(plan.picked) | {r["notification_id"] for r in rows if r["channel"] != "wecom_robot"}
        await store.save_robot_windows(conn, plan.windows)
        await store.defer(conn, plan.deferred)
        await store.mark_sending(
            conn, notification_ids=list(picked), lease_until=now + timedelta(seconds=settings.notify_lease_s)
        )
    if plan.deferred:
        metrics.RATE_DEFERRED.inc(len(plan.deferred))
    batch = [r for r in rows if r["notification_id"] in picked]
    if not batch:
        return 0
    limit = asyncio.Semaphore(settings.notify_delivery_concurrency)

    async def attempt(row) -> DeliveryError | None:
        async with limit:
            started = time.perf_counter()
            try:
                await senders.send(channel=row["channel"], target=row["target"], body=row["body"])
                return None
            except Exception as exc:  # every failure is recorded on its row; none may stop the batch
                return as_delivery_error(exc)
            finally:
                metrics.SEND_DURATION.labels(row["channel"]).observe(time.perf_counter() - started)

    outcomes = await asyncio.gather(*(attempt(r) for r in batch))
    await record_outcomes(settings=settings, pool=pool, rows=batch, outcomes=outcomes, claimed_at=now)
    return len(batch)


async def record_outcomes(*, settings: NotifySettings, pool: asyncpg.Pool, rows, outcomes, claimed_at) -> None:
    """Write what the channels answered: sent, retry later, or failed for good (event + dead letter)."""
    now = utcnow()
    sent_ids = [r["notification_id"] for r, error in zip(rows, outcomes, strict=True) if error is None]
    async with pool.acquire() as conn, conn.transaction():
        # Slots were reserved at claim time; WeCom counted the sends when they arrived, up to a batch
        # later. Dating them by this (later) answer time keeps our window from reopening early.
        await store.settle_robot_windows(
            conn,
            robot_keys=sorted({r["target"] for r in rows if r["channel"] == "wecom_robot"}),
            reserved_at=claimed_at,
            sent_at=now,
        )
        for sent in await store.mark_sent(conn, notification_ids=sent_ids, at=now):
            await enqueue(
                conn,
                settings,
                _event(
                    settings,
                    sent,
                    NotificationSent(
                        notification_id=sent["notification_id"],
                        case_id=sent["case_id"],
                        channel=sent["channel"],
                        target=sent["target"],
                        template=sent["template"],
                    ),
                ),
            )
            _count(sent, "sent")
        throttled = set()
        for row, error in zip(rows, outcomes, strict=True):
            if error is None:
                continue
            attempts = row["attempts"] + 1
            give_up = not error.retryable or attempts >= settings.notify_max_attempts
            retry_at = (
                None if give_up else now + timedelta(seconds=backoff_seconds(attempts, settings.notify_retry_base_s))
            )
            if error.code == "45009" and row["channel"] == "wecom_robot":
                throttled.add(row["target"])
                retry_at = retry_at and max(retry_at, now + timedelta(seconds=ROBOT_WINDOW_S))
            log.warning("notification %s attempt %d failed: %s", row["notification_id"], attempts, error)
            await store.mark_attempt_failed(
                conn, notification_id=row["notification_id"], error=str(error), retry_at=retry_at
            )
            if give_up:
                await enqueue(
                    conn,
                    settings,
                    _event(
                        settings,
                        row,
                        NotificationFailed(
                            notification_id=row["notification_id"],
                            case_id=row["case_id"],
                            channel=row["channel"],
                            target=row["target"],
                            template=row["template"],
                            reason=str(error),
                        ),
                    ),
                )
                await store.enqueue_dead_letter(conn, settings, row=row, error=str(error), at=now)
            _count(row, "failed" if give_up else "retry")
        if throttled:  # WeCom holds a throttled robot for a while: sending sooner only extends it
            await store.block_robots(conn, robot_keys=sorted(throttled), until=now + timedelta(seconds=ROBOT_WINDOW_S))


def _count(row, outcome: str) -> None:
    metrics.DELIVERIES.labels(row["channel"], row["template"], outcome).inc()
    if row["broadcast_id"] is not None and outcome != "retry":
        metrics.BROADCAST_GROUPS.labels(outcome).inc()


def _event(settings: NotifySettings, row, payload) -> Event:
    return new_event(
        payload,
        producer=settings.service_name,
        jurisdiction_code=row["jurisdiction_code"] or settings.jurisdiction_code,
        key=str(payload.case_id or payload.notification_id),
    )


QUEUE_MEASURE_INTERVAL_S = 5.0


async def measure_queue(pool: asyncpg.Pool) -> None:
    """Set the queue gauge (every combination, so a drained state reads 0, not its last value)."""
    async with pool.acquire() as conn:
        rows = await store.queue_depth(conn, now=utcnow())
    counts = {(r["state"], r["kind"]): r["n"] for r in rows}
    for state in ("due", "held", "sending"):
        for kind in ("case", "broadcast"):
            metrics.QUEUE.labels(state, kind).set(counts.get((state, kind), 0))


def make_delivery_loop(senders_factory):
    """A background loop sending until the service stops; `senders_factory(settings)` builds the channels."""

    async def delivery_loop(runtime) -> None:
        senders = senders_factory(runtime.settings)
        measured_at = 0.0

        async def step() -> int:
            nonlocal measured_at
            if time.monotonic() - measured_at >= QUEUE_MEASURE_INTERVAL_S:
                measured_at = time.monotonic()
                await measure_queue(runtime.pool)
            return await deliver_batch(settings=runtime.settings, pool=runtime.pool, senders=senders)

        await repeat_until_stopped(
            runtime.stopping, runtime.settings.outbox_poll_interval_s, step, what="notification delivery"
        )

    return delivery_loop
