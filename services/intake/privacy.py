"""Reporters' personal data in intake (PIPL): anonymised once its retention is over, re-encrypted
when the phone key is rotated, and every staff read of it recorded.

    python -m services.intake.privacy anonymise   # what the periodic loop does, once, now
    python -m services.intake.privacy rekey       # phone ciphertext to the current key

Settings come from GRIDLINK_* variables, as for the service.
"""

import argparse
import asyncio
from datetime import datetime, timedelta

import asyncpg

from services.intake import store
from services.intake.settings import IntakeSettings
from shared.auth import Actor
from shared.db import create_pool
from shared.events import utcnow
from shared.loops import repeat_until_stopped
from shared.phones import reencrypt_tokens
from shared.service import Runtime


async def anonymise_once(conn: asyncpg.Connection, *, settings: IntakeSettings, now: datetime) -> dict[str, int]:
    """Anonymise each kind of personal data whose retention is over; how many reports each touched.
    A kind whose retention is 0 is kept."""
    steps = {
        "phones": (settings.retention_days_phones, store.anonymise_phones),
        "openids": (settings.retention_days_openids, store.anonymise_openids),
        "locations": (settings.retention_days_locations, store.coarsen_locations),
    }
    done = {}
    async with conn.transaction():
        for kind, (days, step) in steps.items():
            done[kind] = await step(conn, before=now - timedelta(days=days)) if days else 0
    return done


async def retention_loop(runtime: Runtime[IntakeSettings]) -> None:
    """Anonymise what is due every `retention_interval_s` while the service runs."""

    async def step() -> None:
        async with runtime.pool.acquire() as conn:
            await anonymise_once(conn, settings=runtime.settings, now=utcnow())

    await repeat_until_stopped(
        runtime.stopping, runtime.settings.retention_interval_s, step, what="anonymising personal data"
    )


async def rekey(conn: asyncpg.Connection, *, settings: IntakeSettings) -> int:
    """Re-encrypt every stored phone with the current key; how many were rewritten."""
    return await reencrypt_tokens(
        conn, table="reports", column="reporter_phone_token", key="report_id", keys=settings.phone_keys()
    )


async def record_reads(conn: asyncpg.Connection, *, actor: Actor, route: str, rows: list[asyncpg.Record]) -> None:
    """The audit of staff being shown reporters' personal data: one record per report shown."""
    await store.record_personal_data_reads(
        conn,
        actor=actor.label,
        role=actor.role,
        jurisdiction_code=actor.jurisdiction_code,
        route=route,
        reports=[(r["report_id"], r["case_id"]) for r in rows],
    )


async def _run(command: str, settings: IntakeSettings) -> dict[str, int]:
    pool = await create_pool(settings)
    try:
        async with pool.acquire() as conn:
            if command == "rekey":
                return {"rekeyed": await rekey(conn, settings=settings)}
            return await anonymise_once(conn, settings=settings, now=utcnow())
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Anonymise or re-encrypt reporters' personal data in intake.")
    parser.add_argument("command", choices=["anonymise", "rekey"])
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args.command, IntakeSettings(service_name="intake")))
    print(", ".join(f"{kind}: {count}" for kind, count in result.items()))


if __name__ == "__main__":
    main()
