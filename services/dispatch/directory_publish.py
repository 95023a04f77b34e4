"""The directory on the private gridlink.directory topic, and its one-off republication.

Notify @-mentions the person on duty and sends them cards, so it needs the directory too. Services
never read each other's tables: every change is published, in the change's own transaction (the
outbox), on gridlink.directory — WeCom ids, roles and shifts, never a mobile.

People and shifts saved before the topic existed (or a notify whose database was rebuilt) are
brought up to date by `python -m services.dispatch.directory_publish` (`make republish-directory`):
every person and every shift not yet over is published again, as it is now. Notify keeps the newer
of two versions of a person (by `saved_at`, the row's last change) and a shift once, so running it
twice, or while admins edit, changes nothing.
"""

import argparse
import asyncio
import sys
from pathlib import Path

import asyncpg

from services.dispatch import directory_store as store
from services.dispatch.settings import DispatchSettings
from shared.db import apply_migrations, create_pool, enqueue, schema_name
from shared.events import DirectoryPersonSaved, DirectoryRole, DutyShiftAdded, Payload, new_event, utcnow
from shared.settings import ServiceSettings


async def publish(
    conn: asyncpg.Connection, settings: ServiceSettings, payload: Payload, *, key: str, jurisdiction_code: str
) -> None:
    """One directory event into the outbox, in the caller's transaction."""
    await enqueue(
        conn, settings, new_event(payload, producer=settings.service_name, jurisdiction_code=jurisdiction_code, key=key)
    )


async def publish_person(conn: asyncpg.Connection, settings: ServiceSettings, person_id: str) -> None:
    """The person as they are now (deactivated ones too: notify must stop mentioning them)."""
    row = await store.person(conn, person_id)
    if row is None:
        return
    roles = (await store.roles_of(conn, [person_id]))[person_id]
    await publish(
        conn,
        settings,
        DirectoryPersonSaved(
            person_id=person_id,
            name=row["name"],
            wecom_user_id=row["wecom_user_id"],
            active=row["active"],
            roles=[DirectoryRole(**r) for r in roles],
            saved_at=row["updated_at"],
        ),
        key=f"person:{person_id}",
        # the widest division the person works in (the instance's own for someone with no role left)
        jurisdiction_code=min((r["jurisdiction_code"] for r in roles), key=len, default=settings.jurisdiction_code),
    )


async def publish_shift(conn: asyncpg.Connection, settings: ServiceSettings, shift: asyncpg.Record) -> None:
    await publish(
        conn,
        settings,
        DutyShiftAdded(
            shift_id=shift["shift_id"],
            department_code=shift["department_code"],
            jurisdiction_code=shift["jurisdiction_code"],
            starts_at=shift["starts_at"],
            ends_at=shift["ends_at"],
            on_duty=shift["on_duty"],
            backup=shift["backup"],
        ),
        key=f"shift:{shift['shift_id']}",
        jurisdiction_code=shift["jurisdiction_code"],
    )


async def republish(settings: DispatchSettings) -> tuple[int, int]:
    """Publish every person and every shift not yet over again; (people, shifts) published."""
    pool = await create_pool(settings)
    try:
        await apply_migrations(pool, schema=schema_name(settings), service_dir=Path(__file__).parent)
        async with pool.acquire() as conn, conn.transaction():
            people: list[str] = [r["person_id"] for r in await conn.fetch("SELECT person_id FROM people ORDER BY 1")]
            for person_id in people:
                await publish_person(conn, settings, person_id)
            shifts = await conn.fetch("SELECT * FROM duty_shifts WHERE ends_at > $1 ORDER BY starts_at", utcnow())
            for shift in shifts:
                await publish_shift(conn, settings, shift)
        return len(people), len(shifts)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        description="Publish the whole directory (people, and shifts not yet over) again on gridlink.directory,"
        " for a notify that has not seen all of it. Safe to run at any time, any number of times."
    ).parse_args(argv)
    people, shifts = asyncio.run(republish(DispatchSettings(service_name="dispatch")))
    print(f"[republish-directory] {people} people and {shifts} shifts queued on the directory topic")
    return 0


if __name__ == "__main__":
    sys.exit(main())
