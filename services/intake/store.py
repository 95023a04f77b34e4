"""Intake's SQL."""

from datetime import datetime
from uuid import UUID

import asyncpg


async def insert_report(conn: asyncpg.Connection, **report) -> None:
    """Insert one report row (keyword arguments are the column values)."""
    columns = ", ".join(report)
    placeholders = ", ".join(f"${i}" for i in range(1, len(report) + 1))
    await conn.execute(f"INSERT INTO reports ({columns}) VALUES ({placeholders})", *report.values())


async def find_report(conn: asyncpg.Connection, *, report_id: UUID, for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""  # two people placing one report: one after the other
    return await conn.fetchrow(f"SELECT * FROM reports WHERE report_id = $1{lock}", report_id)


async def find_report_by_idempotency_key(conn: asyncpg.Connection, *, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM reports WHERE idempotency_key = $1", key)


async def update_case_status(
    conn: asyncpg.Connection, *, case_id: UUID, status: str, department_code: str | None, at: datetime
) -> None:
    await conn.execute(
        "UPDATE reports SET status = $2, department_code = coalesce($3, department_code), updated_at = $4 "
        "WHERE case_id = $1",
        case_id,
        status,
        department_code,
        at,
    )


async def next_case_seq(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT nextval('case_no_seq')")


async def lock_duplicates_check(conn: asyncpg.Connection, *, keys: list[str]) -> None:
    """Serialise duplicate checks that could meet (see domain.duplicate_lock_keys), so two reports
    of one problem can't both open a case; keys are locked in order, so two checks cannot deadlock."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest($1::text[]) AS k", [f"intake-dup:{k}" for k in keys]
    )


async def find_open_cases_near(
    conn: asyncpg.Connection, *, category: str, since: datetime, lat: float, lng: float, radius_deg: float
) -> list[asyncpg.Record]:
    """Cases of a category opened since `since` whose first report is inside a small box around the point."""
    return await conn.fetch(
        "SELECT case_id, case_no, lat, lng, status FROM reports "
        "WHERE NOT attached_to_case AND category = $1 AND submitted_at >= $2 "
        "AND lat BETWEEN $3::float8 - $5::float8 AND $3::float8 + $5::float8 "
        "AND lng BETWEEN $4::float8 - $5::float8 * 1.2 AND $4::float8 + $5::float8 * 1.2",
        category,
        since,
        lat,
        lng,
        radius_deg,
    )


async def find_first_report_of_case(conn: asyncpg.Connection, *, case_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM reports WHERE case_id = $1 AND NOT attached_to_case", case_id)


async def find_reports_of_reporter(
    conn: asyncpg.Connection, *, case_no: str, phone_hash: bytes
) -> list[asyncpg.Record]:
    """The reports one reporter (by phone hash) made about one case; nobody else's."""
    return await conn.fetch(
        "SELECT * FROM reports WHERE case_id = (SELECT case_id FROM reports WHERE case_no = $1 "
        "AND NOT attached_to_case) AND reporter_phone_hash = $2 ORDER BY submitted_at",
        case_no,
        phone_hash,
    )


async def find_report_by_token(conn: asyncpg.Connection, *, token: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM reports WHERE open311_token = $1", token)


async def list_reports(
    conn: asyncpg.Connection,
    *,
    ids: list[UUID] | None,
    category: str | None,
    statuses: list[str] | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    channel: str,
) -> list[asyncpg.Record]:
    """Reports of one channel filtered the way Open311's GET requests.json filters them, newest first."""
    return await conn.fetch(
        "SELECT * FROM reports WHERE channel = $7 AND ($1::uuid[] IS NULL OR report_id = ANY($1)) "
        "AND ($2::text IS NULL OR category = $2) AND ($3::text[] IS NULL OR status = ANY($3)) "
        "AND ($4::timestamptz IS NULL OR submitted_at >= $4) AND ($5::timestamptz IS NULL OR submitted_at <= $5) "
        "ORDER BY submitted_at DESC LIMIT $6",
        ids,
        category,
        statuses,
        start,
        end,
        limit,
        channel,
    )


async def awaiting_rating(conn: asyncpg.Connection, *, reporter_ref: str) -> asyncpg.Record | None:
    """The sender's newest report whose case is 办结 and waits for their 回访 answer, if any."""
    return await conn.fetchrow(
        "SELECT report_id, case_id, channel, village_code, town_code FROM reports"
        " WHERE reporter_ref = $1 AND status = 'resolved' ORDER BY submitted_at DESC LIMIT 1",
        reporter_ref,
    )


async def set_case_status(conn: asyncpg.Connection, *, case_id: UUID, status: str, at: datetime) -> None:
    await conn.execute("UPDATE reports SET status = $2, updated_at = $3 WHERE case_id = $1", case_id, status, at)


async def hit_rate_limits(conn: asyncpg.Connection, *, windows: list[tuple[str, datetime]]) -> dict[str, int]:
    """Count one request in each (key, window start) at once; returns each key's count including it.
    One statement is atomic without a transaction around it; keys in order, so two requests
    counting the same keys cannot deadlock."""
    windows = sorted(windows)
    rows = await conn.fetch(
        "INSERT INTO rate_limits (key, window_start, hits) "
        "SELECT key, window_start, 1 FROM unnest($1::text[], $2::timestamptz[]) AS w(key, window_start) "
        "ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limits.hits + 1 RETURNING key, hits",
        [k for k, _ in windows],
        [w for _, w in windows],
    )
    return {r["key"]: r["hits"] for r in rows}


async def prune_rate_limits(conn: asyncpg.Connection, *, before: datetime) -> None:
    await conn.execute("DELETE FROM rate_limits WHERE window_start < $1", before)


async def insert_correction(conn: asyncpg.Connection, **row) -> bool:
    """Store a dispatcher's correction; False if this event was stored already."""
    columns = ", ".join(row)
    placeholders = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    status = await conn.execute(
        f"INSERT INTO triage_corrections ({columns}) VALUES ({placeholders}) ON CONFLICT DO NOTHING", *row.values()
    )
    return status == "INSERT 0 1"


async def corrections_after(conn: asyncpg.Connection, *, after_id: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM triage_corrections WHERE id > $1 ORDER BY id", after_id)


async def add_to_bundle(
    conn: asyncpg.Connection,
    *,
    bundle_id: UUID,
    channel: str,
    group_id: str,
    sender_id: str,
    at: datetime,
    closes_at: datetime,
    text: str | None,
    media_ref: str | None,
    lat: float | None,
    lng: float | None,
    coord_system: str | None,
    address: str | None,
) -> None:
    """Append one message to the sender's open bundle in the group (opening one if needed)."""
    await conn.execute(
        "INSERT INTO message_bundles (bundle_id, channel, group_id, sender_id, texts, media_refs, lat, lng, "
        "coord_system, address, first_at, last_at, closes_at) "
        "VALUES ($1, $2, $3, $4, coalesce(array_remove(ARRAY[$5::text], NULL), '{}'), "
        "coalesce(array_remove(ARRAY[$6::text], NULL), '{}'), $7, $8, $9, $10, $11, $11, $12) "
        "ON CONFLICT (channel, group_id, sender_id) WHERE report_id IS NULL DO UPDATE SET "
        "texts = message_bundles.texts || coalesce(array_remove(ARRAY[$5::text], NULL), '{}'), "
        "media_refs = message_bundles.media_refs || coalesce(array_remove(ARRAY[$6::text], NULL), '{}'), "
        "lat = coalesce($7, message_bundles.lat), lng = coalesce($8, message_bundles.lng), "
        "coord_system = coalesce($9, message_bundles.coord_system), address = coalesce($10, message_bundles.address), "
        "last_at = greatest(message_bundles.last_at, $11), closes_at = greatest(message_bundles.closes_at, $12)",
        bundle_id,
        channel,
        group_id,
        sender_id,
        text,
        media_ref,
        lat,
        lng,
        coord_system,
        address,
        at,
        closes_at,
    )


async def claim_due_bundles(conn: asyncpg.Connection, *, now: datetime, limit: int = 100) -> list[asyncpg.Record]:
    """Open bundles whose window has closed, locked for this transaction (other replicas skip them)."""
    return await conn.fetch(
        "SELECT * FROM message_bundles WHERE report_id IS NULL AND closes_at <= $1 "
        "ORDER BY closes_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )


async def close_bundle(conn: asyncpg.Connection, *, bundle_id: UUID, report_id: UUID) -> None:
    await conn.execute("UPDATE message_bundles SET report_id = $2 WHERE bundle_id = $1", bundle_id, report_id)


async def insert_query_code(
    conn: asyncpg.Connection, *, request_id: UUID, phone_hash: bytes, code_hash: bytes, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO query_codes (request_id, phone_hash, code_hash, expires_at) VALUES ($1, $2, $3, $4)",
        request_id,
        phone_hash,
        code_hash,
        expires_at,
    )


async def latest_query_code(conn: asyncpg.Connection, *, phone_hash: bytes, now: datetime) -> asyncpg.Record | None:
    """The phone's newest unused, unexpired code, locked so concurrent guesses are counted one by one."""
    return await conn.fetchrow(
        "SELECT * FROM query_codes WHERE phone_hash = $1 AND used_at IS NULL AND expires_at > $2 "
        "ORDER BY created_at DESC LIMIT 1 FOR UPDATE",
        phone_hash,
        now,
    )


async def count_query_attempt(conn: asyncpg.Connection, *, request_id: UUID, used_at: datetime | None) -> None:
    await conn.execute(
        "UPDATE query_codes SET attempts = attempts + 1, used_at = $2 WHERE request_id = $1", request_id, used_at
    )


async def has_reports_from(conn: asyncpg.Connection, *, phone_hash: bytes) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM reports WHERE reporter_phone_hash = $1)", phone_hash)


async def reports_from(conn: asyncpg.Connection, *, phone_hash: bytes, limit: int = 200) -> list[asyncpg.Record]:
    """Everything one reporter (by phone hash) submitted, newest first; nobody else's."""
    return await conn.fetch(
        "SELECT * FROM reports WHERE reporter_phone_hash = $1 ORDER BY submitted_at DESC LIMIT $2", phone_hash, limit
    )


async def reports_to_locate(conn: asyncpg.Connection, *, code_prefix: str, limit: int = 200) -> list[asyncpg.Record]:
    """Reports still waiting for a grid worker to place them, in the given division (or not yet placed
    in any: those wait for the county), oldest first."""
    return await conn.fetch(
        "SELECT * FROM reports WHERE needs_locating AND (coalesce(grid_code, '') LIKE $1 || '%' OR grid_code IS NULL) "
        "ORDER BY submitted_at LIMIT $2",
        code_prefix,
        limit,
    )


async def set_report_location(
    conn: asyncpg.Connection,
    *,
    report_id: UUID,
    lat: float,
    lng: float,
    input_lat: float,
    input_lng: float,
    coord_system: str,
    grid_code: str,
    village_code: str,
    town_code: str,
    at: datetime,
) -> None:
    await conn.execute(
        "UPDATE reports SET lat = $2, lng = $3, input_lat = $4, input_lng = $5, coord_system = $6, grid_code = $7, "
        "village_code = $8, town_code = $9, needs_locating = false, updated_at = $10 WHERE report_id = $1",
        report_id,
        lat,
        lng,
        input_lat,
        input_lng,
        coord_system,
        grid_code,
        village_code,
        town_code,
        at,
    )


# --- 我要查询 abuse controls ------------------------------------------------------------------


async def record_query_attempt(conn: asyncpg.Connection, *, kind: str, phone_hash: bytes, ip: str | None) -> None:
    await conn.execute("INSERT INTO query_attempts (kind, phone_hash, ip) VALUES ($1, $2, $3)", kind, phone_hash, ip)


async def code_requests_of_phone(conn: asyncpg.Connection, *, phone_hash: bytes, since: datetime) -> asyncpg.Record:
    """The phone's last code request and how many it made since `since` (the start of its day)."""
    return await conn.fetchrow(
        "SELECT max(at) AS last_at, count(*) FILTER (WHERE at >= $2) AS since_count FROM query_attempts "
        "WHERE phone_hash = $1 AND kind = 'code' AND at >= $2 - interval '1 day'",
        phone_hash,
        since,
    )


async def attempts_since(
    conn: asyncpg.Connection, *, phone_hash: bytes, ip: str | None, since: datetime
) -> tuple[int, int]:
    """(code requests and wrong codes from this address, and for this phone) since `since`."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM query_attempts WHERE ip = $2 AND at >= $3) AS from_ip, "
        "(SELECT count(*) FROM query_attempts WHERE phone_hash = $1 AND at >= $3) AS for_phone",
        phone_hash,
        ip,
        since,
    )
    return row["from_ip"], row["for_phone"]


async def codes_texted_since(conn: asyncpg.Connection, *, since: datetime) -> asyncpg.Record:
    """How many codes were texted (service-wide) since `since`, and the oldest of them. Serialised
    with an advisory lock (held to the end of the transaction) so replicas cannot overspend together."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('intake.sms-budget'))")
    return await conn.fetchrow(
        "SELECT count(*) AS n, min(created_at) AS oldest FROM query_codes WHERE created_at >= $1", since
    )


async def insert_captcha(
    conn: asyncpg.Connection, *, captcha_id: UUID, answer_hash: bytes, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO captchas (captcha_id, answer_hash, expires_at) VALUES ($1, $2, $3)",
        captcha_id,
        answer_hash,
        expires_at,
    )


async def use_captcha(conn: asyncpg.Connection, *, captcha_id: UUID, now: datetime) -> bytes | None:
    """Spend a CAPTCHA (right or wrong, each is checked once): its answer's hash, or None when it
    is unknown, expired or already used."""
    answer = await conn.fetchval(
        "UPDATE captchas SET used_at = $2 WHERE captcha_id = $1 AND used_at IS NULL AND expires_at > $2 "
        "RETURNING answer_hash",
        captcha_id,
        now,
    )
    return bytes(answer) if answer is not None else None


async def prune_query_controls(conn: asyncpg.Connection, *, before: datetime) -> None:
    await conn.execute("DELETE FROM query_attempts WHERE at < $1", before)
    await conn.execute("DELETE FROM captchas WHERE expires_at < $1", before)


async def mark_phone_verified(conn: asyncpg.Connection, *, phone_hash: bytes, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO verified_phones (phone_hash, verified_at) VALUES ($1, $2) ON CONFLICT (phone_hash) DO NOTHING",
        phone_hash,
        at,
    )


async def is_phone_verified(conn: asyncpg.Connection, *, phone_hash: bytes) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM verified_phones WHERE phone_hash = $1)", phone_hash)


async def cases_opened_by(conn: asyncpg.Connection, *, phone_hash: bytes) -> list[UUID]:
    """Cases this phone opened (its reports that were not attached to another's case): notify keeps
    the phone of the report that opened a case, so only these are the phone's to receive updates of."""
    rows = await conn.fetch(
        "SELECT DISTINCT case_id FROM reports WHERE reporter_phone_hash = $1 AND NOT attached_to_case ORDER BY case_id",
        phone_hash,
    )
    return [r["case_id"] for r in rows]


async def reports_made_by(conn: asyncpg.Connection, *, phone_hash: bytes) -> list[UUID]:
    """Every report this phone made, attached to another's case (一事多报) or not."""
    rows = await conn.fetch(
        "SELECT report_id FROM reports WHERE reporter_phone_hash = $1 ORDER BY report_id", phone_hash
    )
    return [r["report_id"] for r in rows]


async def corrections_through(conn: asyncpg.Connection, *, last_id: int) -> list[asyncpg.Record]:
    """Every stored correction up to and including `last_id`, in arrival order."""
    return await conn.fetch("SELECT * FROM triage_corrections WHERE id <= $1 ORDER BY id", last_id)


async def last_correction_id(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT coalesce(max(id), 0) FROM triage_corrections")


async def accepted_triage_model(conn: asyncpg.Connection) -> asyncpg.Record | None:
    """The newest model the retraining job accepted, or None (the shipped data alone)."""
    return await conn.fetchrow("SELECT * FROM triage_models WHERE accepted ORDER BY id DESC LIMIT 1")


async def insert_triage_model(conn: asyncpg.Connection, **row) -> None:
    columns = ", ".join(row)
    placeholders = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    await conn.execute(f"INSERT INTO triage_models ({columns}) VALUES ({placeholders})", *row.values())


# --- personal data (PIPL): retention and the audit of staff reads --------------------------------


async def anonymise_phones(conn: asyncpg.Connection, *, before: datetime) -> int:
    """Forget the phones of reports submitted before `before`, and the 我要查询 records by phone."""
    status = await conn.execute(
        "UPDATE reports SET reporter_phone_hash = NULL, reporter_phone_masked = NULL, reporter_phone_token = NULL "
        "WHERE submitted_at < $1 AND (reporter_phone_hash IS NOT NULL OR reporter_phone_masked IS NOT NULL "
        "OR reporter_phone_token IS NOT NULL)",
        before,
    )
    await conn.execute("DELETE FROM query_codes WHERE created_at < $1", before)
    await conn.execute("DELETE FROM verified_phones WHERE verified_at < $1", before)
    return int(status.split()[-1])


async def anonymise_openids(conn: asyncpg.Connection, *, before: datetime) -> int:
    """Forget who sent reports submitted before `before` (openid, WeCom user id, Open311 account)
    and the message bundles they came in."""
    status = await conn.execute(
        "UPDATE reports SET reporter_ref = NULL WHERE submitted_at < $1 AND reporter_ref IS NOT NULL", before
    )
    await conn.execute("DELETE FROM message_bundles WHERE report_id IS NOT NULL AND last_at < $1", before)
    return int(status.split()[-1])


async def coarsen_locations(conn: asyncpg.Connection, *, before: datetime) -> int:
    """Points of reports submitted before `before` to 3 decimals (about 100 m, as Open311 shows
    them), and the input as sent dropped."""
    status = await conn.execute(
        "UPDATE reports SET lat = round(lat::numeric, 3)::float8, lng = round(lng::numeric, 3)::float8, "
        "input_lat = NULL, input_lng = NULL "
        "WHERE submitted_at < $1 AND (input_lat IS NOT NULL OR input_lng IS NOT NULL "
        "OR lat <> round(lat::numeric, 3)::float8 OR lng <> round(lng::numeric, 3)::float8)",
        before,
    )
    await conn.execute(
        "UPDATE message_bundles SET lat = NULL, lng = NULL WHERE last_at < $1 AND lat IS NOT NULL", before
    )
    return int(status.split()[-1])


async def record_personal_data_reads(
    conn: asyncpg.Connection, *, actor: str, role: str, jurisdiction_code: str, route: str, reports: list[tuple]
) -> None:
    """One audit row per (report_id, case_id) shown."""
    await conn.executemany(
        "INSERT INTO personal_data_reads (actor, role, jurisdiction_code, report_id, case_id, route) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        [(actor, role, jurisdiction_code, report_id, case_id, route) for report_id, case_id in reports],
    )


async def personal_data_reads(
    conn: asyncpg.Connection,
    *,
    case_id: UUID | None,
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    jurisdiction_prefix: str,
) -> list[asyncpg.Record]:
    """Reads by staff whose division starts with `jurisdiction_prefix` ('' for all), newest first."""
    return await conn.fetch(
        "SELECT actor, role, jurisdiction_code, report_id, case_id, route, read_at FROM personal_data_reads "
        "WHERE ($1::uuid IS NULL OR case_id = $1) AND ($2::text IS NULL OR actor = $2) "
        "AND ($3::timestamptz IS NULL OR read_at >= $3) AND ($4::timestamptz IS NULL OR read_at < $4) "
        "AND starts_with(jurisdiction_code, $6) ORDER BY read_at DESC, id DESC LIMIT $5",
        case_id,
        actor,
        since,
        until,
        limit,
        jurisdiction_prefix,
    )
