"""派单 burst benchmark (issue 15, item 7): 20 case.dispatched a second for 60 s into a few
departments, each department's WeCom group robot allowing 20 messages a minute.

Starts its own PostgreSQL, Kafka and MinIO (the scripts `make up` uses, on free ports, in their own run
directory), the fake WeCom server (which enforces 20 messages a minute per robot with errcode
45009) and the notify service as a real process, twice in the same run: once with 派单 digests off
(the baseline: one message per case, the rest waiting for the robot's next minute) and once with
them on. Each run has its own database, topics and robots. Events are produced straight onto the
case topic, the way dispatch publishes them. For every case it takes the time from the event
(its dispatched_at) to the message quoting its case number reaching the fake group, and prints
p50/p99/max for both runs and their ratio. The baseline is cut off a minute after the last event:
cases still queued then count as not reached (its p99 is then "> cutoff").

Exits non-zero if, with digests on, a case was not reached exactly once, WeCom answered 45009,
or the p99 was 60 s or more.

Run: .cache/venv/bin/python bench/notify_burst.py [--rate 20] [--seconds 60] [--departments 4]
"""

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devtools.local_servers import free_port, local_servers, wait_http  # noqa: E402
from devtools.local_services import ServiceProcess, service_env  # noqa: E402
from shared.events import CaseDispatched, new_event  # noqa: E402
from shared.topics import CASES  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGET_P99_S = 60.0
CUTOFF_S = 60.0  # how long after the last event a run waits for its groups to be reached
CATEGORIES = [("manhole", "井盖缺失"), ("exposed_garbage", "暴露垃圾"), ("road_damage", "道路破损")]
GRIDS = ["330727001001001", "330727001001002", "330727001002001", "330727002001001"]
CASE_NO = re.compile(r"[DB]\d{6}")  # D…: the digest run's cases, B…: the baseline's


@dataclass
class Result:
    mode: str
    cases: int
    reached: dict[str, float]  # case number → seconds from its event to its group
    messages: int
    duplicates: int
    rate_limited: int

    def percentile(self, q: float) -> float | None:
        """The q-quantile over every case; None when more than (1-q) of them were not reached."""
        waits = sorted(self.reached.values())
        index = max(int(q * self.cases + 0.5) - 1, 0)
        return waits[index] if index < len(waits) else None


def start_notify(mode: str, *, digest: bool, infra, fake_port: int, run_dir: Path, departments: list[str]):
    """The notify service for one run: its own database, topic prefix and robots."""
    directory = run_dir / f"directory-{mode}.yaml"
    directory.write_text(
        "departments:\n"
        + "".join(
            f'  {d}:\n    robot_key: "{mode}-{d}"\n    mentioned_mobiles: ["13900000301"]\n' for d in departments
        ),
        encoding="utf-8",
    )
    database = f"bench_{mode}"
    asyncio.run(_create_database(infra.database_url("gridlink"), database))
    # notify also parks the photos staff send in MinIO's incoming bucket, so it starts only with one.
    env = service_env(infra, database=database) | {
        "GRIDLINK_TOPIC_PREFIX": f"{mode}.",
        "GRIDLINK_WECOM_BASE_URL": f"http://127.0.0.1:{fake_port}",
        "GRIDLINK_DIRECTORY_PATH": str(directory),
        "GRIDLINK_NOTIFY_DIGEST": "true" if digest else "false",
    }
    # Started as every bench and test starts a service; one that does not come up says why (its log).
    return ServiceProcess("notify", env, run_dir / "logs" / mode).start()


async def _create_database(url: str, name: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def produce(
    mode: str, *, bootstrap: str, rate: float, seconds: float, departments: list[str]
) -> dict[str, float]:
    """case.dispatched at `rate` a second for `seconds`, round-robin over the departments; each
    case number → its event's time (dispatched_at, epoch seconds)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    sent_at: dict[str, float] = {}
    try:
        started = time.monotonic()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(started + i / rate - time.monotonic(), 0))
            category, category_name = CATEGORIES[i % len(CATEGORIES)]
            case_no = f"{mode[0].upper()}{i:06d}"
            now = time.time()
            case = CaseDispatched(
                case_id=uuid4(),
                report_id=uuid4(),
                category=category,
                category_name=category_name,
                priority="urgent" if i % 4 == 0 else "normal",
                department_code=departments[i % len(departments)],
                department_name="压测部门",
                description="压测：路面井盖破损，请尽快处置",
                responsibility_list_version="bench",
                rule="bench",
                dispatched_at=datetime.fromtimestamp(now, UTC),
                grid_code=GRIDS[i % len(GRIDS)],
                jurisdiction_code=GRIDS[i % len(GRIDS)][:12],
                case_no=case_no,
            )
            event = new_event(case, producer="bench", jurisdiction_code="330727", key=str(case.case_id))
            await producer.send(f"{mode}.{CASES.name}", event.to_bytes(), key=str(case.case_id).encode())
            sent_at[case_no] = now
        await producer.flush()
    finally:
        await producer.stop()
    return sent_at


def reached(fake: str, mode: str, departments: list[str], sent_at: dict[str, float]) -> tuple[dict, int, int]:
    """Case number → seconds to its group (first message quoting it), messages, repeated quotes."""
    first: dict[str, float] = {}
    messages = duplicates = 0
    for department in departments:
        for message in httpx.get(f"{fake}/_fake/messages", params={"key": f"{mode}-{department}"}, timeout=60).json():
            messages += 1
            for case_no in CASE_NO.findall(message["body"]["text"]["content"]):
                if case_no in first:
                    duplicates += 1
                    continue
                first[case_no] = message["received_at"] - sent_at[case_no]
    return first, messages, duplicates


def run_mode(mode: str, *, digest: bool, args, infra, fake_port: int, run_dir: Path) -> Result:
    departments = [f"dept{i}" for i in range(args.departments)]
    notify = start_notify(
        mode, digest=digest, infra=infra, fake_port=fake_port, run_dir=run_dir, departments=departments
    )
    fake = f"http://127.0.0.1:{fake_port}"
    try:
        print(f"[bench] {mode}: {args.rate:g} 派单/s for {args.seconds:g} s into {args.departments} groups")
        sent_at = asyncio.run(
            produce(
                mode, bootstrap=infra.kafka_bootstrap, rate=args.rate, seconds=args.seconds, departments=departments
            )
        )
        deadline = time.monotonic() + CUTOFF_S
        while time.monotonic() < deadline:
            found, _, _ = reached(fake, mode, departments, sent_at)
            if len(found) == len(sent_at):
                break
            time.sleep(1)
        found, messages, duplicates = reached(fake, mode, departments, sent_at)
        limited = httpx.get(f"{fake}/_fake/stats", timeout=30).json()["robot_rate_limited"]
        return Result(
            mode,
            len(sent_at),
            found,
            messages,
            duplicates,
            sum(n for key, n in limited.items() if key.startswith(f"{mode}-")),
        )
    finally:
        notify.stop()


def show(value: float | None) -> str:
    return f"> {CUTOFF_S:.0f} s" if value is None else f"{value:6.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="派单 a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the burst lasts")
    parser.add_argument("--departments", type=int, default=4, help="groups the burst is spread over")
    args = parser.parse_args()
    run_dir = ROOT / ".cache" / f"bench-run-{os.getpid()}"
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    with local_servers(run_dir, parts=("postgres", "kafka", "minio")) as infra:
        fake_port = free_port()
        fake = subprocess.Popen(
            [sys.executable, str(ROOT / "deploy" / "local" / "fake_wecom.py"), "--port", str(fake_port)],
            stdout=(run_dir / "logs" / "fake-wecom.log").open("w"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            wait_http(f"http://127.0.0.1:{fake_port}/healthz", fake, 30)
            digest = run_mode("digest", digest=True, args=args, infra=infra, fake_port=fake_port, run_dir=run_dir)
            baseline = run_mode("baseline", digest=False, args=args, infra=infra, fake_port=fake_port, run_dir=run_dir)
        finally:
            fake.terminate()
            fake.wait(20)
    print()
    print(f"{'':24}{'digest on':>14}{'baseline (off)':>18}")
    for label, pick in [
        ("cases", lambda r: f"{r.cases}"),
        ("reached", lambda r: f"{len(r.reached)}"),
        ("robot messages", lambda r: f"{r.messages}"),
        ("45009 answers", lambda r: f"{r.rate_limited}"),
        ("cases quoted twice", lambda r: f"{r.duplicates}"),
        ("p50 event → group", lambda r: show(r.percentile(0.5))),
        ("p99 event → group", lambda r: show(r.percentile(0.99))),
        ("max event → group", lambda r: show(max(r.reached.values()) if len(r.reached) == r.cases else None)),
    ]:
        print(f"{label:24}{pick(digest):>14}{pick(baseline):>18}")
    p99, base_p99 = digest.percentile(0.99), baseline.percentile(0.99)
    if p99 is not None:
        if base_p99 is not None:
            print(f"p99 baseline / digest    {base_p99 / p99:.1f}x")
        else:
            print(f"p99 baseline / digest    > {CUTOFF_S / p99:.1f}x (the baseline's p99 is beyond its cutoff)")
        mean = statistics.fmean(digest.reached.values())
        print(f"mean with digests        {mean:.2f} s")
    print(f"target                   p99 < {TARGET_P99_S:.0f} s with digests: ", end="")
    ok = (
        p99 is not None
        and p99 < TARGET_P99_S
        and len(digest.reached) == digest.cases
        and digest.duplicates == 0
        and digest.rate_limited == 0
    )
    print("met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
