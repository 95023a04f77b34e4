"""SLA's SQL."""

from datetime import datetime
from uuid import UUID

import asyncpg


async def start_timer(
    conn: asyncpg.Connection, *, case_id: UUID, stage: str, department_code: str, started_at: datetime, due_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO timers (case_id, stage, department_code, started_at, due_at) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (case_id, stage) DO NOTHING",
        case_id, stage, department_code, started_at, due_at,
    )


async def claim_due_timers(conn: asyncpg.Connection, *, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Mark up to `limit` due timers fired and return them; rows another replica holds are skipped."""
    return await conn.fetch(
        """
        UPDATE timers SET fired_at = $1
        WHERE id IN (
            SELECT id FROM timers
            WHERE due_at <= $1 AND fired_at IS NULL AND stopped_at IS NULL
            ORDER BY due_at LIMIT $2
            FOR UPDATE SKIP LOCKED)
        RETURNING *
        """,
        now, limit,
    )


async def list_timers(conn: asyncpg.Connection, *, case_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM timers WHERE case_id = $1 ORDER BY id", case_id)
