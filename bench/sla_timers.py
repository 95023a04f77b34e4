"""SLA timers benchmark (issue 4): fire lateness under a steady load with a million pending
timers, memory, and the catch-up rate after a restart, against a one-timer-per-transaction
baseline measured in the same run.

Starts its own PostgreSQL and Kafka (the scripts `make up` uses, on free ports, in their own run
directory) and runs the real sla service (migrations, ticker, outbox relay) with the real clock.
Timers are inserted the way the case-event handler inserts them; each fires straight as a breach
at its due moment. Lateness is observed from outside: a poller notes every fired timer within
50 ms, so the figures include that polling delay. Exits non-zero if a target is missed.

Run: .cache/venv/bin/python bench/sla_timers.py [--pending 1000000] [--rate 500] [--seconds 30]
"""

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
from prometheus_client import REGISTRY

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.local_servers import local_servers  # noqa: E402
from services.sla.app import create_app, load_policy  # noqa: E402
from services.sla.handlers import fire_due_timers  # noqa: E402
from services.sla.settings import SlaSettings  # noqa: E402
from shared.db import apply_migrations, create_pool  # noqa: E402
from shared.events import utcnow  # noqa: E402
from shared.settings import PROJECT_ROOT  # noqa: E402
from shared.topics import ensure_topics  # noqa: E402

COLUMNS = [
    "case_id",
    "stage",
    "department_code",
    "priority",
    "category",
    "clock",
    "minutes",
    "started_at",
    "due_at",
    "warn_at",
    "next_fire_at",
]
TARGET_P99_S, TARGET_CATCH_UP = 1.0, 5000.0


def timer_rows(n: int, due):
    """Rows for n timers due (and warned) at `due`: they breach when looked at."""
    now = utcnow()
    return [
        (uuid.uuid4(), "resolve", "zhujian", "urgent", "manhole", "wall", 60.0, now, due, due, due) for _ in range(n)
    ]


async def insert_timers(pool, n: int, *, due_sql: str, category: str = "manhole") -> None:
    """n timers generated in the database; `due_sql` computes each one's due moment from `i`."""
    async with pool.acquire() as conn:
        await conn.execute(
            f"INSERT INTO sla.timers ({', '.join(COLUMNS)})"
            f" SELECT gen_random_uuid(), 'resolve', 'zhujian', 'urgent', $2, 'wall', 60, now(), d, d, d"
            f" FROM generate_series(1, $1) AS i, LATERAL (SELECT {due_sql} AS d) AS due",
            n,
            category,
        )


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def observe_firing(pool, started_ids: set, lateness: list[float], stop: asyncio.Event) -> None:
    """Every 50 ms, note the lateness of the started timers that fired since the last look."""
    while not stop.is_set():
        if started_ids:
            async with pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT id, extract(epoch FROM clock_timestamp() - due_at) AS late FROM sla.timers"
                    " WHERE fired_at IS NOT NULL AND id = ANY($1::bigint[])",
                    list(started_ids),
                )
            for row in rows:
                started_ids.discard(row["id"])
                lateness.append(float(row["late"]))
        await asyncio.sleep(0.05)


async def steady_load(settings, pool, *, rate: int, seconds: int) -> list[float]:
    """Timers due one second after they start, `rate` a second, while the service runs."""
    lateness: list[float] = []
    started_ids: set[int] = set()
    stop = asyncio.Event()
    observer = asyncio.create_task(observe_firing(pool, started_ids, lateness, stop))
    per_tick, tick = rate // 10, 0.1
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        due = utcnow() + timedelta(seconds=1)
        async with pool.acquire() as conn:
            ids = await conn.fetch(
                f"INSERT INTO sla.timers ({', '.join(COLUMNS)}) SELECT * FROM unnest($1::uuid[], $2::text[],"
                " $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::timestamptz[], $9::timestamptz[],"
                " $10::timestamptz[], $11::timestamptz[]) RETURNING id",
                *map(list, zip(*timer_rows(per_tick, due), strict=True)),
            )
        started_ids.update(r["id"] for r in ids)
        await asyncio.sleep(max(0.0, tick - (time.monotonic() - began) % tick))
    deadline = time.monotonic() + 30
    while started_ids and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    stop.set()
    await observer
    if started_ids:
        raise RuntimeError(f"{len(started_ids)} timers never fired")
    return lateness


def breaches(category: str) -> float:
    """Breaches the service in this process counted for a category (cheaper than counting rows)."""
    return (
        REGISTRY.get_sample_value("gridlink_sla_breaches_total", {"department": "zhujian", "category": category}) or 0
    )


async def bench(args) -> int:
    run_dir = PROJECT_ROOT / ".cache" / f"bench-run-{os.getpid()}"
    with local_servers(run_dir, parts=("postgres", "kafka")) as infra:
        admin = await asyncpg.connect(infra.database_url("postgres"))
        await admin.execute("CREATE DATABASE bench_sla")
        await admin.close()
        settings = SlaSettings(
            service_name="sla",
            database_url=infra.database_url("bench_sla"),
            kafka_bootstrap=infra.kafka_bootstrap,
            topic_prefix="bench.",
            sla_tick_interval_s=0.1,
        )
        policy = load_policy(settings)
        pool = await create_pool(settings)
        await apply_migrations(pool, schema="sla", service_dir=PROJECT_ROOT / "services" / "sla")
        await ensure_topics(settings)
        rss_before = rss_mb()

        began = time.monotonic()
        # Due over the next month: pending all through the run.
        await insert_timers(
            pool, args.pending, due_sql="now() + interval '1 day' + (i % 2592000) * interval '1 second'"
        )
        async with pool.acquire() as conn:
            await conn.execute("ANALYZE sla.timers")
        print(f"[sla bench] {args.pending:,} pending timers loaded in {time.monotonic() - began:.1f} s")

        app = create_app(settings)
        async with app.router.lifespan_context(app):
            lateness = await steady_load(settings, pool, rate=args.rate, seconds=args.seconds)
        rss_after = rss_mb()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        # Catch-up: 100,000 timers fell due while the service was down.
        await insert_timers(pool, args.overdue, due_sql="now() - interval '5 minutes'", category="catch_up")
        app = create_app(settings)
        began = time.monotonic()
        async with app.router.lifespan_context(app):
            # Startup (migrations, topics, joining the consumer group) is timed apart from firing.
            while (fired := breaches("catch_up")) == 0:
                await asyncio.sleep(0.01)
            first, first_fired = time.monotonic(), fired
            startup_s = first - began
            while breaches("catch_up") < args.overdue:
                await asyncio.sleep(0.02)
            catch_up_s = time.monotonic() - first
        catch_up = (args.overdue - first_fired) / catch_up_s

        # Baseline: the same work one timer per transaction, as a naive ticker would do it.
        await insert_timers(pool, args.baseline, due_sql="now() - interval '5 minutes'")
        began = time.monotonic()
        fired = await fire_due_timers(settings=settings, pool=pool, policy=policy, now=utcnow(), batch=1)
        naive = fired / (time.monotonic() - began)
        await pool.close()

    p50, p99 = statistics.median(lateness), percentile(lateness, 0.99)
    print(
        f"[sla bench] steady load: {len(lateness):,} timers at {args.rate}/s over {args.seconds} s "
        f"with {args.pending:,} pending"
    )
    print(
        f"[sla bench]   fire lateness p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"max {max(lateness) * 1000:.0f} ms (target p99 <= {TARGET_P99_S * 1000:.0f} ms)"
    )
    print(
        f"[sla bench]   memory: RSS {rss_before:.0f} MB before, {rss_after:.0f} MB after, peak {peak:.0f} MB "
        "(bench process: service + load generator)"
    )
    print(
        f"[sla bench] catch-up after restart: {args.overdue:,} overdue timers fired in {catch_up_s:.1f} s = "
        f"{catch_up:,.0f} timers/s (target >= {TARGET_CATCH_UP:,.0f}/s); service start {startup_s:.1f} s"
    )
    print(
        f"[sla bench]   baseline one timer per transaction: {naive:,.0f} timers/s; "
        f"batched/baseline = {catch_up / naive:.1f}x"
    )
    met = p99 <= TARGET_P99_S and catch_up >= TARGET_CATCH_UP
    print(f"[sla bench] targets {'met' if met else 'NOT met'}")
    return 0 if met else 1


def main() -> None:
    parser = argparse.ArgumentParser(description="SLA timers benchmark")
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=500, help="timers falling due per second")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--overdue", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=3_000)
    sys.exit(asyncio.run(bench(parser.parse_args())))


if __name__ == "__main__":
    main()
