"""Latency benchmark: report accepted by intake → `case.dispatched` on Kafka, beside the raw Kafka
floor measured on the same broker in the same run.

Starts its own PostgreSQL, Kafka and MinIO (devtools/local_servers.py, free ports, own run
directory) and intake and dispatch as real uvicorn processes; offers reports at --rate per second
over HTTP for --seconds (open loop, from many client addresses). For each report answered 201 (and
not attached to an existing case), the time from the answer to its case.dispatched being consumed
from gridlink.cases (read_committed, like the services' consumers). Meanwhile a separate process
measures produce(acks=all, idempotent) → consume on the same broker at the same rate: the floor a
relay-and-consume pipeline cannot beat. Prints p50/p99 of both and the ratio; exits non-zero when
the p99 misses --target-ms or a case was not dispatched.

Run: .cache/venv/bin/python bench/pipeline_latency.py [--rate 50] [--seconds 40]
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.reports_load import ReportMaker, offer_reports, percentile  # noqa: E402
from devtools.local_servers import local_servers  # noqa: E402
from devtools.local_services import ServiceProcess, service_env  # noqa: E402
from shared.kafka import create_producer  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402
from shared.topics import CASES  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WARMUP_S = 5.0  # first reports (connections opening, first queries planned) are not counted


async def kafka_floor(bootstrap: str, rate: float, seconds: float) -> list[float]:
    """produce(acks=all) → consume latencies (s) at `rate`/s, with the relay's producer settings."""
    topic = f"bench.floor.{os.getpid()}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = create_producer(ServiceSettings(service_name="bench", kafka_bootstrap=bootstrap))  # the relay's
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", isolation_level="read_committed"
    )
    await producer.start()
    await consumer.start()
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    total = int(rate * seconds)

    async def consume() -> None:
        while len(latencies) < total:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                now = time.perf_counter()
                for r in records:
                    latencies.append(now - sent_at[int(r.value)])

    try:
        reading = asyncio.create_task(consume())
        begin = time.perf_counter()
        for i in range(total):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[i] = time.perf_counter()
            await producer.send(topic, str(i).encode(), key=str(i).encode())
        await asyncio.wait_for(reading, 30)
    finally:
        await producer.stop()
        await consumer.stop()
    return latencies[int(rate * WARMUP_S) :]


async def measure_pipeline(intake: str, bootstrap: str, rate: float, seconds: float) -> dict:
    consumer = AIOKafkaConsumer(
        CASES.name, bootstrap_servers=bootstrap, auto_offset_reset="latest", isolation_level="read_committed"
    )
    await consumer.start()
    await consumer.seek_to_end()
    dispatched_at: dict[str, float] = {}
    accepted_at: dict[str, float] = {}
    reading = True

    async def consume() -> None:
        while reading:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                now = time.perf_counter()
                for r in records:
                    event = json.loads(r.value)
                    if event["type"].startswith("case.dispatched"):
                        dispatched_at.setdefault(event["payload"]["case_id"], now)

    def accepted(answer: dict, at: float) -> None:
        if not answer["attached_to_case"]:
            accepted_at[answer["case_id"]] = at

    task = asyncio.create_task(consume())
    try:
        async with httpx.AsyncClient(base_url=intake, timeout=30, limits=httpx.Limits(max_connections=200)) as client:
            begin = time.perf_counter()
            offered = await offer_reports(client, ReportMaker(), rate=rate, seconds=seconds, on_accepted=accepted)
        deadline = time.monotonic() + 30
        while set(accepted_at) - set(dispatched_at) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        reading = False
        await task
        await consumer.stop()
    counted = {c: t for c, t in accepted_at.items() if t - begin >= WARMUP_S}
    latencies = [max(dispatched_at[c] - t, 0.0) for c, t in counted.items() if c in dispatched_at]
    return {
        "offered": offered,
        "cases": len(accepted_at),
        "missing": len(set(accepted_at) - set(dispatched_at)),
        "latencies": latencies,
    }


def floor_main(bootstrap: str, rate: float, seconds: float) -> None:
    print(json.dumps(asyncio.run(kafka_floor(bootstrap, rate, seconds))))


def run(rate: float, seconds: float, target_ms: float) -> int:
    run_dir = ROOT / ".cache" / f"bench-latency-{os.getpid()}"
    with local_servers(run_dir) as infra:
        env = service_env(infra, intake_trusted_proxies='["127.0.0.1"]')
        services = [ServiceProcess(name, env, run_dir / "logs") for name in ("dispatch", "intake")]
        try:
            for service in services:
                service.start()
            dispatch, intake = services
            print(f"[bench] intake and dispatch up; offering {rate:.0f} reports/s for {seconds:.0f} s")
            floor = subprocess.Popen(
                [sys.executable, __file__, "--floor", infra.kafka_bootstrap, str(rate), str(seconds)],
                stdout=subprocess.PIPE,
                cwd=ROOT,
            )
            # Bounded: a starved machine must end the bench with an error, not hang it.
            result = asyncio.run(
                asyncio.wait_for(measure_pipeline(intake.url, infra.kafka_bootstrap, rate, seconds), seconds + 120)
            )
            floor_out, _ = floor.communicate(timeout=120)
            kafka = json.loads(floor_out)
        finally:
            for service in services:
                service.stop()
    offered, latencies = result["offered"], result["latencies"]
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    k50, k99 = percentile(kafka, 50) * 1000, percentile(kafka, 99) * 1000
    http50, http99 = percentile(offered.latencies_s, 50) * 1000, percentile(offered.latencies_s, 99) * 1000
    print()
    print(f"offered                        {offered.sent} reports at {rate:.0f}/s; answers {offered.answered}")
    print(f"  POST /api/v1/reports         p50 {http50:6.1f} ms   p99 {http99:6.1f} ms")
    print(f"new cases                      {result['cases']}  (not dispatched within 30 s: {result['missing']})")
    print(f"accepted → case.dispatched     p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   ({len(latencies)} after warm-up)")
    print(f"Kafka produce → consume floor  p50 {k50:6.1f} ms   p99 {k99:6.1f} ms   (acks=all, same broker, same run)")
    print(f"ratio p99 pipeline / floor     {p99 / k99:.1f}x   (the pipeline crosses Kafka twice)")
    print(f"target p99 ≤ {target_ms:.0f} ms              {'met' if p99 <= target_ms else 'NOT met'}")
    return 0 if p99 <= target_ms and not result["missing"] and not offered.failures else 1


def main() -> int:
    # A SIGTERM (a timeout, Ctrl-C's cousin) unwinds like an error, so the servers are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if len(sys.argv) == 5 and sys.argv[1] == "--floor":
        floor_main(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--target-ms", type=float, default=60)
    args = parser.parse_args()
    return run(args.rate, args.seconds, args.target_ms)


if __name__ == "__main__":
    sys.exit(main())
