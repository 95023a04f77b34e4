"""Apply a service's migrations with the schema owner's role: `python -m shared.migrate <service>`.

In production this is the pod's init container, given the owner's database URL; the service itself
then runs with a role that may only read and write rows (GRIDLINK_DATABASE_MIGRATE_ON_START=false).
Reads GRIDLINK_DATABASE_URL (the owner's), GRIDLINK_DATABASE_SCHEMA (empty: the service's name) and
GRIDLINK_DATABASE_RUNTIME_ROLE (the role granted the use of the tables).
"""

import argparse
import asyncio
import logging

import asyncpg
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.db import apply_migrations, safe_schema
from shared.settings import PROJECT_ROOT

SERVICES_WITH_MIGRATIONS = sorted(p.parent.name for p in (PROJECT_ROOT / "services").glob("*/migrations"))


class MigrationSettings(BaseSettings):
    """Only what migrating needs: no service secrets reach the init container."""

    model_config = SettingsConfigDict(env_prefix="GRIDLINK_", extra="ignore")

    database_url: str = "postgresql://gridlink@127.0.0.1:15432/gridlink"
    database_schema: str = ""
    database_runtime_role: str = ""


async def migrate(*, service: str, settings: MigrationSettings) -> list[str]:
    """Apply the service's pending migrations to its schema; returns what ran."""
    if service not in SERVICES_WITH_MIGRATIONS:
        raise SystemExit(f"unknown service {service!r}; choose one of {', '.join(SERVICES_WITH_MIGRATIONS)}")
    schema = safe_schema(settings.database_schema or service)
    service_dir = PROJECT_ROOT / "services" / service
    # A part of a service with a schema of its own (sla's analytics consumer) migrates beside it.
    parts = [(schema, service_dir)] + [
        (f"{schema}_{d.parent.name}", d.parent) for d in sorted(service_dir.glob("*/migrations"))
    ]
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        applied = []
        for part_schema, part_dir in parts:
            applied += await apply_migrations(
                pool, schema=part_schema, service_dir=part_dir, runtime_role=settings.database_runtime_role
            )
        return applied
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", help=f"one of {', '.join(SERVICES_WITH_MIGRATIONS)}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    applied = asyncio.run(migrate(service=args.service, settings=MigrationSettings()))
    print(f"{args.service}: {len(applied)} migration(s) applied" + (f": {', '.join(applied)}" if applied else ""))


if __name__ == "__main__":
    main()
