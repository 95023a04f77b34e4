"""SLA's event handlers (case events start, stop, pause and resume timers) and the ticker that
turns due timers into sla.warning / sla.breached events."""

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, uuid5

import asyncpg

from services.sla import metrics, store
from services.sla.calendar import CST
from services.sla.domain import Policy, TimerState, next_step, notice_due
from services.sla.settings import SlaSettings
from shared.case_actions import ARBITRATE, CASE_TRANSITION_TYPES, Clocks, clocks_of
from shared.db import enqueue_many
from shared.events import (
    CaseDispatched,
    CaseFacts,
    CaseTransitioned,
    Event,
    SlaBreached,
    SlaNoticeIssued,
    SlaWarning,
    new_event,
)
from shared.loops import repeat_until_stopped

# Why a timer waits (timers.paused_by): each kind is resumed only by its own answer, so a return
# overruled does not end a pending extension's pause, nor an approved extension a return's hold.
PAUSED = "pause"
HELD = "hold"


async def _score_stopped(conn: asyncpg.Connection, stopped: list[asyncpg.Record], now: datetime) -> None:
    """A finished stage counts for its department: in time, or late if it had breached."""
    for timer in stopped:
        late = timer["fired_at"] is not None
        await store.count_score(
            conn,
            department_code=timer["department_code"],
            day=now.astimezone(CST).date(),
            on_time=0 if late else 1,
            late=1 if late else 0,
        )


def make_handlers(*, settings: SlaSettings, policy: Policy):
    """Handlers bound to the SLA policy."""

    async def start(conn, case: CaseFacts, *, at: datetime, stage: str, department_code: str) -> None:
        level = case.level or "county"
        deadline = policy.deadline(
            start=at, priority=case.priority, level=level, stage=stage, department_code=department_code
        )
        await store.start_timer(
            conn,
            case_id=case.case_id,
            stage=stage,
            department_code=department_code,
            round=case.seq or 1,
            priority=case.priority,
            level=level,
            category=case.category,
            jurisdiction_code=case.jurisdiction_code,
            owner_code=case.owner_code,
            case_no=case.case_no,
            clock=deadline.clock,
            minutes=deadline.minutes,
            started_at=at,
            due_at=deadline.due_at,
            warn_at=deadline.warn_at,
            next_fire_at=deadline.warn_at,
        )
        # The series its warning and breach will count on exist from its start, at 0: one born at its
        # first event shows Prometheus no increase (the 催办 and 督办 panels would miss it).
        metrics.WARNINGS.labels(department_code, case.category or "")
        metrics.BREACHES.labels(department_code, case.category or "")

    async def on_case_dispatched(conn: asyncpg.Connection, event: Event) -> None:
        case = event.payload_as(CaseDispatched)
        at, reason = case.dispatched_at, f"dispatched:{case.action}"
        # A returned case sent elsewhere (the return upheld, or reclassified) is the dispatcher's ruling.
        ruled = await store.stop_timers(conn, case_id=case.case_id, now=at, reason=reason, stage=ARBITRATE)
        await _score_stopped(conn, ruled, at)
        # Transfer, reopen or escalation: the earlier round's clocks end, a new round starts.
        await store.stop_timers(conn, case_id=case.case_id, now=at, reason=reason)
        for department in (case.department_code, *case.co_department_codes):
            await start(conn, case, at=at, stage="acknowledge", department_code=department)
        if case.co_department_codes:
            await start(conn, case, at=at, stage="joint_plan", department_code=case.department_code)
        await start(conn, case, at=at, stage="resolve", department_code=case.department_code)

    async def pause(conn, timer: asyncpg.Record, *, now: datetime, paused_by: str) -> None:
        left = policy.clock(timer["clock"]).between(now, timer["due_at"])
        await store.pause_timer(
            conn, timer_id=timer["id"], now=now, elapsed_minutes=timer["minutes"] - left, paused_by=paused_by
        )

    async def resume(conn, timer: asyncpg.Record, *, now: datetime, extra: float = 0.0) -> None:
        """Go on from `now` with the time the timer had left (and `extra` minutes more)."""
        deadline = policy.schedule(
            clock=timer["clock"],
            minutes=timer["minutes"] + extra,
            start=now,
            elapsed=timer["elapsed_minutes"],
            stage=timer["stage"],
        )
        await store.resume_timer(
            conn,
            timer_id=timer["id"],
            minutes=deadline.minutes,
            due_at=deadline.due_at,
            warn_at=deadline.warn_at,
            next_fire_at=deadline.warn_at,
        )

    async def on_case_step(conn: asyncpg.Connection, event: Event) -> None:
        """Apply the step's clock effect, as its action spec declares it (shared.case_actions)."""
        step = event.payload_as(CaseTransitioned)
        clocks, now, reason = clocks_of(event.type), step.at, event.type.removeprefix("case.")
        if clocks is None:
            return
        if clocks.completes:  # the stage is done: it counts for the department, in time or late
            department = step.detail.get("department_code") if clocks.completes == "acknowledge" else None
            stopped = await store.stop_timers(
                conn, case_id=step.case_id, now=now, reason=reason, stage=clocks.completes, department_code=department
            )
            await _score_stopped(conn, stopped, now)
        if clocks.stop_all or step.status in clocks.stop_all_if:  # nobody owes anything more until…
            await store.stop_timers(conn, case_id=step.case_id, now=now, reason=reason)
        if clocks.pause:  # the resolution clock waits (extension request, question to the reporter)
            for timer in await store.running_timers(conn, case_id=step.case_id, stage="resolve"):
                if timer["paused_at"] is None:
                    await pause(conn, timer, now=now, paused_by=PAUSED)
        if clocks.resume:  # …and goes on, longer by an approved extension's minutes
            extra = float(step.detail.get("minutes") or 0)
            for timer in await store.running_timers(conn, case_id=step.case_id, stage="resolve"):
                if timer["paused_by"] == PAUSED:
                    await resume(conn, timer, now=now, extra=extra)
        if clocks.hold:  # 退回: every clock still running waits for the ruling where it is
            for timer in await store.running_timers(conn, case_id=step.case_id):
                if timer["paused_at"] is None:
                    await pause(conn, timer, now=now, paused_by=HELD)
        if clocks.release:  # overruled: the held clocks go on with the time they had left
            for timer in await store.running_timers(conn, case_id=step.case_id):
                if timer["paused_by"] == HELD:
                    await resume(conn, timer, now=now)
        if clocks.opens:  # the dispatch centre's own deadline (仲裁), reminded and escalated like any
            await start(conn, step, at=now, stage=clocks.opens, department_code=policy.document.dispatcher_department)

    handlers = {"case.dispatched": on_case_dispatched}
    handlers.update(
        {event_type: on_case_step for event_type in CASE_TRANSITION_TYPES if clocks_of(event_type) != Clocks()}
    )
    return handlers


def _event(settings: SlaSettings, timer: asyncpg.Record, kind: str, now: datetime):
    common = dict(
        case_id=timer["case_id"],
        stage=timer["stage"],
        department_code=timer["department_code"],
        started_at=timer["started_at"],
        due_at=timer["due_at"],
        category=timer["category"],
        priority=timer["priority"],
        jurisdiction_code=timer["jurisdiction_code"],
        owner_code=timer["owner_code"],
        level=timer["level"],
        case_no=timer["case_no"],
        fired_at=now,
    )
    payload = SlaWarning(**common, reminder=timer["reminders"] + 1) if kind == "warning" else SlaBreached(**common)
    return new_event(
        payload,
        producer=settings.service_name,
        jurisdiction_code=timer["jurisdiction_code"] or settings.jurisdiction_code,
        key=str(timer["case_id"]),
    )


async def fire_due_timers(
    *, settings: SlaSettings, pool: asyncpg.Pool, policy: Policy, now: datetime, batch: int | None = None
) -> int:
    """Handle every timer needing attention at `now`, in batches; returns how many events it emitted.

    Rows are claimed with FOR UPDATE SKIP LOCKED and updated with their events in one
    transaction, so with several replicas (or after a crash) each warning and breach happens once.
    """
    batch = batch or settings.sla_fire_batch
    emitted = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            timers = await store.claim_due_timers(conn, now=now, limit=batch)
            updates, events = [], []
            fired: Counter[tuple[str, str, str]] = Counter()  # (kind, department, category) → count
            for timer in timers:
                state = TimerState(
                    priority=timer["priority"],
                    due_at=timer["due_at"],
                    warn_at=timer["warn_at"],
                    reminders=timer["reminders"],
                    last_reminder_at=timer["last_reminder_at"],
                    breached=timer["fired_at"] is not None,
                )
                step = next_step(timer=state, now=now, policy=policy)
                reminders, last_reminder, breached_at = timer["reminders"], timer["last_reminder_at"], timer["fired_at"]
                if step.kind == "warning":
                    reminders, last_reminder = reminders + 1, now
                elif step.kind == "breach":
                    breached_at = now
                if step.kind:
                    events.append(_event(settings, timer, step.kind, now))
                    fired[(step.kind, timer["department_code"], timer["category"] or "")] += 1
                updates.append((timer["id"], step.next_fire_at, reminders, last_reminder, breached_at))
            await store.save_fired(conn, updates)
            await enqueue_many(conn, settings, events)
            day = now.astimezone(CST).date()
            for (kind, department, _), n in fired.items():
                await store.count_score(
                    conn, department_code=department, day=day, **{"warnings" if kind == "warning" else "breaches": n}
                )
            for department in sorted({d for (kind, d, _) in fired if kind == "breach"}):
                notice = await issue_notice(conn, settings=settings, policy=policy, department_code=department, now=now)
                if notice is not None:
                    await enqueue_many(conn, settings, [notice])
        # Counted once committed, so a rolled-back batch is not counted.
        for timer in timers:
            metrics.LATENESS.observe(max((now - timer["next_fire_at"]).total_seconds(), 0.0))
        for (kind, department, category), n in fired.items():
            (metrics.WARNINGS if kind == "warning" else metrics.BREACHES).labels(department, category).inc(n)
        emitted += len(events)
        if len(timers) < batch:
            return emitted


NOTICE_NS = uuid5(NAMESPACE_URL, "https://gridlink.example.org/sla-notices")


async def issue_notice(
    conn: asyncpg.Connection, *, settings: SlaSettings, policy: Policy, department_code: str, now: datetime
) -> Event | None:
    """通报: the department's breaches within the policy's window, once they reach its count and it
    had no notice within the window; recorded with its event in the caller's transaction."""
    notices = policy.document.notices
    if notices is None:
        return None
    await store.lock_department_notices(conn, department_code=department_code)
    since = now - timedelta(days=notices.days)
    breaches = await store.breaches_since(conn, department_code=department_code, since=since)
    last = await store.last_notice_at(conn, department_code=department_code)
    if not notice_due(breaches_in_window=len(breaches), last_notice_at=last, now=now, policy=policy.document):
        return None
    case_ids = list(dict.fromkeys(b["case_id"] for b in breaches))
    case_nos = list(dict.fromkeys(b["case_no"] for b in breaches if b["case_no"]))
    notice_id = uuid5(NOTICE_NS, f"{department_code}|{now.isoformat()}")
    await store.insert_notice(
        conn,
        notice_id=notice_id,
        department_code=department_code,
        issued_at=now,
        since=since,
        breaches=len(breaches),
        case_ids=case_ids,
    )
    metrics.NOTICES.labels(department_code).inc()
    payload = SlaNoticeIssued(
        notice_id=notice_id,
        department_code=department_code,
        breaches=len(breaches),
        days=notices.days,
        since=since,
        issued_at=now,
        case_ids=case_ids,
        case_nos=case_nos,
    )
    return new_event(
        payload, producer=settings.service_name, jurisdiction_code=settings.jurisdiction_code, key=department_code
    )


def make_ticker(clock: Callable[[], datetime], policy: Policy):
    """A background loop handling due timers every `sla_tick_interval_s`, and the pending gauge."""

    async def ticker(runtime) -> None:
        settings, ticks = runtime.settings, 0

        async def tick() -> None:
            nonlocal ticks
            # Several claimers overlap database round trips with building events; SKIP LOCKED
            # keeps them off each other's rows.
            now = clock()
            await asyncio.gather(
                *(
                    fire_due_timers(settings=settings, pool=runtime.pool, policy=policy, now=now)
                    for _ in range(settings.sla_fire_workers)
                )
            )
            if ticks % 20 == 0:
                async with runtime.pool.acquire() as conn:
                    for row in await store.pending_by_stage(conn):
                        metrics.PENDING.labels(row["stage"]).set(row["n"])
            ticks += 1

        await repeat_until_stopped(runtime.stopping, settings.sla_tick_interval_s, tick, what="firing timers")

    return ticker
