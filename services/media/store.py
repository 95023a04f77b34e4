"""Media's SQL."""

from datetime import datetime
from uuid import UUID

import asyncpg

from services.media.domain import signed64
from shared.db import insert

_MEDIA_COLUMNS = (
    "m.media_id, m.sha256, m.filename, m.report_id, m.case_id, m.role, m.attached_at, m.flags, m.distance_m, "
    "m.device_lat, m.device_lng, m.device_accuracy_m, m.attached_by, "
    "m.upload_id, m.uploaded_at, o.content_type, o.kind, o.size_bytes, o.object_key, o.width, o.height, "
    "o.captured_at, o.latitude, o.longitude, o.public_key, o.thumbnail_key, o.retain_until, o.purged_at, o.dhash"
)


async def insert_object(
    conn: asyncpg.Connection,
    *,
    sha256: str,
    content_type: str,
    kind: str,
    size_bytes: int,
    object_key: str,
    width: int | None,
    height: int | None,
    captured_at: datetime | None,
    latitude: float | None,
    longitude: float | None,
    public_key: str | None,
    thumbnail_key: str | None,
    retain_until: datetime | None,
    dhash: int | None = None,
) -> bool:
    """Record a stored object; False if the same content was already stored (its retention is
    then extended, and a purged object counts as stored again, since it was just written again)."""
    return await conn.fetchval(
        """
        INSERT INTO media_objects (sha256, content_type, kind, size_bytes, object_key, width, height, captured_at,
                                   latitude, longitude, public_key, thumbnail_key, retain_until, dhash)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        ON CONFLICT (sha256) DO UPDATE SET
            retain_until = CASE WHEN media_objects.retain_until IS NULL OR EXCLUDED.retain_until IS NULL THEN NULL
                                ELSE greatest(media_objects.retain_until, EXCLUDED.retain_until) END,
            public_key = EXCLUDED.public_key,
            thumbnail_key = EXCLUDED.thumbnail_key,
            purged_at = NULL,
            -- Rows stored before these columns existed learn them from the second upload.
            kind = coalesce(media_objects.kind, EXCLUDED.kind),
            width = coalesce(media_objects.width, EXCLUDED.width),
            height = coalesce(media_objects.height, EXCLUDED.height),
            captured_at = coalesce(media_objects.captured_at, EXCLUDED.captured_at),
            latitude = coalesce(media_objects.latitude, EXCLUDED.latitude),
            longitude = coalesce(media_objects.longitude, EXCLUDED.longitude),
            dhash = coalesce(media_objects.dhash, EXCLUDED.dhash)
        RETURNING xmax = 0
        """,
        sha256,
        content_type,
        kind,
        size_bytes,
        object_key,
        width,
        height,
        captured_at,
        latitude,
        longitude,
        public_key,
        thumbnail_key,
        retain_until,
        None if dhash is None else signed64(dhash),
    )


async def lock_object(conn: asyncpg.Connection, *, sha256: str) -> asyncpg.Record | None:
    """The object's row, locked until the transaction ends (the retention purge skips it meanwhile)."""
    return await conn.fetchrow("SELECT * FROM media_objects WHERE sha256 = $1 FOR UPDATE", sha256)


async def insert_media(
    conn: asyncpg.Connection, *, media_id: UUID, sha256: str, filename: str | None, upload_id: UUID | None = None
) -> None:
    await conn.execute(
        "INSERT INTO media (media_id, sha256, filename, upload_id) VALUES ($1, $2, $3, $4)",
        media_id,
        sha256,
        filename,
        upload_id,
    )


async def find_media(conn: asyncpg.Connection, *, media_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_MEDIA_COLUMNS} FROM media m JOIN media_objects o USING (sha256) WHERE m.media_id = $1", media_id
    )


async def case_media(conn: asyncpg.Connection, *, case_id: UUID, role: str | None = None) -> list[asyncpg.Record]:
    """A case's media, oldest attachment first."""
    return await conn.fetch(
        f"SELECT {_MEDIA_COLUMNS} FROM media m JOIN media_objects o USING (sha256) "
        "WHERE m.case_id = $1 AND ($2::text IS NULL OR m.role = $2) ORDER BY m.attached_at, m.media_id",
        case_id,
        role,
    )


async def attach(
    conn: asyncpg.Connection,
    *,
    media_id: UUID,
    case_id: UUID,
    role: str,
    attached_at: datetime,
    report_id: UUID | None = None,
    device: tuple[float, float, float | None] | None = None,
    attached_by: str | None = None,
) -> bool:
    """Attach media not yet attached to any case; False if it already was (or does not exist).
    `device`: where the attaching phone was (lat, lng, accuracy in metres; WGS-84)."""
    lat, lng, accuracy = device or (None, None, None)
    status = await conn.execute(
        "UPDATE media SET case_id = $2, role = $3, attached_at = $4, report_id = coalesce($5, report_id), "
        "device_lat = $6, device_lng = $7, device_accuracy_m = $8, attached_by = $9 "
        "WHERE media_id = $1 AND case_id IS NULL",
        media_id,
        case_id,
        role,
        attached_at,
        report_id,
        lat,
        lng,
        accuracy,
        attached_by,
    )
    return status == "UPDATE 1"


async def reused_photo(
    conn: asyncpg.Connection, *, media_id: UUID, case_id: UUID, role: str, dhash: int, max_distance: int
) -> UUID | None:
    """A photo nearly the same (Hamming distance of the dHashes at most `max_distance`) as this one,
    attached to another case, or, for an "after" photo, this case's own "before"; None if none is.
    `dhash` is as stored (signed bigint); XOR of the two, as 64 bits, counts the bits that differ."""
    return await conn.fetchval(
        """
        SELECT m.media_id FROM media m JOIN media_objects o USING (sha256)
        WHERE m.media_id <> $1 AND m.case_id IS NOT NULL AND o.dhash IS NOT NULL
          AND (m.case_id <> $2 OR ($3 = 'after' AND m.role = 'before'))
          AND length(replace(((o.dhash # $4)::bit(64))::text, '0', '')) <= $5
        LIMIT 1
        """,
        media_id,
        case_id,
        role,
        dhash,
        max_distance,
    )


async def set_flags(conn: asyncpg.Connection, *, media_id: UUID, flags: list[str], distance_m: float | None) -> None:
    await conn.execute("UPDATE media SET flags = $2, distance_m = $3 WHERE media_id = $1", media_id, flags, distance_m)


async def save_report_facts(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    report_id: UUID,
    lat: float | None,
    lng: float | None,
    submitted_at: datetime,
    jurisdiction_code: str,
    grid_code: str | None = None,
) -> None:
    """Where and when the case was reported; case events that came first keep their jurisdiction."""
    await conn.execute(
        "INSERT INTO cases (case_id, report_id, lat, lng, submitted_at, jurisdiction_code, grid_code) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (case_id) DO UPDATE SET report_id = EXCLUDED.report_id, lat = EXCLUDED.lat, lng = EXCLUDED.lng, "
        "submitted_at = EXCLUDED.submitted_at, grid_code = coalesce(cases.grid_code, EXCLUDED.grid_code) "
        "WHERE cases.submitted_at IS NULL",
        case_id,
        report_id,
        lat,
        lng,
        submitted_at,
        jurisdiction_code,
        grid_code,
    )


async def save_case_facts(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    report_id: UUID,
    jurisdiction_code: str,
    department_code: str | None,
    co_department_codes: list[str],
    seq: int,
    grid_code: str | None = None,
) -> None:
    """Whose the case is now, from a case event; an older event (lower seq) never overrides a newer."""
    await conn.execute(
        "INSERT INTO cases (case_id, report_id, jurisdiction_code, department_code, co_department_codes, seq, "
        "grid_code) VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (case_id) DO UPDATE SET jurisdiction_code = EXCLUDED.jurisdiction_code, "
        "department_code = EXCLUDED.department_code, co_department_codes = EXCLUDED.co_department_codes, "
        "seq = EXCLUDED.seq, grid_code = coalesce(EXCLUDED.grid_code, cases.grid_code) "
        "WHERE cases.seq <= EXCLUDED.seq",
        case_id,
        report_id,
        jurisdiction_code,
        department_code,
        co_department_codes,
        seq,
        grid_code,
    )


async def find_case(conn: asyncpg.Connection, *, case_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)


async def insert_upload(
    conn: asyncpg.Connection,
    *,
    upload_id: UUID,
    staging_key: str,
    filename: str | None,
    content_type: str,
    size_bytes: int,
    sha256: str,
    created_at: datetime,
    expires_at: datetime,
    complete_by: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO uploads (upload_id, staging_key, filename, content_type, size_bytes, sha256, created_at, "
        "expires_at, complete_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        upload_id,
        staging_key,
        filename,
        content_type,
        size_bytes,
        sha256,
        created_at,
        expires_at,
        complete_by,
    )


async def find_upload(conn: asyncpg.Connection, *, upload_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM uploads WHERE upload_id = $1", upload_id)


async def claim_upload(conn: asyncpg.Connection, *, upload_id: UUID, now: datetime) -> asyncpg.Record | None:
    """Move a pending upload to 'verifying', so two completions cannot both verify it."""
    return await conn.fetchrow(
        "UPDATE uploads SET status = 'verifying' WHERE upload_id = $1 AND status = 'pending' AND complete_by > $2 "
        "RETURNING *",
        upload_id,
        now,
    )


async def release_upload(conn: asyncpg.Connection, *, upload_id: UUID) -> None:
    """Back to pending: the object is not there yet, the client may still PUT it."""
    await conn.execute("UPDATE uploads SET status = 'pending' WHERE upload_id = $1 AND status = 'verifying'", upload_id)


async def finish_upload(
    conn: asyncpg.Connection,
    *,
    upload_id: UUID,
    status: str,
    now: datetime,
    reason: str | None = None,
    media_id: UUID | None = None,
) -> None:
    await conn.execute(
        "UPDATE uploads SET status = $2, reason = $3, media_id = $4, finished_at = $5 WHERE upload_id = $1",
        upload_id,
        status,
        reason,
        media_id,
        now,
    )


async def expire_uploads(conn: asyncpg.Connection, *, now: datetime, limit: int = 100) -> list[asyncpg.Record]:
    """Mark uploads that were never completed in time as expired; returns them."""
    return await conn.fetch(
        """
        UPDATE uploads SET status = 'expired', reason = 'upload-expired', finished_at = $1
        WHERE upload_id IN (
            SELECT upload_id FROM uploads WHERE status IN ('pending', 'verifying') AND complete_by <= $1
            ORDER BY complete_by LIMIT $2 FOR UPDATE SKIP LOCKED)
        RETURNING *
        """,
        now,
        limit,
    )


async def due_for_purge(conn: asyncpg.Connection, *, now: datetime, limit: int = 100) -> list[asyncpg.Record]:
    """Objects past their retention, locked until the caller's transaction ends."""
    return await conn.fetch(
        "SELECT * FROM media_objects WHERE purged_at IS NULL AND retain_until <= $1 "
        "ORDER BY retain_until LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )


async def mark_purged(conn: asyncpg.Connection, *, sha256: str, now: datetime) -> list[str]:
    """Mark an object purged and forget the comparisons showing it; returns their object keys."""
    await conn.execute(
        "UPDATE media_objects SET purged_at = $2, public_key = NULL, thumbnail_key = NULL WHERE sha256 = $1",
        sha256,
        now,
    )
    rows = await conn.fetch(
        "DELETE FROM comparisons c USING media m WHERE m.sha256 = $1 "
        "AND m.media_id IN (c.before_media_id, c.after_media_id) RETURNING c.object_key",
        sha256,
    )
    return [r["object_key"] for r in rows]


async def save_comparison(
    conn: asyncpg.Connection,
    *,
    object_key: str,
    case_id: UUID,
    before_media_id: UUID,
    after_media_id: UUID,
    generated_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO comparisons (object_key, case_id, before_media_id, after_media_id, generated_at) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (object_key) DO NOTHING",
        object_key,
        case_id,
        before_media_id,
        after_media_id,
        generated_at,
    )


async def find_comparison(conn: asyncpg.Connection, *, object_key: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM comparisons WHERE object_key = $1", object_key)


async def latest_comparison(conn: asyncpg.Connection, *, case_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM comparisons WHERE case_id = $1 ORDER BY generated_at DESC LIMIT 1", case_id
    )


async def park_incoming(conn: asyncpg.Connection, *, photos: list[dict]) -> None:
    """Remember photos a report brought along, once each."""
    for photo in photos:
        await insert(conn, "incoming_photos", photo, on_conflict="(object_key) DO NOTHING")


async def claim_incoming(
    conn: asyncpg.Connection, *, now: datetime, lease_s: float, limit: int
) -> list[asyncpg.Record]:
    """Take up to `limit` waiting photos for `lease_s`; a taker that died leaves them to the next."""
    return await conn.fetch(
        """
        UPDATE incoming_photos SET status = 'taking', taking_until = $1 + make_interval(secs => $2),
                                   attempts = attempts + 1
        WHERE object_key IN (
            SELECT object_key FROM incoming_photos
            WHERE status = 'pending' OR (status = 'taking' AND taking_until < $1)
            ORDER BY submitted_at LIMIT $3 FOR UPDATE SKIP LOCKED)
        RETURNING *
        """,
        now,
        lease_s,
        limit,
    )


async def finish_incoming(
    conn: asyncpg.Connection, *, object_key: str, status: str, media_id: UUID | None = None, reason: str | None = None
) -> None:
    await conn.execute(
        "UPDATE incoming_photos SET status = $2, media_id = $3, reason = $4, taking_until = NULL WHERE object_key = $1",
        object_key,
        status,
        media_id,
        reason,
    )
