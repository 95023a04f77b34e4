"""Intake's SQL."""

from datetime import datetime
from uuid import UUID

import asyncpg


async def insert_report(conn: asyncpg.Connection, **report) -> None:
    """Insert one report row (keyword arguments are the column values)."""
    columns = ", ".join(report)
    placeholders = ", ".join(f"${i}" for i in range(1, len(report) + 1))
    await conn.execute(f"INSERT INTO reports ({columns}) VALUES ({placeholders})", *report.values())


async def find_report(conn: asyncpg.Connection, *, report_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM reports WHERE report_id = $1", report_id)


async def find_report_by_idempotency_key(conn: asyncpg.Connection, *, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM reports WHERE idempotency_key = $1", key)


async def update_case_status(
    conn: asyncpg.Connection, *, case_id: UUID, status: str, department_code: str | None, at: datetime
) -> None:
    await conn.execute(
        "UPDATE reports SET status = $2, department_code = coalesce($3, department_code), updated_at = $4 "
        "WHERE case_id = $1",
        case_id, status, department_code, at,
    )
