"""The directory's and duty rosters' SQL (tables of migrations/010_directory.sql)."""

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

PERSON_COLUMNS = "person_id, name, wecom_user_id, mobile_masked, active, updated_at"


async def save_person(
    conn: asyncpg.Connection,
    *,
    person_id: str,
    name: str,
    wecom_user_id: str | None,
    mobile: tuple[bytes, bytes, str] | None,  # (ciphertext, keyed hash, masked)
    active: bool,
    roles: list[dict],
) -> None:
    """Create or replace a person and their roles (in the caller's transaction)."""
    encrypted, hashed, masked = mobile or (None, None, None)
    await conn.execute(
        """INSERT INTO people (person_id, name, wecom_user_id, mobile_encrypted, mobile_hash, mobile_masked, active)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (person_id) DO UPDATE SET name = $2, wecom_user_id = $3, mobile_encrypted = $4,
               mobile_hash = $5, mobile_masked = $6, active = $7, updated_at = now()""",
        person_id,
        name,
        wecom_user_id,
        encrypted,
        hashed,
        masked,
        active,
    )
    await conn.execute("DELETE FROM person_roles WHERE person_id = $1", person_id)
    await conn.executemany(
        "INSERT INTO person_roles (person_id, role, jurisdiction_code, department_code) VALUES ($1, $2, $3, $4)",
        [(person_id, r["role"], r["jurisdiction_code"], r.get("department_code") or "") for r in roles],
    )


async def wecom_user_owner(conn: asyncpg.Connection, wecom_user_id: str) -> str | None:
    return await conn.fetchval("SELECT person_id FROM people WHERE wecom_user_id = $1", wecom_user_id)


async def roles_of(conn: asyncpg.Connection, person_ids: list[str]) -> dict[str, list[dict]]:
    rows = await conn.fetch(
        """SELECT person_id, role, jurisdiction_code, department_code FROM person_roles
           WHERE person_id = ANY($1::text[]) ORDER BY role, jurisdiction_code, department_code""",
        person_ids,
    )
    roles: dict[str, list[dict]] = {p: [] for p in person_ids}
    for r in rows:
        roles[r["person_id"]].append(
            {
                "role": r["role"],
                "jurisdiction_code": r["jurisdiction_code"],
                "department_code": r["department_code"] or None,
            }
        )
    return roles


async def person_by_wecom(conn: asyncpg.Connection, wecom_user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {PERSON_COLUMNS} FROM people WHERE wecom_user_id = $1", wecom_user_id)


async def person(conn: asyncpg.Connection, person_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {PERSON_COLUMNS} FROM people WHERE person_id = $1", person_id)


async def people(
    conn: asyncpg.Connection,
    *,
    within: str,
    role: str | None = None,
    department_code: str | None = None,
    mobile_hash: bytes | None = None,
) -> list[asyncpg.Record]:
    """People with a role in `within` or below (optionally that role, department or mobile)."""
    return await conn.fetch(
        f"""SELECT {PERSON_COLUMNS} FROM people p
            WHERE EXISTS (SELECT 1 FROM person_roles r WHERE r.person_id = p.person_id
                            AND r.jurisdiction_code LIKE $1 || '%'
                            AND ($2::text IS NULL OR r.role = $2)
                            AND ($3::text IS NULL OR r.department_code = $3))
              AND ($4::bytea IS NULL OR p.mobile_hash = $4)
            ORDER BY p.person_id LIMIT 1000""",
        within,
        role,
        department_code,
        mobile_hash,
    )


async def deactivate(conn: asyncpg.Connection, person_id: str) -> bool:
    status = await conn.execute("UPDATE people SET active = false, updated_at = now() WHERE person_id = $1", person_id)
    return status == "UPDATE 1"


async def add_shift(
    conn: asyncpg.Connection,
    *,
    shift_id: UUID,
    department_code: str,
    jurisdiction_code: str,
    starts_at: datetime,
    ends_at: datetime,
    on_duty: str,
    backup: str | None,
) -> asyncpg.Record | None:
    """Add a shift unless it overlaps another of the department here; that one then (caller's transaction)."""
    # One roster at a time per department and division, so two overlapping shifts cannot both pass.
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('duty:' || $1 || ':' || $2))", department_code, jurisdiction_code
    )
    clash = await conn.fetchrow(
        """SELECT shift_id, starts_at, ends_at FROM duty_shifts
           WHERE department_code = $1 AND jurisdiction_code = $2 AND starts_at < $4 AND ends_at > $3""",
        department_code,
        jurisdiction_code,
        starts_at,
        ends_at,
    )
    if clash is not None:
        return clash
    await conn.execute(
        """INSERT INTO duty_shifts (shift_id, department_code, jurisdiction_code, starts_at, ends_at, on_duty, backup)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        shift_id,
        department_code,
        jurisdiction_code,
        starts_at,
        ends_at,
        on_duty,
        backup,
    )
    return None


SHIFT_COLUMNS = """s.shift_id, s.department_code, s.jurisdiction_code, s.starts_at, s.ends_at,
    s.on_duty, d.name AS on_duty_name, d.wecom_user_id AS on_duty_wecom_user_id,
    s.backup, b.name AS backup_name, b.wecom_user_id AS backup_wecom_user_id"""


async def shifts(
    conn: asyncpg.Connection, *, department_code: str, jurisdiction_code: str, since: datetime, until: datetime
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {SHIFT_COLUMNS} FROM duty_shifts s JOIN people d ON d.person_id = s.on_duty
            LEFT JOIN people b ON b.person_id = s.backup
            WHERE s.department_code = $1 AND s.jurisdiction_code = $2 AND s.starts_at < $4 AND s.ends_at > $3
            ORDER BY s.starts_at""",
        department_code,
        jurisdiction_code,
        since,
        until,
    )


async def shift(conn: asyncpg.Connection, shift_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {SHIFT_COLUMNS} FROM duty_shifts s JOIN people d ON d.person_id = s.on_duty
            LEFT JOIN people b ON b.person_id = s.backup WHERE s.shift_id = $1""",
        shift_id,
    )


async def delete_shift(conn: asyncpg.Connection, shift_id: UUID) -> None:
    await conn.execute("DELETE FROM duty_shifts WHERE shift_id = $1", shift_id)


async def audit(conn: asyncpg.Connection, *, actor: str, action: str, subject: str, detail: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO directory_audit (actor, action, subject, detail) VALUES ($1, $2, $3, $4)",
        actor,
        action,
        subject,
        json.loads(json.dumps(detail, default=str)),  # times as text: the pool's jsonb codec takes plain JSON
    )


async def audit_trail(conn: asyncpg.Connection, *, subject: str | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT audit_id, at, actor, action, subject, detail FROM directory_audit
           WHERE $1::text IS NULL OR subject = $1 ORDER BY audit_id DESC LIMIT $2""",
        subject,
        limit,
    )
