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
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

import asyncpg

from services.notify import metrics, store
from services.notify.channels import DeliveryError, Senders, as_delivery_error
from services.notify.domain import CONFIRMED_LATER, backoff_seconds
from services.notify.messages import TEXT_MAX_BYTES
from services.notify.robot_budget import ROBOT_WINDOW_S, digest_message, plan_robot_sends
from services.notify.settings import NotifySettings
from shared.db import enqueue
from shared.events import Event, NotificationFailed, NotificationSent, new_event, utcnow
from shared.loops import repeat_until_stopped

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Send:
    """One message to send: a notification's own, or a digest carrying several 派单 of one group."""

    rows: list
    body: dict
    digest_id: UUID | None = None


def _mentions(rows, field: str = "mentioned_mobile_list") -> list[str]:
    """Everyone the merged messages @-mentioned (by mobile, or by user id with "mentioned_list"),
    once each, in order."""
    mentioned: dict[str, None] = {}
    for row in rows:
        mentioned.update(dict.fromkeys(row["body"].get("text", {}).get(field, [])))
    return list(mentioned)


async def deliver_batch(*, settings: NotifySettings, pool: asyncpg.Pool, senders: Senders) -> int:
    """Send one batch of due notifications; returns how many were attempted (0: nothing due now)."""
    now = utcnow()
    async with pool.acquire() as conn, conn.transaction():
        rows = await store.claim_due(conn, now=now, limit=settings.notify_delivery_batch)
        if not rows:
            return 0
        if settings.notify_digest:
            rows = rows + await store.claim_queued_dispatches(
                conn,
                robot_keys=sorted({r["target"] for r in rows if r["channel"] == "wecom_robot" and r["digest_line"]}),
                claimed=[r["notification_id"] for r in rows],
                limit=settings.notify_digest_queue_limit,
            )
        robot_rows = [(r["notification_id"], r["target"]) for r in rows if r["channel"] == "wecom_robot"]
        windows = await store.lock_robot_windows(conn, sorted({key for _, key in robot_rows}))
        mergeable = [r for r in rows if settings.notify_digest and r["channel"] == "wecom_robot" and r["digest_line"]]
        plan = plan_robot_sends(
            robot_rows,
            windows,
            now=now,
            per_minute=settings.notify_robot_per_minute,
            digest_lines={r["notification_id"]: r["digest_line"] for r in mergeable},
            queued_at={r["notification_id"]: r["created_at"] for r in mergeable},
            digest_reserve=settings.notify_digest_reserve,
            digest_max_wait_s=settings.notify_digest_max_wait_s,
            digest_max_bytes=TEXT_MAX_BYTES,
        )
        picked = set(plan.picked) | {r["notification_id"] for r in rows if r["channel"] != "wecom_robot"}
        sends = [Send([r], r["body"]) for r in rows if r["notification_id"] in picked]
        by_id = {r["notification_id"]: r for r in rows}
        digests = []
        for robot, ids in plan.digests:
            merged = [by_id[n] for n in ids]
            body = digest_message(
                [r["digest_line"] for r in merged],
                mentioned_mobiles=_mentions(merged),
                mentioned_users=_mentions(merged, "mentioned_list"),
            )
            digest_id = uuid4()
            sends.append(Send(merged, body, digest_id))
            digests.append((digest_id, robot, body, ids))
        await store.save_robot_windows(conn, plan.windows)
        await store.defer(conn, plan.deferred)
        await store.mark_sending(
            conn,
            notification_ids=[r["notification_id"] for s in sends for r in s.rows],
            lease_until=now + timedelta(seconds=settings.notify_lease_s),
        )
        await store.start_digests(conn, digests, at=now)
    if plan.deferred:
        metrics.RATE_DEFERRED.inc(len(plan.deferred))
    if not sends:
        return 0
    limit = asyncio.Semaphore(settings.notify_delivery_concurrency)

    refs: dict[UUID, str] = {}

    async def attempt(send: Send) -> DeliveryError | None:
        row = send.rows[0]
        async with limit:
            started = time.perf_counter()
            try:
                ref = await senders.send(channel=row["channel"], target=row["target"], body=send.body)
                if ref is not None:
                    refs[row["notification_id"]] = ref
                return None
            except Exception as exc:  # every failure is recorded on its rows; none may stop the batch
                return as_delivery_error(exc)
            finally:
                metrics.SEND_DURATION.labels(row["channel"]).observe(time.perf_counter() - started)

    outcomes = await asyncio.gather(*(attempt(s) for s in sends))
    for send, error in zip(sends, outcomes, strict=True):
        if send.digest_id is not None:
            metrics.DIGESTS.labels("sent" if error is None else "failed").inc()
            metrics.DIGESTED.labels("sent" if error is None else "failed").inc(len(send.rows))
    await record_outcomes(
        settings=settings,
        pool=pool,
        rows=[row for send in sends for row in send.rows],
        outcomes=[error for send, error in zip(sends, outcomes, strict=True) for _ in send.rows],
        claimed_at=now,
        digest_ids=[s.digest_id for s, error in zip(sends, outcomes, strict=True) if s.digest_id and error is None],
        receipt_refs=refs,
    )
    return len(sends)


async def record_outcomes(
    *,
    settings: NotifySettings,
    pool: asyncpg.Pool,
    rows,
    outcomes,
    claimed_at,
    digest_ids: list[UUID] | None = None,
    receipt_refs: dict[UUID, str] | None = None,
) -> None:
    """Write what the channels answered: sent (confirmed, or awaiting the channel's receipt), retry
    later, or failed for good — then the next channel of its fallback takes over, or, with none, an
    event and a dead letter. A digest's outcome is each of its notifications' outcome."""
    now = utcnow()
    sent_ids = [r["notification_id"] for r, error in zip(rows, outcomes, strict=True) if error is None]
    async with pool.acquire() as conn, conn.transaction():
        await store.digests_sent(conn, digest_ids=digest_ids or [], at=now)
        # Slots were reserved at claim time; WeCom counted the sends when they arrived, up to a batch
        # later. Dating them by this (later) answer time keeps our window from reopening early.
        await store.settle_robot_windows(
            conn,
            robot_keys=sorted({r["target"] for r in rows if r["channel"] == "wecom_robot"}),
            reserved_at=claimed_at,
            sent_at=now,
        )
        sent_rows = await store.mark_sent(
            conn,
            notification_ids=sent_ids,
            at=now,
            receipt_refs=receipt_refs,
            confirm_later=CONFIRMED_LATER,
            receipt_due_at=now + timedelta(seconds=settings.notify_receipt_timeout_s),
        )
        for sent in sent_rows:
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
                if row["fallback"]:  # the next channel takes over (once, however often this runs)
                    await store.queue_fallback(conn, row=row, at=now)
                    metrics.FALLBACKS.labels(row["channel"], "failed").inc()
                else:  # nothing takes over: an operator must see it
                    await store.enqueue_dead_letter(conn, settings, row=row, error=str(error), at=now)
            _count(row, "failed" if give_up else "retry")
        if throttled:  # WeCom holds a throttled robot for a while: sending sooner only extends it
            await store.block_robots(conn, robot_keys=sorted(throttled), until=now + timedelta(seconds=ROBOT_WINDOW_S))


async def check_receipts(*, pool: asyncpg.Pool, now=None) -> int:
    """Messages their channel did not confirm in time: the next channel takes over. Returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await store.claim_unconfirmed(conn, now=now or utcnow())
        for row in rows:
            log.warning("notification %s on %s not confirmed in time", row["notification_id"], row["channel"])
            if await store.queue_fallback(conn, row=row, at=now or utcnow()):
                metrics.FALLBACKS.labels(row["channel"], "unconfirmed").inc()
    return len(rows)


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
            unconfirmed = await check_receipts(pool=runtime.pool)
            return unconfirmed + await deliver_batch(settings=runtime.settings, pool=runtime.pool, senders=senders)

        await repeat_until_stopped(
            runtime.stopping, runtime.settings.outbox_poll_interval_s, step, what="notification delivery"
        )

    return delivery_loop
