"""Throughput benchmark: how many reports per second intake accepts, beside a bare FastAPI +
asyncpg app that only inserts the report and its outbox row, measured in the same run.

Starts its own PostgreSQL, Kafka and MinIO (devtools/local_servers.py) and intake (uvicorn,
--workers processes, its outbox relay publishing to Kafka) and the baseline app (same workers).
Each is saturated by --clients concurrent clients posting reports for --seconds (closed loop),
the two alternately for --rounds rounds (other work on a shared machine comes and goes: each
round's ratio compares neighbours in time): accepted reports per second, and the CPU time the app
and PostgreSQL spent per report. Then intake is offered --rate reports/s (open loop) to check it
sustains that rate: every report answered 201, p99 answer time printed. Exits non-zero when intake
is under 0.7x the baseline (median of the rounds) or does not sustain the rate.

With --profile, intake runs (one worker) under pyinstrument (pip install pyinstrument) and its
profile is written to .cache/intake-profile.txt.

Run: .cache/venv/bin/python bench/intake_throughput.py [--workers 2] [--rate 150] [--rounds 3]
"""

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import httpx
from fastapi import FastAPI
from pydantic import BaseModel, Field

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.reports_load import ReportMaker, cpu_seconds, offer_reports, percentile  # noqa: E402
from devtools.local_servers import local_servers  # noqa: E402
from devtools.local_services import ServiceProcess, service_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MIN_RATIO = 0.7

BASELINE_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS baseline;
CREATE TABLE IF NOT EXISTS baseline.reports (
    report_id uuid PRIMARY KEY, case_id uuid NOT NULL, description text NOT NULL, category text,
    lat double precision, lng double precision, channel text NOT NULL,
    submitted_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS baseline.outbox (
    id bigserial PRIMARY KEY, event_id uuid NOT NULL UNIQUE, topic text NOT NULL, key text NOT NULL,
    value bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now()
);
"""


class BaselineReport(BaseModel):
    description: str = Field(min_length=2, max_length=2000)
    category: str | None = None
    lat: float | None = None
    lng: float | None = None
    channel: str = "api"


class BaselineAccepted(BaseModel):
    report_id: UUID
    case_id: UUID


def baseline_app() -> FastAPI:
    """The least a report endpoint can do: validate, insert the report and its outbox row in one
    transaction, answer. (uvicorn bench.intake_throughput:baseline_app --factory)"""
    pools: list[asyncpg.Pool] = []

    async def lifespan(app: FastAPI):
        pool = await asyncpg.create_pool(os.environ["GRIDLINK_DATABASE_URL"], min_size=1, max_size=5)
        async with pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(42)")  # workers starting together
            await conn.execute(BASELINE_SCHEMA)
            await conn.execute("SELECT pg_advisory_unlock(42)")
        pools.append(pool)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/readyz")
    async def ready():
        return {"ready": bool(pools)}

    @app.post("/api/v1/reports", status_code=201)
    async def post_report(report: BaselineReport) -> BaselineAccepted:
        report_id, case_id = uuid4(), uuid4()
        event = {"type": "report.submitted", "report_id": str(report_id), **report.model_dump()}
        async with pools[0].acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO baseline.reports (report_id, case_id, description, category, lat, lng, channel) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                report_id,
                case_id,
                report.description,
                report.category,
                report.lat,
                report.lng,
                report.channel,
            )
            await conn.execute(
                "INSERT INTO baseline.outbox (event_id, topic, key, value) VALUES ($1, $2, $3, $4)",
                uuid4(),
                "gridlink.reports",
                str(case_id),
                json.dumps(event, ensure_ascii=False).encode(),
            )
        return BaselineAccepted(report_id=report_id, case_id=case_id)

    return app


async def saturate(
    url: str, *, clients: int, seconds: float, cpu_of: tuple[int, ...], seed: int
) -> tuple[float, float, dict]:
    """Accepted reports per second with `clients` posting back to back (after a 3 s warm-up), and
    the CPU milliseconds per accepted report of the processes `cpu_of` (the app and PostgreSQL)."""
    maker = ReportMaker(seed=seed)  # each round its own reports: repeats would join earlier cases
    statuses: dict[int, int] = {}
    accepted = 0
    counting = False
    stop_at = time.monotonic() + 3 + seconds

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal accepted
        while time.monotonic() < stop_at:
            r = await client.post(
                "/api/v1/reports", json=maker.body(), headers={"x-forwarded-for": maker.client_address()}
            )
            if counting:
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                accepted += r.status_code == 201

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=clients)) as client:
        loops = [asyncio.create_task(client_loop(client)) for _ in range(clients)]
        await asyncio.sleep(3)
        counting, started, cpu_start = True, time.monotonic(), cpu_seconds(*cpu_of)
        await asyncio.gather(*loops)
        elapsed, cpu = time.monotonic() - started, cpu_seconds(*cpu_of) - cpu_start
    return accepted / elapsed, cpu * 1000 / max(accepted, 1), statuses


async def sustain(url: str, *, rate: float, seconds: float):
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=httpx.Limits(max_connections=400)) as client:
        return await offer_reports(client, ReportMaker(seed=13), rate=rate, seconds=seconds)


def run(args: argparse.Namespace) -> int:
    run_dir = ROOT / ".cache" / f"bench-throughput-{os.getpid()}"
    logs = run_dir / "logs"
    rounds: list[tuple[float, float, float, float]] = []  # baseline rate, CPU; intake rate, CPU
    with local_servers(run_dir) as infra:
        env = service_env(infra, intake_trusted_proxies='["127.0.0.1"]')
        profile = ROOT / ".cache" / "intake-profile.txt"
        profiler = ("-m", "pyinstrument", "-i", "0.005", "-r", "text", "-o", str(profile)) if args.profile else ()
        intake = ServiceProcess("intake", env, logs, workers=1 if args.profile else args.workers, launcher=profiler)
        baseline = ServiceProcess(
            "baseline", env, logs, workers=args.workers, app="bench.intake_throughput:baseline_app"
        )
        processes = [intake, baseline]
        try:
            for process in processes:
                process.start()
            assert intake.process is not None and baseline.process is not None
            postgres = infra.pid("postgres")
            print(
                f"[bench] saturating each with {args.clients} clients for {args.seconds:.0f} s "
                f"({args.workers} workers), alternately, {args.rounds} rounds"
            )
            for n in range(1, args.rounds + 1):
                base_rate, base_cpu, base_statuses = asyncio.run(
                    saturate(
                        baseline.url,
                        clients=args.clients,
                        seconds=args.seconds,
                        cpu_of=(baseline.process.pid, postgres),
                        seed=10 + n,
                    )
                )
                intake_rate, intake_cpu, intake_statuses = asyncio.run(
                    saturate(
                        intake.url,
                        clients=args.clients,
                        seconds=args.seconds,
                        cpu_of=(intake.process.pid, postgres),
                        seed=10 + n,
                    )
                )
                rounds.append((base_rate, base_cpu, intake_rate, intake_cpu))
                print(
                    f"[bench] round {n}: baseline {base_rate:.1f}/s {base_statuses}, intake {intake_rate:.1f}/s "
                    f"{intake_statuses}"
                )
            baseline.stop()
            print(f"[bench] offering intake {args.rate:.0f} reports/s for {args.seconds:.0f} s")
            offered = asyncio.run(sustain(intake.url, rate=args.rate, seconds=args.seconds))
            if args.profile:
                intake.stop(grace_s=180)  # a profile takes a while to write
        finally:
            for process in processes:
                process.stop()
    p50, p99 = percentile(offered.latencies_s, 50) * 1000, percentile(offered.latencies_s, 99) * 1000
    ratios = [i / b for b, _, i, _ in rounds]
    ratio = statistics.median(ratios)
    sustained = offered.answered.get(201, 0) == offered.sent and not offered.failures and p99 < 1000
    print()
    for n, (base_rate, base_cpu, intake_rate, intake_cpu) in enumerate(rounds, 1):
        print(f"round {n}")
        print(
            f"  baseline (FastAPI + asyncpg, 2 inserts)  {base_rate:7.1f} reports/s   "
            f"CPU per report: app + PostgreSQL {base_cpu:5.2f} ms"
        )
        print(
            f"  intake                                   {intake_rate:7.1f} reports/s   "
            f"CPU per report: app + PostgreSQL {intake_cpu:5.2f} ms"
        )
        print(f"  ratio intake / baseline                  {intake_rate / base_rate:7.2f}")
    print(
        f"median ratio intake / baseline           {ratio:7.2f}   (by round: {', '.join(f'{r:.2f}' for r in ratios)}; "
        f"target ≥ {MIN_RATIO})"
    )
    print(
        f"median CPU per report, intake / baseline {statistics.median(i / b for _, b, _, i in rounds):7.2f}   "
        "(the figure other work on the machine moves least)"
    )
    print(
        f"intake offered {args.rate:.0f}/s (open loop)        answers {offered.answered}, "
        f"unanswered {offered.failures}, "
        f"p50 {p50:.0f} ms, p99 {p99:.0f} ms: {'sustained' if sustained else 'NOT sustained'}"
    )
    if args.profile:
        print(f"profile: {profile}")
    return 0 if ratio >= MIN_RATIO and sustained else 1


def main() -> int:
    # A SIGTERM (a timeout, Ctrl-C's cousin) unwinds like an error, so the servers are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=150)
    parser.add_argument("--profile", action="store_true")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
