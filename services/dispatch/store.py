"""Dispatch's SQL."""

from datetime import datetime
from uuid import UUID

import asyncpg

from shared.db import insert

# Columns a command may change besides status.
CASE_MUTABLE = {
    "status",
    "seq",
    "owner_code",
    "level",
    "department_code",
    "department_name",
    "co_department_codes",
    "acknowledged_departments",
    "plan_submitted",
    "extension_pending",
    "awaiting_reporter",
    "checked_at",
    "overdue",
    "merged_into",
    "rating",
    "resolved_at",
    "updated_at",
    "responsibility_list_version",
    "rule",
    "after_media_ids",
    "category",
    "category_name",
    "priority",
    "jurisdiction_code",
    "grid_code",
    "lat",
    "lng",
    "report_count",
}


async def insert_case(conn: asyncpg.Connection, **case) -> bool:
    """Insert a case; False if a case with this id already exists."""
    return await insert(conn, "cases", case, on_conflict="(case_id) DO NOTHING")


async def update_case(conn: asyncpg.Connection, *, case_id: UUID, **changes) -> None:
    """Change a case's columns."""
    unknown = set(changes) - CASE_MUTABLE
    if unknown:
        raise ValueError(f"not updatable: {unknown}")
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
    await conn.execute(f"UPDATE cases SET {assignments} WHERE case_id = $1", case_id, *changes.values())


async def append_timeline(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    at: datetime,
    action: str,
    status: str,
    actor: str,
    detail: dict,
    seq: int | None = None,
    reason: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO case_timeline (case_id, at, action, status, actor, detail, seq, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        case_id,
        at,
        action,
        status,
        actor,
        detail,
        seq,
        reason,
    )


async def find_case(conn: asyncpg.Connection, *, case_id: UUID, for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT * FROM cases WHERE case_id = $1{lock}", case_id)


async def record_evidence(
    conn: asyncpg.Connection, *, case_id: UUID, media_id: UUID, role: str, flags: list[str], attached_at: datetime
) -> bool:
    """Keep what media said about a photo of one of this centre's cases; False if already known."""
    return await insert(
        conn,
        "case_evidence",
        dict(case_id=case_id, media_id=media_id, role=role, flags=flags, attached_at=attached_at),
        on_conflict="(case_id, media_id) DO NOTHING",
    )


async def case_evidence(conn: asyncpg.Connection, *, case_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM case_evidence WHERE case_id = $1 ORDER BY attached_at", case_id)


async def list_timeline(conn: asyncpg.Connection, *, case_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM case_timeline WHERE case_id = $1 ORDER BY id", case_id)


async def list_cases(
    conn: asyncpg.Connection,
    *,
    jurisdiction_prefix: str,
    department_code: str | None = None,
    statuses: list[str] | None = None,
    category: str | None = None,
    priority: str | None = None,
    overdue: bool | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    text: str | None = None,
    after: tuple[datetime, UUID] | None = None,
    limit: int = 50,
) -> list[asyncpg.Record]:
    """Cases newest first; `after` is the (created_at, case_id) of the last row of the previous page."""
    # The deepest place known, as `domain.can_see` reads it: a grid worker's prefix is their grid.
    conditions = ["COALESCE(grid_code, jurisdiction_code) LIKE $1"]
    args: list[object] = [jurisdiction_prefix + "%"]  # the query's parameters: codes, times, ids, the limit

    def add(sql: str, value) -> None:
        args.append(value)
        conditions.append(sql.format(f"${len(args)}"))

    if department_code:
        add("({0} = department_code OR {0} = ANY(co_department_codes))", department_code)
    if statuses:
        add("status = ANY({0})", statuses)
    for column, value in (("category", category), ("priority", priority), ("overdue", overdue)):
        if value is not None:
            add(f"{column} = {{0}}", value)
    if created_from:
        add("created_at >= {0}", created_from)
    if created_to:
        add("created_at < {0}", created_to)
    if text:  # a case number exactly, or words of the description or address (LIKE's wildcards literal)
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args.append(text)
        add(f"(case_no = ${len(args)} OR description ILIKE {{0}} OR address ILIKE {{0}})", f"%{escaped}%")
    if after:
        args.extend(after)
        conditions.append(f"(created_at, case_id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    return await conn.fetch(
        f"SELECT * FROM cases WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at DESC, case_id DESC LIMIT ${len(args)}",
        *args,
    )


async def open_cases_by_grid(
    conn: asyncpg.Connection, *, jurisdiction_prefix: str, department_code: str | None, statuses: list[str]
) -> list[asyncpg.Record]:
    """Open cases per grid under a place (and of one department, for its handlers)."""
    return await conn.fetch(
        """
        SELECT grid_code, count(*)::int AS open, count(*) FILTER (WHERE overdue)::int AS overdue,
               count(*) FILTER (WHERE priority = 'urgent')::int AS urgent
        FROM cases
        WHERE status = ANY($1) AND COALESCE(grid_code, jurisdiction_code) LIKE $2
          AND ($3::text IS NULL OR $3 = department_code OR $3 = ANY(co_department_codes))
        GROUP BY grid_code ORDER BY grid_code NULLS FIRST
        """,
        statuses,
        jurisdiction_prefix + "%",
        department_code,
    )


async def find_recurrence(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    category: str,
    lat: float,
    lng: float,
    since: datetime,
    distance_m: float,
) -> UUID | None:
    """The latest earlier case of the same category within distance_m since `since` (回潮)."""
    # An equirectangular distance is exact enough at county scale and needs no extension.
    return await conn.fetchval(
        """
        SELECT case_id FROM cases
        WHERE category = $1 AND case_id <> $2 AND created_at >= $3 AND lat IS NOT NULL
          AND 6371000 * sqrt(power(radians(lat - $4), 2)
                             + power(radians(lng - $5) * cos(radians(($4 + lat) / 2)), 2)) <= $6
        ORDER BY created_at DESC LIMIT 1
        """,
        category,
        case_id,
        since,
        lat,
        lng,
        distance_m,
    )


async def resolved_before(conn: asyncpg.Connection, *, before: datetime, limit: int = 100) -> list[UUID]:
    """Resolved cases nobody verified since `before`, locked for this transaction only."""
    rows = await conn.fetch(
        "SELECT case_id FROM cases WHERE status = 'resolved' AND resolved_at < $1"
        " ORDER BY resolved_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        before,
        limit,
    )
    return [r["case_id"] for r in rows]


async def latest_list(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM responsibility_lists ORDER BY created_at DESC, version DESC LIMIT 1")


async def list_in_force(conn: asyncpg.Connection) -> asyncpg.Record:
    """The newest responsibility list. There always is one: dispatch installs the shipped list at
    start-up, so none means the table was emptied by hand."""
    row = await latest_list(conn)
    if row is None:
        raise LookupError("no responsibility list is stored (dispatch installs the shipped one at start-up)")
    return row


async def find_list(conn: asyncpg.Connection, *, version: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT version, document, created_at, created_by FROM responsibility_lists WHERE version = $1", version
    )


async def list_versions(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT version, created_at, created_by FROM responsibility_lists ORDER BY created_at DESC")


async def insert_list(conn: asyncpg.Connection, *, version: str, document: dict, created_by: str) -> bool:
    status = await conn.execute(
        "INSERT INTO responsibility_lists (version, document, created_by) VALUES ($1, $2, $3)"
        " ON CONFLICT (version) DO NOTHING",
        version,
        document,
        created_by,
    )
    return status == "INSERT 0 1"


async def find_idempotent(conn: asyncpg.Connection, *, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM idempotency_keys WHERE key = $1", key)


async def save_idempotent(conn: asyncpg.Connection, *, key: str, request_hash: str, status_code: int, response: dict):
    await conn.execute(
        "INSERT INTO idempotency_keys (key, request_hash, status_code, response) VALUES ($1, $2, $3, $4)",
        key,
        request_hash,
        status_code,
        response,
    )


async def find_jurisdiction(conn: asyncpg.Connection, *, code: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM jurisdictions WHERE code = $1", code)


async def list_children(conn: asyncpg.Connection, *, code: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT code, name, level, kind FROM jurisdictions WHERE parent_code = $1 ORDER BY code", code
    )


async def list_grids(conn: asyncpg.Connection, *, village_code: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT code, name, worker_id, worker_name, group_id, group_name FROM grids WHERE village_code = $1"
        " ORDER BY code",
        village_code,
    )


async def record_supervised_breach(conn: asyncpg.Connection, **breach) -> None:
    await insert(conn, "supervised_breaches", breach, on_conflict="DO NOTHING")


async def list_supervised_breaches(conn: asyncpg.Connection, *, jurisdiction_prefix: str, limit: int):
    return await conn.fetch(
        "SELECT * FROM supervised_breaches WHERE owner_code LIKE $1 ORDER BY breached_at DESC LIMIT $2",
        jurisdiction_prefix + "%",
        limit,
    )


async def record_supervised_notice(conn: asyncpg.Connection, **notice) -> None:
    await insert(conn, "supervised_notices", notice, on_conflict="DO NOTHING")


async def list_supervised_notices(conn: asyncpg.Connection, *, jurisdiction_prefix: str, limit: int):
    """通报 about this division and those below it, newest first."""
    return await conn.fetch(
        "SELECT * FROM supervised_notices WHERE jurisdiction_code LIKE $1 ORDER BY issued_at DESC LIMIT $2",
        jurisdiction_prefix + "%",
        limit,
    )


async def note_case_number(conn: asyncpg.Connection, *, case_no: str, owner_code: str) -> None:
    """The county centre's record of a number intake gave out and the centre that took its report."""
    await conn.execute(
        "INSERT INTO case_numbers_given (case_no, owner_code) VALUES ($1, $2) ON CONFLICT (case_no) DO NOTHING",
        case_no,
        owner_code,
    )


async def case_number_owner(conn: asyncpg.Connection, *, case_no: str) -> str | None:
    return await conn.fetchval("SELECT owner_code FROM case_numbers_given WHERE case_no = $1", case_no)


async def find_case_by_no(conn: asyncpg.Connection, *, case_no: str, for_update: bool = False) -> asyncpg.Record | None:
    """The case this centre holds under a human case number (not a copy it escalated away)."""
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT * FROM cases WHERE case_no = $1 AND status <> 'escalated' ORDER BY updated_at DESC LIMIT 1{lock}",
        case_no,
    )


async def take_staff_command(conn: asyncpg.Connection, **command) -> bool:
    """Record a staff command from WeCom; False if it was taken before (it is acted on once)."""
    columns = ", ".join(command)
    placeholders = ", ".join(f"${i}" for i in range(1, len(command) + 1))
    status = await conn.execute(
        f"INSERT INTO staff_commands ({columns}) VALUES ({placeholders}) ON CONFLICT DO NOTHING", *command.values()
    )
    return status == "INSERT 0 1"


async def waiting_staff_command(conn: asyncpg.Connection, *, command_id: UUID) -> asyncpg.Record | None:
    """A 办结 from WeCom waiting for its photos, locked."""
    return await conn.fetchrow(
        "SELECT * FROM staff_commands WHERE command_id = $1 AND status = 'waiting_photos' FOR UPDATE", command_id
    )


async def add_staff_photo(conn: asyncpg.Connection, *, command_id: UUID, media_id: UUID) -> asyncpg.Record:
    return await conn.fetchrow(
        """UPDATE staff_commands SET after_media_ids = array_append(after_media_ids, $2)
           WHERE command_id = $1 AND NOT ($2 = ANY(after_media_ids)) RETURNING *""",
        command_id,
        media_id,
    )


async def answer_staff_command(conn: asyncpg.Connection, *, command_id: UUID, outcome: str) -> None:
    await conn.execute(
        "UPDATE staff_commands SET status = 'answered', outcome = $2, answered_at = now() WHERE command_id = $1",
        command_id,
        outcome,
    )


async def staff_person(conn: asyncpg.Connection, *, wecom_user_id: str) -> tuple[dict | None, list[dict]]:
    """The directory's person with this WeCom user id and their roles (None, [] if nobody)."""
    person = await conn.fetchrow("SELECT person_id, name, active FROM people WHERE wecom_user_id = $1", wecom_user_id)
    if person is None:
        return None, []
    roles = await conn.fetch(
        "SELECT role, jurisdiction_code, department_code FROM person_roles WHERE person_id = $1", person["person_id"]
    )
    return dict(person), [{**dict(r), "department_code": r["department_code"] or None} for r in roles]


async def update_staff_command(conn: asyncpg.Connection, *, command_id: UUID, **changes) -> None:
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
    await conn.execute(f"UPDATE staff_commands SET {sets} WHERE command_id = $1", command_id, *changes.values())
