"""Dispatch's SQL."""

from datetime import datetime
from uuid import UUID

import asyncpg


async def insert_case(conn: asyncpg.Connection, **case) -> bool:
    """Insert a case; False if a case with this id already exists."""
    columns = ", ".join(case)
    placeholders = ", ".join(f"${i}" for i in range(1, len(case) + 1))
    status = await conn.execute(
        f"INSERT INTO cases ({columns}) VALUES ({placeholders}) ON CONFLICT (case_id) DO NOTHING", *case.values()
    )
    return status == "INSERT 0 1"


async def append_timeline(
    conn: asyncpg.Connection, *, case_id: UUID, at: datetime, action: str, status: str, actor: str, detail: dict
) -> None:
    await conn.execute(
        "INSERT INTO case_timeline (case_id, at, action, status, actor, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        case_id, at, action, status, actor, detail,
    )


async def find_case(conn: asyncpg.Connection, *, case_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)


async def list_timeline(conn: asyncpg.Connection, *, case_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM case_timeline WHERE case_id = $1 ORDER BY id", case_id)
