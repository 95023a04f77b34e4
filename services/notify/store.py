"""Notify's SQL."""

from datetime import datetime
from uuid import UUID

import asyncpg


async def insert_notification(conn: asyncpg.Connection, **notification) -> None:
    """Queue a notification; a second one for the same event, channel and target is ignored."""
    columns = ", ".join(notification)
    placeholders = ", ".join(f"${i}" for i in range(1, len(notification) + 1))
    await conn.execute(
        f"INSERT INTO notifications ({columns}) VALUES ({placeholders}) "
        "ON CONFLICT (source_event_id, channel, target) DO NOTHING",
        *notification.values(),
    )


async def claim_due_notification(conn: asyncpg.Connection, *, now: datetime) -> asyncpg.Record | None:
    """Lock one due pending notification for this transaction (other senders skip it)."""
    return await conn.fetchrow(
        "SELECT * FROM notifications WHERE status = 'pending' AND next_attempt_at <= $1 "
        "ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        now,
    )


async def mark_sent(conn: asyncpg.Connection, *, notification_id: UUID, at: datetime) -> None:
    await conn.execute(
        "UPDATE notifications SET status = 'sent', attempts = attempts + 1, sent_at = $2, last_error = NULL "
        "WHERE notification_id = $1",
        notification_id, at,
    )


async def mark_attempt_failed(
    conn: asyncpg.Connection, *, notification_id: UUID, error: str, retry_at: datetime | None
) -> None:
    """Record a failed attempt: retry at `retry_at`, or give up when it is None."""
    await conn.execute(
        "UPDATE notifications SET attempts = attempts + 1, last_error = $2, "
        "status = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'pending' END, "
        "next_attempt_at = coalesce($3, next_attempt_at) WHERE notification_id = $1",
        notification_id, error, retry_at,
    )


async def list_notifications(conn: asyncpg.Connection, *, case_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM notifications WHERE case_id = $1 ORDER BY created_at", case_id)
