"""Scorecards benchmark (issue 18): rebuild every figure for a million cases.

Synthetic case histories (dispatch, a share transferred, acknowledged, resolved late or in time,
rated, some reopened, returned or cancelled, breaches) are folded into rounds by the same pure
rules the analytics consumer applies (services/sla/analytics/scorecards.py), copied into the
analytics tables of a real PostgreSQL, and the figures are computed by the same SQL the API runs:
scorecards by department and month, by town and week, by grid, and the seeds' loop.

The baseline, measured in the same run on a sample, is the consumer's own path: one transaction
per event (processed mark, load the case's rounds, fold, save) — what a rebuild through Kafka
costs per event, extrapolated to the whole history.

Run: .cache/venv/bin/python bench/scorecards.py [--cases 1000000] [--baseline 2000]
"""

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.local_servers import local_servers  # noqa: E402
from services.sla.analytics import figures, store  # noqa: E402
from services.sla.analytics.consumer import SERVICE_DIR, analytics_settings, make_handlers  # noqa: E402
from services.sla.analytics.scorecards import Breach, Round, apply_step, mark_breaches, open_rounds  # noqa: E402
from services.sla.settings import SlaSettings  # noqa: E402
from shared.db import apply_migrations, create_pool, mark_processed, schema_name  # noqa: E402
from shared.events import CaseDispatched, CaseTransitioned, SlaBreached, new_event  # noqa: E402
from shared.settings import PROJECT_ROOT  # noqa: E402

DEPARTMENTS = ["zhujian", "chengguan", "eco_env", "police", "water", "market", "traffic", "health"]
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 330


def histories(n: int, seed: int = 18):
    """(case facts, [(kind, at, detail)]) per case: kind is a dispatch action, an event type, or
    breach:<stage>:<department>:<started minutes>."""
    rng = random.Random(seed)
    for i in range(n):
        lead = rng.choice(DEPARTMENTS)
        co = [rng.choice(DEPARTMENTS)] if rng.random() < 0.15 else []
        town = f"330727{rng.randrange(1, 12):03d}"
        village = f"{town}{rng.randrange(1, 20):03d}"
        facts = dict(
            case_id=uuid.UUID(int=i + 1),
            department_code=lead,
            co_department_codes=co,
            category=rng.choice(["manhole", "garbage", "noise", "road", "water"]),
            priority="urgent" if rng.random() < 0.3 else "normal",
            case_no=f"C{i:08d}",
            jurisdiction_code=village,
            grid_code=f"{village}{rng.randrange(1, 6):03d}",
        )
        t0 = START + timedelta(minutes=rng.randrange(DAYS * 24 * 60))
        steps: list = [("dispatch", t0, facts)]
        start, department = t0, lead
        if rng.random() < 0.08:  # transferred, sometimes after the claim deadline
            late = rng.random() < 0.4
            if late:
                steps.append((f"breach:acknowledge:{department}", start + timedelta(minutes=10), {}))
            start = start + timedelta(minutes=rng.randrange(3, 40))
            department = rng.choice(DEPARTMENTS)
            steps.append(("transfer", start, facts | {"department_code": department}))
        if rng.random() < 0.03:
            steps.append(("case.cancelled", start + timedelta(minutes=5), {}))
            yield facts, steps
            continue
        if rng.random() < 0.04:
            steps.append(("case.returned", start + timedelta(minutes=8), {}))
            yield facts, steps
            continue
        ack = rng.expovariate(1 / 8)
        if ack > 10:
            steps.append((f"breach:acknowledge:{department}", start + timedelta(minutes=10), {}))
        steps.append(("case.acknowledged", start + timedelta(minutes=ack), {"department_code": department}))
        for d in co:
            steps.append(
                ("case.acknowledged", start + timedelta(minutes=rng.expovariate(1 / 9)), {"department_code": d})
            )
        if co:
            steps.append(("case.plan_submitted", start + timedelta(minutes=ack + rng.expovariate(1 / 20)), {}))
        if rng.random() < 0.1:
            steps.append(("case.extension_requested", start + timedelta(minutes=ack + 5), {"minutes": 60}))
            steps.append(("case.extension_approved", start + timedelta(minutes=ack + 15), {"minutes": 60}))
        done = ack + rng.expovariate(1 / 50)
        if done > 60:
            steps.append((f"breach:resolve:{department}", start + timedelta(minutes=60), {}))
        steps.append(("case.resolved", start + timedelta(minutes=done), {}))
        steps.append(
            ("case.verified", start + timedelta(minutes=done + 30), {"rating": rng.choice([5, 5, 4, 4, 3, 2])})
        )
        if rng.random() < 0.05:
            steps.append(("reopen", start + timedelta(minutes=done + 120), facts | {"department_code": department}))
            steps.append(("case.acknowledged", start + timedelta(minutes=done + 125), {"department_code": department}))
            steps.append(("case.resolved", start + timedelta(minutes=done + 180), {}))
        yield facts, steps


def fold(facts, steps) -> list[Round]:
    """A case's rounds, by the consumer's pure rules."""
    rounds: list[Round] = []
    started = {}
    for kind, at, detail in steps:
        if kind in ("dispatch", "transfer", "reopen"):
            case = facts if kind == "dispatch" else detail
            rounds = open_rounds(rounds, case=case, started_at=at, action=kind)
            started[case["department_code"]] = at
        elif kind.startswith("breach:"):
            _, stage, department = kind.split(":")
            rounds = mark_breaches(rounds, [Breach(facts["case_id"], department, started.get(department, at), stage)])
        else:
            rounds = apply_step(rounds, event_type=kind, at=at, detail=detail)
    return rounds


def as_events(facts, steps):
    """The same history as the events the consumer reads (for the per-event baseline)."""
    common = dict(
        facts, report_id=uuid.uuid4(), category_name="c", department_name="d", description="x", owner_code="330727"
    )
    started = {}
    for seq, (kind, at, detail) in enumerate(steps, 1):
        if kind in ("dispatch", "transfer", "reopen"):
            common |= {"department_code": (detail if kind != "dispatch" else facts)["department_code"]}
            started[common["department_code"]] = at
            payload = CaseDispatched(
                **common, seq=seq, responsibility_list_version="v", rule="r", dispatched_at=at, action=kind
            )
            yield new_event(payload, producer="bench", jurisdiction_code="330727", key="k")
        elif kind.startswith("breach:"):
            _, stage, department = kind.split(":")
            breach = SlaBreached(
                case_id=facts["case_id"], stage=stage, department_code=department,
                started_at=started.get(department, at), due_at=at, fired_at=at,
            )  # fmt: skip
            yield new_event(breach, producer="bench", jurisdiction_code="330727", key="k")
        else:
            step = CaseTransitioned(
                **common, seq=seq, action=kind, from_status="x", actor="a", detail=detail, at=at
            )  # fmt: skip
            yield new_event(step, producer="bench", jurisdiction_code="330727", key="k", event_type=kind)


async def bench(args) -> int:
    run_dir = PROJECT_ROOT / ".cache" / f"bench-run-{os.getpid()}"
    with local_servers(run_dir, parts=("postgres",)) as infra:
        admin = await asyncpg.connect(infra.database_url("postgres"))
        await admin.execute("CREATE DATABASE bench_scorecards")
        await admin.close()
        settings = analytics_settings(
            SlaSettings(service_name="sla", database_url=infra.database_url("bench_scorecards"), db_pool_max=4)
        )
        pool = await create_pool(settings)
        await apply_migrations(pool, schema=schema_name(settings), service_dir=SERVICE_DIR)

        # Baseline: the consumer's per-event transactions, on a sample.
        handlers = make_handlers()
        sample = [list(as_events(f, s)) for f, s in histories(args.baseline, seed=1)]
        events = sum(len(e) for e in sample)
        began = time.perf_counter()
        async with pool.acquire() as conn:
            for case_events in sample:
                for event in case_events:
                    async with conn.transaction():
                        await mark_processed(conn, event.event_id)
                        await handlers[event.type](conn, event)
        per_event = (time.perf_counter() - began) / events
        async with pool.acquire() as conn:
            await conn.execute("TRUNCATE rounds, breaches, processed_events")

        # The rebuild: fold every history by the pure rules, bulk-load, aggregate.
        rows, n_events, fold_s = [], 0, 0.0
        for facts, steps in histories(args.cases):  # generating the histories is not timed
            began = time.perf_counter()
            rows.extend(fold(facts, steps))
            fold_s += time.perf_counter() - began
            n_events += len(steps)
        began = time.perf_counter()
        columns = [*store.ROUND_COLUMNS, "day"]
        async with pool.acquire() as conn:
            await conn.copy_records_to_table(
                "rounds",
                columns=columns,
                records=(store.round_record(r) for r in rows),
            )
            await conn.execute("ANALYZE rounds")
        load_s = time.perf_counter() - began
        timings = {}
        since, until = date(2026, 1, 1), date(2026, 12, 31)
        async with pool.acquire() as conn:
            for name, call in [
                (
                    "department × month",
                    figures.scorecards(conn, by="department", period="month", since=since, until=until),
                ),
                ("town × week", figures.scorecards(conn, by="town", period="week", since=since, until=until)),
                ("grid, whole year", figures.scorecards(conn, by="grid", period="all", since=since, until=until)),
                (
                    "loop by department × month",
                    figures.loop(
                        conn,
                        by="department",
                        period="month",
                        since=since,
                        until=until,
                        as_of=datetime(2027, 1, 1, tzinfo=UTC),
                    ),
                ),
            ]:
                began = time.perf_counter()
                result = await call
                timings[name] = (time.perf_counter() - began, len(result))
        await pool.close()

    total = fold_s + load_s + sum(t for t, _ in timings.values())
    consumer_estimate = per_event * n_events
    print(f"[scorecards bench] {args.cases:,} cases, {n_events:,} events, {len(rows):,} rounds")
    print(f"[scorecards bench] fold by the pure rules: {fold_s:.1f} s ({n_events / fold_s:,.0f} events/s)")
    print(f"[scorecards bench] bulk load into PostgreSQL: {load_s:.1f} s ({len(rows) / load_s:,.0f} rounds/s)")
    for name, (seconds, count) in timings.items():
        print(f"[scorecards bench] figures {name}: {seconds:.2f} s ({count:,} scorecards)")
    print(f"[scorecards bench] rebuild total: {total:.1f} s")
    print(
        f"[scorecards bench] baseline, the consumer's per-event path: {per_event * 1000:.2f} ms/event on "
        f"{events:,} events; the same history through it ≈ {consumer_estimate / 60:.0f} min "
        f"({consumer_estimate / total:.0f}× the bulk rebuild)"
    )
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description="Scorecards rebuild benchmark")
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=2_000, help="cases replayed through the per-event path")
    sys.exit(asyncio.run(bench(parser.parse_args())))


if __name__ == "__main__":
    main()
