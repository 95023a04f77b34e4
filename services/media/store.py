"""Media's SQL."""

from uuid import UUID

import asyncpg


async def insert_object(conn: asyncpg.Connection, *, sha256: str, content_type: str, size_bytes: int, object_key: str) -> bool:
    """Record a stored object; False if the same content was already stored."""
    status = await conn.execute(
        "INSERT INTO media_objects (sha256, content_type, size_bytes, object_key) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (sha256) DO NOTHING",
        sha256, content_type, size_bytes, object_key,
    )
    return status == "INSERT 0 1"


async def insert_media(conn: asyncpg.Connection, *, media_id: UUID, sha256: str, filename: str | None) -> None:
    await conn.execute("INSERT INTO media (media_id, sha256, filename) VALUES ($1, $2, $3)", media_id, sha256, filename)


async def find_media(conn: asyncpg.Connection, *, media_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT m.*, o.content_type, o.size_bytes, o.object_key FROM media m JOIN media_objects o USING (sha256) "
        "WHERE m.media_id = $1",
        media_id,
    )


async def link_to_case(conn: asyncpg.Connection, *, media_ids: list[UUID], report_id: UUID, case_id: UUID) -> None:
    await conn.execute(
        "UPDATE media SET report_id = $2, case_id = $3 WHERE media_id = ANY($1::uuid[])", media_ids, report_id, case_id
    )
