"""Reporters' contacts in notify (PIPL): forgotten once their retention is over, re-encrypted when
the phone key is rotated.

    python -m services.notify.privacy anonymise   # what the periodic loop does, once, now
    python -m services.notify.privacy rekey       # phone ciphertext to the current key

Settings come from GRIDLINK_* variables, as for the service.
"""

import argparse
import asyncio
from datetime import datetime, timedelta

import asyncpg

from services.notify import store
from services.notify.settings import NotifySettings
from shared.db import create_pool
from shared.events import utcnow
from shared.loops import repeat_until_stopped
from shared.phones import reencrypt_tokens
from shared.service import Runtime


async def anonymise_once(conn: asyncpg.Connection, *, settings: NotifySettings, now: datetime) -> dict[str, int]:
    """Forget each kind of contact whose retention is over; how many reporters each touched.
    A kind whose retention is 0 is kept. Notify keeps no reporter locations."""
    steps = {
        "phones": (settings.retention_days_phones, store.forget_reporter_phones),
        "openids": (settings.retention_days_openids, store.forget_reporter_openids),
    }
    done = {}
    async with conn.transaction():
        for kind, (days, step) in steps.items():
            done[kind] = await step(conn, before=now - timedelta(days=days)) if days else 0
    return done


async def retention_loop(runtime: Runtime[NotifySettings]) -> None:
    """Forget what is due every `retention_interval_s` while the service runs."""

    async def step() -> None:
        async with runtime.pool.acquire() as conn:
            await anonymise_once(conn, settings=runtime.settings, now=utcnow())

    await repeat_until_stopped(
        runtime.stopping, runtime.settings.retention_interval_s, step, what="forgetting reporters' contacts"
    )


async def rekey(conn: asyncpg.Connection, *, settings: NotifySettings) -> int:
    """Re-encrypt every phone notify holds (reporters, SMS targets) with the current key."""
    keys = settings.phone_keys()
    reporters = await reencrypt_tokens(conn, table="reporters", column="phone", key="report_id", keys=keys)
    targets = await reencrypt_tokens(
        conn,
        table="notifications",
        column="target",
        key="notification_id",
        keys=keys,
        where=f"channel = 'sms' AND NOT starts_with(target, '{store.FORGOTTEN}')",
    )
    return reporters + targets


async def _run(command: str, settings: NotifySettings) -> dict[str, int]:
    pool = await create_pool(settings)
    try:
        async with pool.acquire() as conn:
            if command == "rekey":
                return {"rekeyed": await rekey(conn, settings=settings)}
            return await anonymise_once(conn, settings=settings, now=utcnow())
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Forget or re-encrypt reporters' contacts in notify.")
    parser.add_argument("command", choices=["anonymise", "rekey"])
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args.command, NotifySettings(service_name="notify")))
    print(", ".join(f"{kind}: {count}" for kind, count in result.items()))


if __name__ == "__main__":
    main()
