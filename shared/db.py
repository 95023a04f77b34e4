"""asyncpg pool, forward-only SQL migrations, the transactional outbox and processed-events marks.

Each service owns one Postgres schema (its tables never meet another service's); the outbox and
processed_events tables from shared/migrations are created in every service schema first.
"""

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka.errors import KafkaConnectionError

from shared import logs, tracing
from shared.events import Event
from shared.settings import ServiceSettings
from shared.topics import check_produces, topic_for

log = logging.getLogger(__name__)

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"


def schema_name(settings: ServiceSettings) -> str:
    """The Postgres schema a service instance owns: its own setting, else the service's name."""
    return safe_schema(settings.database_schema or settings.service_name)


def safe_schema(name: str) -> str:
    """A schema name made of lower-case letters, digits and underscores only."""
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to undo when a connection goes back to the pool: the services keep no session state
    (locks are pg_advisory_xact_lock, settings SET LOCAL, LISTEN only on the relay's own
    connection), and asyncpg still rolls back a transaction left open. asyncpg's default reset query
    (unlock all, close cursors, unlisten, reset settings) would cost every request and event one
    more round trip to PostgreSQL."""


async def create_pool(settings: ServiceSettings) -> asyncpg.Pool:
    """A pool whose connections see the service's own schema first."""
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        server_settings={"search_path": schema_name(settings), "application_name": settings.service_name},
        init=_init_connection,
        reset=_keep_session,
    )


def _migration_files(service_dir: Path) -> list[tuple[str, Path]]:
    """(name as recorded in schema_migrations, file), shared ones first, each group in name order."""
    files = [(f"shared/{p.name}", p) for p in sorted(SHARED_MIGRATIONS.glob("*.sql"))]
    return files + [(f"{service_dir.name}/{p.name}", p) for p in sorted((service_dir / "migrations").glob("*.sql"))]


async def apply_migrations(pool: asyncpg.Pool, *, schema: str, service_dir: Path, runtime_role: str = "") -> list[str]:
    """Apply shared then service `.sql` files not applied yet, in name order; returns what ran.
    With `runtime_role`, that role is granted the use of the schema's tables and nothing more: it
    reads and writes rows but may not create, alter or drop anything."""
    applied_now = []
    async with pool.acquire() as conn, conn.transaction():
        # Replicas starting together must not race each other through the same files.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrations:{schema}")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations '
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')}
        for name, path in _migration_files(service_dir):
            if name in done:
                continue
            await conn.execute(f'SET LOCAL search_path TO "{schema}"')
            await conn.execute(path.read_text())
            await conn.execute(f'INSERT INTO "{schema}".schema_migrations (name) VALUES ($1)', name)
            applied_now.append(name)
        if runtime_role:
            role = '"' + runtime_role.replace('"', '""') + '"'
            await conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
            await conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {role}')
            await conn.execute(f'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA "{schema}" TO {role}')
    if applied_now:
        log.info("applied migrations to %s: %s", schema, applied_now)
    return applied_now


class MigrationsPending(RuntimeError):
    """The service's schema lacks migrations this version needs, and it may not apply them itself."""


async def check_migrations(pool: asyncpg.Pool, *, schema: str, service_dir: Path) -> None:
    """Raise MigrationsPending unless every migration of this version has been applied."""
    async with pool.acquire() as conn:
        done = set()
        if await conn.fetchval("SELECT to_regclass($1)", f'"{schema}".schema_migrations'):
            done = {r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')}
    pending = [name for name, _ in _migration_files(service_dir) if name not in done]
    if pending:
        raise MigrationsPending(
            f"schema {schema} lacks migrations {pending}; apply them with the schema owner's role "
            f"(`python -m shared.migrate {service_dir.name}`, the pod's init container) before starting"
        )


async def insert(conn: asyncpg.Connection, table: str, row: dict[str, Any], *, on_conflict: str = "") -> bool:
    """Insert one row given as {column: value}; with `on_conflict` (e.g. "(case_id) DO NOTHING")
    answers False when the conflict kept the row out. Table and column names come from code."""
    placeholders = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    conflict = f" ON CONFLICT {on_conflict}" if on_conflict else ""
    status = await conn.execute(
        f"INSERT INTO {table} ({', '.join(row)}) VALUES ({placeholders}){conflict}", *row.values()
    )
    return status == "INSERT 0 1"


async def enqueue(conn: asyncpg.Connection, settings: ServiceSettings, event: Event) -> None:
    """Write an outgoing event to the outbox, inside the caller's transaction, with the request id
    (and, while tracing, the traceparent: shared/tracing.py `origin`) of what caused it."""
    check_produces(settings.service_name, topic_for(event.type))
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, key, value, request_id) VALUES ($1, $2, $3, $4, $5)",
        event.event_id,
        settings.topic(topic_for(event.type).name),
        event.key,
        event.to_bytes(),
        tracing.origin(logs.request_id.get()),
    )


async def enqueue_many(conn: asyncpg.Connection, settings: ServiceSettings, events: list[Event]) -> None:
    """Write many outgoing events to the outbox in one round trip (timers firing in bulk)."""
    for topic in {topic_for(e.type) for e in events}:
        check_produces(settings.service_name, topic)
    if events:
        await conn.copy_records_to_table(
            "outbox",
            columns=["event_id", "topic", "key", "value", "request_id"],
            records=[
                (
                    e.event_id,
                    settings.topic(topic_for(e.type).name),
                    e.key,
                    e.to_bytes(),
                    tracing.origin(logs.request_id.get()),
                )
                for e in events
            ],
        )


async def mark_processed(conn: asyncpg.Connection, event_id: UUID) -> bool:
    """Record that an incoming event's effect is being applied; False if it already was."""
    status = await conn.execute("INSERT INTO processed_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING", event_id)
    return status == "INSERT 0 1"


# SQLSTATEs that say "try again" rather than "this event is wrong": connection exceptions (08…),
# serialization failure, deadlock, insufficient resources (53…), operator intervention (57P…).
_TRANSIENT_SQLSTATES = ("08", "40001", "40P01", "53", "57P")


def is_transient(exc: BaseException) -> bool:
    """Whether a handler failure is the infrastructure's, to wait out, not the event's."""
    if isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.InterfaceError, KafkaConnectionError)):
        return True
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return True  # a connection killed under a running query leaves the protocol mid-operation
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        if state.startswith(_TRANSIENT_SQLSTATES):
            return True
        return state == "55000" and "not currently accepting connections" in str(exc)
    return False
