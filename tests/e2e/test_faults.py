"""Fault injection: the five services as real processes on their own Kafka, PostgreSQL and MinIO,
under a steady trickle of residents' reports. Each server and each service is killed with
SIGKILL and started again, and PostgreSQL goes down while dispatch works through a backlog. Then
every accepted report is exactly one case, every case's 派单 reached its department's group exactly
once, and nothing was dead-lettered.

Clients behave as the H5 form does: a report keeps its Idempotency-Key and is sent again after a
refused connection, a timeout or a 5xx, until intake answers 201 or 200.

Select with `-m faults` (or leave out with `-m "not faults"`); about two to three minutes."""

import asyncio
import os
import shutil
import time
from collections import Counter
from contextlib import suppress
from uuid import uuid4

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from devtools.local_servers import local_servers
from devtools.local_services import ServiceProcess, service_env
from devtools.reports import ReportMaker
from shared.settings import PROJECT_ROOT
from shared.topics import DEAD_LETTERS

pytestmark = pytest.mark.faults

SERVICES = ("intake", "dispatch", "sla", "notify", "media")
REPORTS_PER_S = 2.0  # spread over ~30 departments: far below each group robot's 20 messages a minute
DOWN_S = 2.0
KEPT_LOGS = PROJECT_ROOT / ".cache" / "fault-test-logs"


@pytest.fixture(scope="module")
def stack():
    """Own servers (the session's must not be killed under other tests) and the services on them."""
    with local_servers(PROJECT_ROOT / ".cache" / f"fault-run-{os.getpid()}", durable=True) as infra:
        logs = infra.run_dir / "logs"  # type: ignore[operator]
        fake = ServiceProcess("fake-wecom", dict(os.environ), logs).start()
        env = service_env(
            infra,
            wecom_base_url=fake.url,
            wechat_base_url=fake.url,
            sms_base_url=fake.url,
            intake_rate_limit_ip_per_minute="100000",  # one test client stands for many residents
            consumer_retry_max_backoff_s="1",
            notify_retry_base_s="0.2",
            # Known gap (issue 15, open): with 派单 digests on, a digest in flight at a kill -9 goes
            # again with every case in it (seen: cases quoted 2–3 times); one by one, only the few
            # 派单 in flight can repeat (see the bound asserted below).
            notify_digest="false",
        )
        services = {name: ServiceProcess(name, env, logs) for name in SERVICES}
        try:
            for service in services.values():  # side by side: each waits mostly for Kafka
                service.start(wait_s=None)
            for service in services.values():
                service.wait_ready(180)
            yield infra, services, fake
        finally:
            for service in services.values():
                service.stop(grace_s=5)
            fake.stop()
            # The servers' data goes with their run directory; the logs are kept for a failure.
            shutil.rmtree(KEPT_LOGS, ignore_errors=True)
            shutil.copytree(logs, KEPT_LOGS)


class Residents:
    """Reports at a steady rate, each sent until intake accepts it (same Idempotency-Key)."""

    def __init__(self, intake_url: str):
        self.maker = ReportMaker(seed=5)
        self.client = httpx.AsyncClient(base_url=intake_url, timeout=5)
        self.accepted: dict[str, dict] = {}  # Idempotency-Key → intake's answer
        self.retries = Counter[str]()
        self.tasks: set[asyncio.Task] = set()
        self.stopping = False

    async def report(self) -> None:
        body = self.maker.body()
        key = str(uuid4())
        while True:
            try:
                r = await self.client.post("/api/v1/reports", json=body, headers={"idempotency-key": key})
                if r.status_code in (200, 201):
                    self.accepted[key] = r.json()
                    return
                assert r.status_code >= 500, r.text  # 4xx would be the test's own mistake
                self.retries[str(r.status_code)] += 1
            except httpx.HTTPError as exc:
                self.retries[type(exc).__name__] += 1
            await asyncio.sleep(0.5)

    async def run(self) -> None:
        while not self.stopping:
            task = asyncio.create_task(self.report())
            self.tasks.add(task)
            await asyncio.sleep(1 / REPORTS_PER_S)

    async def finish(self) -> None:
        self.stopping = True
        await asyncio.wait_for(asyncio.gather(*self.tasks), 120)
        await self.client.aclose()


async def all_ready(services: dict[str, ServiceProcess], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=3) as client:
        for service in services.values():
            while True:
                with suppress(httpx.HTTPError):
                    if (await client.get(f"{service.url}/readyz")).status_code == 200:
                        break
                assert time.monotonic() < deadline, f"{service.name} not ready again"
                await asyncio.sleep(0.3)


async def restart_server(infra, part: str) -> None:
    infra.kill(part)  # the port stays closed until the start below: DOWN_S plus the server's own start
    await asyncio.sleep(DOWN_S)
    for attempt in range(5):  # a killed postmaster's backends take a moment to let go of its memory
        try:
            await asyncio.to_thread(infra.start, part)
            return
        except Exception:
            if attempt == 4:
                raise
            await asyncio.sleep(1)


async def restart_service(service: ServiceProcess) -> None:
    service.kill()
    await asyncio.to_thread(service.start)


async def test_nothing_is_lost_or_doubled_when_anything_is_killed(stack):
    infra, services, fake = stack
    started = time.monotonic()

    def log(what: str) -> None:  # shown with the failure, or with -s: where the minutes go
        print(f"[faults] {time.monotonic() - started:6.1f}s {what}")

    residents = Residents(services["intake"].url)
    load = asyncio.create_task(residents.run())
    await asyncio.sleep(3)
    for part in ("kafka", "postgres", "minio"):
        await restart_server(infra, part)
        await all_ready(services)
        log(f"{part} killed, restarted, every service ready again")
    for service in services.values():
        await restart_service(service)
        await all_ready(services)
        log(f"{service.name} killed, restarted, every service ready again")
    # A backlog for dispatch (it is down while reports arrive), then PostgreSQL dies as it catches up.
    services["dispatch"].kill()
    await asyncio.sleep(5)
    await asyncio.to_thread(services["dispatch"].start)
    await restart_server(infra, "postgres")
    await all_ready(services)
    log("postgres killed during dispatch's backlog; every service ready again")
    load.cancel()
    await residents.finish()
    log(f"{len(residents.accepted)} reports accepted; retries {dict(residents.retries)}")

    answers = list(residents.accepted.values())
    new_cases = {a["case_id"]: a["case_no"] for a in answers if not a["attached_to_case"]}
    assert len(answers) >= 60 and residents.retries, (len(answers), residents.retries)

    db = await asyncpg.connect(infra.database_url("gridlink"))
    try:

        async def dispatched() -> bool:
            rows = await db.fetch("SELECT case_id::text FROM dispatch.cases")
            return {r["case_id"] for r in rows} >= set(new_cases)

        async def missing() -> str:
            found = {r["case_id"] for r in await db.fetch("SELECT case_id::text FROM dispatch.cases")}
            lost = set(new_cases) - found
            outbox = await db.fetchval("SELECT count(*) FROM intake.outbox")
            return f"{len(lost)} of {len(new_cases)} cases missing, {outbox} in intake's outbox; logs in {KEPT_LOGS}"

        await wait_for(dispatched, 90, explain=missing)
        case_ids = [r["case_id"] for r in await db.fetch("SELECT case_id::text FROM dispatch.cases")]
        assert sorted(case_ids) == sorted(new_cases)  # each accepted report's case once, no other
        assert await db.fetchval("SELECT count(*) FROM intake.reports") == len(answers)
    finally:
        await db.close()

    async with httpx.AsyncClient(base_url=fake.url, timeout=10) as client:

        async def announced() -> Counter[str]:
            messages = (await client.get("/_fake/messages")).json()
            texts = [str(m["body"]) for m in messages]
            # One by one (【派单】) or, when a group's robot has spent its minute, in a digest (【派单汇总】).
            dispatches = [t for t in texts if "【派单】" in t or "【派单汇总】" in t]
            return Counter(no for no in new_cases.values() for t in dispatches if no in t)

        async def every_case_announced() -> bool:
            return set(await announced()) == set(new_cases.values())

        await wait_for(every_case_announced, 90)
        log("every case dispatched and announced")
        await asyncio.sleep(2)  # a second copy would be sent by now
        counts = await announced()
        # WeCom robots take no idempotency key: a message the robot accepted just before a kill -9
        # of notify (or of PostgreSQL, before "sent" committed) goes again once its lease expires.
        # Only a message in flight at a kill can repeat, and only once: three kills reach that window
        # (notify's, and PostgreSQL's two), each while a few 派单 at most are in flight.
        repeated = {no: n for no, n in counts.items() if n != 1}
        assert all(n == 2 for n in repeated.values()) and len(repeated) <= 3, counts

    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(DEAD_LETTERS.name, 0)])
        assert list(ends.values()) == [0]
    finally:
        await consumer.stop()


async def wait_for(check, seconds: float, explain=None) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{check.__name__} not true within {seconds}s: {explain and await explain()}")
        await asyncio.sleep(0.5)
