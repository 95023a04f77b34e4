"""Console benchmark: the queue's first page with 10,000 open cases, and the page assets' size.

Starts its own PostgreSQL and Kafka (the scripts `make up` uses, on free ports, in their own run
directory), dispatch and the console as real uvicorn processes talking real HTTP, loads 10,000
open cases of the demo county into dispatch's table, then times, as a logged-in dispatcher:
  - the console's 待接单 page (first page, rendered HTML), the 全部 tab, and a text search;
  - beside them, in the same run, dispatch's own JSON answer for the same first page — the floor
    the console's page is built on — and the ratio of the two.
Prints p50/p95 over repeated requests, the target (first page < 1 s), and the console's script and
style sheet sizes raw and gzipped (target: initial JavaScript < 500 KB gzipped). Exits non-zero when
a target is missed.

Run: .cache/venv/bin/python bench/console_queue.py [--cases 10000] [--requests 40]
"""

import argparse
import asyncio
import gzip
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devtools.local_servers import free_port, local_servers, wait_http  # noqa: E402
from services.console.sessions import csrf_for  # noqa: E402
from shared.auth import Actor, issue_token  # noqa: E402
from shared.jurisdictions import load_county  # noqa: E402
from shared.settings import PROJECT_ROOT  # noqa: E402
from shared.taxonomy import load_taxonomy  # noqa: E402

ROOT = PROJECT_ROOT
PAGE_TARGET_S = 1.0
SCRIPT_TARGET_BYTES = 500 * 1024
STATIC = ROOT / "services" / "console" / "static"


def start(module: str, port: int, env: dict, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "uvicorn", f"services.{module}.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT)


async def load_cases(database_url: str, count: int) -> None:
    """Open cases spread over the demo county's grids and categories, newest last hour first."""
    county = load_county(ROOT / "shared" / "data" / "county.geojson")
    taxonomy = load_taxonomy(ROOT / "shared" / "data" / "taxonomy.yaml")
    grids, categories = list(county.grids.values()), list(taxonomy.categories.values())
    rng = random.Random(7)
    now = datetime.now(UTC)
    records = []
    for n in range(count):
        grid, category = rng.choice(grids), rng.choice(categories)
        created = now - timedelta(seconds=n * 30)
        records.append(
            (
                uuid.uuid4(),
                uuid.uuid4(),
                grid.village_code,
                grid.code,
                rng.choice(("dispatched", "dispatched", "acknowledged", "in_progress")),
                category.code,
                category.name,
                "urgent" if rng.random() < 0.1 else "normal",
                category.department_code,
                taxonomy.department_name(category.department_code),
                f"压测案件 {n}：{category.name}，{grid.name}附近，请尽快处理",
                grid.centroid[0],
                grid.centroid[1],
                f"{created:%Y%m%d}-{n:06d}",
                rng.random() < 0.05,
                created,
                created,
            )
        )
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "dispatch"})
    try:
        await conn.copy_records_to_table(
            "cases",
            records=records,
            columns=[
                "case_id",
                "report_id",
                "jurisdiction_code",
                "grid_code",
                "status",
                "category",
                "category_name",
                "priority",
                "department_code",
                "department_name",
                "description",
                "lat",
                "lng",
                "case_no",
                "overdue",
                "created_at",
                "updated_at",
            ],
        )
        await conn.execute("ANALYZE cases")
    finally:
        await conn.close()


def timed(client: httpx.Client, path: str, requests: int, **kwargs) -> list[float]:
    client.get(path, **kwargs).raise_for_status()  # warm up (connections, caches)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path, **kwargs)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return times


def line(label: str, times: list[float]) -> str:
    p50, p95 = statistics.median(times), sorted(times)[int(len(times) * 0.95) - 1]
    return f"{label:<34} p50 {p50 * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


def run(cases: int, requests: int, env: dict, run_dir: Path) -> int:
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    dispatch_port, console_port = free_port(), free_port()
    database_url = f"postgresql://gridlink@127.0.0.1:{env['GRIDLINK_PG_PORT']}/gridlink"
    common = env | {
        "GRIDLINK_AUTH_JWT_SECRET": secret,
        "GRIDLINK_DATABASE_URL": database_url,
        "GRIDLINK_KAFKA_BOOTSTRAP": f"127.0.0.1:{env['GRIDLINK_KAFKA_PORT']}",
    }
    processes = []
    try:
        dispatch = start("dispatch", dispatch_port, common | {"GRIDLINK_SERVICE_NAME": "dispatch"}, logs / "d.log")
        processes.append(dispatch)
        wait_http(f"http://127.0.0.1:{dispatch_port}/readyz", dispatch, 120)
        console_env = common | {
            "GRIDLINK_SERVICE_NAME": "console",
            "GRIDLINK_CONSOLE_DISPATCH_URL": f"http://127.0.0.1:{dispatch_port}",
        }
        console = start("console", console_port, console_env, logs / "console.log")
        processes.append(console)
        wait_http(f"http://127.0.0.1:{console_port}/readyz", console, 120)
        started = time.monotonic()
        asyncio.run(load_cases(database_url, cases))
        print(f"[bench] {cases} open cases loaded in {time.monotonic() - started:.1f} s")

        dispatcher = Actor(subject="bench", role="dispatcher", jurisdiction_code="330727", name="压测调度员")
        token = issue_token(secret=secret, actor=dispatcher)
        cookies = {"gl_session": token, "gl_csrf": csrf_for(secret, token)}
        html = {"accept": "text/html"}
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{console_port}", cookies=cookies, timeout=30) as console_client,
            httpx.Client(
                base_url=f"http://127.0.0.1:{dispatch_port}", headers={"authorization": f"Bearer {token}"}, timeout=30
            ) as dispatch_client,
        ):
            first = console_client.get("/?tab=open", headers=html)
            rows = first.text.count('<tr data-case="')
            print(f"[bench] the first page lists {rows} cases ({len(first.content) // 1024} KB of HTML)")
            page = timed(console_client, "/?tab=open", requests, headers=html)
            everything = timed(console_client, "/?tab=all", requests, headers=html)
            search = timed(console_client, "/?tab=all&q=附近", requests, headers=html)
            floor = timed(dispatch_client, "/api/v1/cases?status=dispatched&limit=50", requests)

        print()
        print(line("console 待接单, first page (HTML)", page))
        print(line("console 全部, first page (HTML)", everything))
        print(line("console search 「附近」 (HTML)", search))
        print(line("dispatch JSON, same first page", floor))
        ratio = statistics.median(page) / statistics.median(floor)
        print(f"{'console page / dispatch JSON':<34} {ratio:.2f}x (p50)")
        worst = max(sorted(t)[int(len(t) * 0.95) - 1] for t in (page, everything, search))
        print(f"{'target':<34} first page < {PAGE_TARGET_S:.0f} s: {'met' if worst < PAGE_TARGET_S else 'NOT met'}")

        script = (STATIC / "console.js").read_bytes()
        style = (STATIC / "console.css").read_bytes()
        gz_script, gz_style = len(gzip.compress(script)), len(gzip.compress(style))
        print(f"{'console.js':<34} {len(script) / 1024:6.1f} KB raw, {gz_script / 1024:5.1f} KB gzipped")
        print(f"{'console.css':<34} {len(style) / 1024:6.1f} KB raw, {gz_style / 1024:5.1f} KB gzipped")
        print(
            f"{'target':<34} initial script < 500 KB gzipped: {'met' if gz_script < SCRIPT_TARGET_BYTES else 'NOT met'}"
        )
        return 0 if worst < PAGE_TARGET_S and gz_script < SCRIPT_TARGET_BYTES and rows == 50 else 1
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    run_dir = ROOT / ".cache" / f"bench-run-{os.getpid()}"
    with local_servers(run_dir, parts=("postgres", "kafka")) as infra:
        env = {
            **os.environ,
            "GRIDLINK_PG_PORT": str(infra.pg_port),
            "GRIDLINK_KAFKA_PORT": infra.kafka_bootstrap.rsplit(":", 1)[1],
        }
        return run(args.cases, args.requests, env, run_dir)


if __name__ == "__main__":
    sys.exit(main())
