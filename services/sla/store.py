"""SLA's SQL."""

from datetime import date, datetime
from uuid import UUID

import asyncpg

from shared.db import insert


async def start_timer(conn: asyncpg.Connection, **timer) -> bool:
    """Insert a running timer; False if this (case, stage, department, round) already has one."""
    return await insert(conn, "timers", timer, on_conflict="(case_id, stage, department_code, round) DO NOTHING")


async def stop_timers(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    now: datetime,
    reason: str,
    stage: str | None = None,
    department_code: str | None = None,
) -> list[asyncpg.Record]:
    """Stop a case's running timers (optionally one stage / department); returns what was stopped."""
    return await conn.fetch(
        """
        UPDATE timers SET stopped_at = $2, stop_reason = $3, next_fire_at = NULL
        WHERE case_id = $1 AND stopped_at IS NULL
          AND ($4::text IS NULL OR stage = $4) AND ($5::text IS NULL OR department_code = $5)
        RETURNING *
        """,
        case_id,
        now,
        reason,
        stage,
        department_code,
    )


async def running_timers(conn: asyncpg.Connection, *, case_id: UUID, stage: str | None = None) -> list[asyncpg.Record]:
    """A case's timers not stopped (running or paused), of one stage or all."""
    return await conn.fetch(
        "SELECT * FROM timers WHERE case_id = $1 AND ($2::text IS NULL OR stage = $2) AND stopped_at IS NULL"
        " ORDER BY id FOR UPDATE",
        case_id,
        stage,
    )


async def pause_timer(
    conn: asyncpg.Connection, *, timer_id: int, now: datetime, elapsed_minutes: float, paused_by: str
) -> None:
    await conn.execute(
        "UPDATE timers SET paused_at = $2, elapsed_minutes = $3, next_fire_at = NULL, paused_by = $4 WHERE id = $1",
        timer_id,
        now,
        elapsed_minutes,
        paused_by,
    )


async def resume_timer(
    conn: asyncpg.Connection,
    *,
    timer_id: int,
    minutes: float,
    due_at: datetime,
    warn_at: datetime,
    next_fire_at: datetime,
) -> None:
    await conn.execute(
        "UPDATE timers SET paused_at = NULL, paused_by = NULL, minutes = $2, due_at = $3, warn_at = $4,"
        " next_fire_at = $5 WHERE id = $1",
        timer_id,
        minutes,
        due_at,
        warn_at,
        next_fire_at,
    )


async def claim_due_timers(conn: asyncpg.Connection, *, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Lock up to `limit` timers needing attention at `now`; rows another replica holds are skipped."""
    return await conn.fetch(
        """
        SELECT * FROM timers
        WHERE next_fire_at <= $1 AND stopped_at IS NULL AND paused_at IS NULL
        ORDER BY next_fire_at LIMIT $2
        FOR UPDATE SKIP LOCKED
        """,
        now,
        limit,
    )


async def save_fired(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    """(id, next_fire_at, reminders, last_reminder_at, fired_at) for each timer the ticker handled."""
    if not rows:
        return
    # One statement for the whole batch: catching up after an outage handles thousands a second.
    await conn.execute(
        """
        UPDATE timers SET next_fire_at = u.next_fire_at, reminders = u.reminders,
                          last_reminder_at = u.last_reminder_at, fired_at = u.fired_at
        FROM unnest($1::bigint[], $2::timestamptz[], $3::int[], $4::timestamptz[], $5::timestamptz[])
             AS u(id, next_fire_at, reminders, last_reminder_at, fired_at)
        WHERE timers.id = u.id
        """,
        *map(list, zip(*rows, strict=True)),
    )


async def count_score(conn: asyncpg.Connection, *, department_code: str, day: date, **increments: int) -> None:
    """Add to a department's counters for a day (on_time, late, warnings, breaches)."""
    columns = list(increments)
    await conn.execute(
        f"INSERT INTO department_scores (department_code, day, {', '.join(columns)})"
        f" VALUES ($1, $2, {', '.join(f'${i}' for i in range(3, len(columns) + 3))})"
        f" ON CONFLICT (department_code, day) DO UPDATE SET "
        + ", ".join(f"{c} = department_scores.{c} + EXCLUDED.{c}" for c in columns),
        department_code,
        day,
        *increments.values(),
    )


async def scores(conn: asyncpg.Connection, *, since: date, until: date) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT department_code, sum(on_time) AS on_time, sum(late) AS late, sum(warnings) AS warnings,"
        " sum(breaches) AS breaches FROM department_scores WHERE day >= $1 AND day <= $2"
        " GROUP BY department_code ORDER BY department_code",
        since,
        until,
    )


async def list_timers(conn: asyncpg.Connection, *, case_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM timers WHERE case_id = $1 ORDER BY id", case_id)


async def pending_by_stage(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT stage, count(*) AS n FROM timers WHERE stopped_at IS NULL AND fired_at IS NULL GROUP BY stage"
    )


# --- the official calendar as admins entered it ---------------------------------------------------


async def calendar_years(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM calendar_years ORDER BY year")


async def save_calendar_year(
    conn: asyncpg.Connection, *, year: int, document: dict, at: datetime, actor: str, actor_name: str | None
) -> dict | None:
    """Store a year (replacing an earlier entry) and record the change; returns the year as it was
    before (None: not entered through the API before). Locked, so two admins' changes are audited
    in the order they were applied."""
    before = await conn.fetchrow(
        "SELECT source, holidays, workdays FROM calendar_years WHERE year = $1 FOR UPDATE", year
    )
    await conn.execute(
        "INSERT INTO calendar_years (year, source, holidays, workdays, updated_at, updated_by) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (year) DO UPDATE SET source = EXCLUDED.source, "
        "holidays = EXCLUDED.holidays, workdays = EXCLUDED.workdays, updated_at = EXCLUDED.updated_at, "
        "updated_by = EXCLUDED.updated_by",
        year,
        document["source"],
        document["holidays"],
        document["workdays"],
        at,
        actor,
    )
    previous = dict(before) if before else None
    await conn.execute(
        "INSERT INTO calendar_changes (year, changed_at, actor, actor_name, before, after) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        year,
        at,
        actor,
        actor_name,
        previous,
        document,
    )
    return previous


async def calendar_changes(conn: asyncpg.Connection, *, year: int | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM calendar_changes WHERE $1::int IS NULL OR year = $1 ORDER BY id DESC LIMIT $2", year, limit
    )


# --- 通报 (repeated breaches) -----------------------------------------------------------------


async def lock_department_notices(conn: asyncpg.Connection, *, department_code: str) -> None:
    """Serialise notice decisions for one department (several fire workers run at once)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"sla-notice:{department_code}")


async def breaches_since(conn: asyncpg.Connection, *, department_code: str, since: datetime) -> list[asyncpg.Record]:
    """The department's missed deadlines (breached timers) since `since`, oldest first."""
    return await conn.fetch(
        "SELECT case_id, case_no, fired_at FROM timers WHERE department_code = $1 AND fired_at >= $2 "
        "ORDER BY fired_at, id",
        department_code,
        since,
    )


async def last_notice_at(conn: asyncpg.Connection, *, department_code: str) -> datetime | None:
    return await conn.fetchval("SELECT max(issued_at) FROM notices WHERE department_code = $1", department_code)


async def insert_notice(conn: asyncpg.Connection, **notice) -> None:
    await conn.execute(
        "INSERT INTO notices (notice_id, department_code, issued_at, since, breaches, case_ids) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        notice["notice_id"],
        notice["department_code"],
        notice["issued_at"],
        notice["since"],
        notice["breaches"],
        notice["case_ids"],
    )
