"""Helpers for tests that run services in-process against the real servers."""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.dispatch.settings import DispatchSettings
from services.intake.settings import IntakeSettings
from services.media.settings import MediaSettings
from services.notify.settings import NotifySettings
from services.sla.settings import SlaSettings
from shared.settings import PROJECT_ROOT, ServiceSettings

INFRA = PROJECT_ROOT / "deploy" / "local" / "infra.sh"

# Each service's settings class, for tests that build settings by service name.
SETTINGS_CLASSES: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings, "dispatch": DispatchSettings, "sla": SlaSettings, "notify": NotifySettings,
    "media": MediaSettings,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    pg_port: int
    minio_endpoint: str
    minio_user: str
    minio_password: str

    def database_url(self, name: str) -> str:
        return f"postgresql://gridlink@127.0.0.1:{self.pg_port}/{name}"


@contextmanager
def local_servers(run_dir: Path, parts: tuple[str, ...] = ("all",)):
    """Real Kafka, PostgreSQL and MinIO started by the same script as `make up`, on free ports and
    in their own run directory (so they never meet `make up`'s); stopped and removed afterwards."""
    env = {
        **os.environ,
        "GRIDLINK_RUN_DIR": str(run_dir),
        "GRIDLINK_KAFKA_PORT": str(free_port()),
        "GRIDLINK_KAFKA_CONTROLLER_PORT": str(free_port()),
        "GRIDLINK_PG_PORT": str(free_port()),
        "GRIDLINK_MINIO_PORT": str(free_port()),
        "GRIDLINK_MINIO_CONSOLE_PORT": str(free_port()),
        "MINIO_ROOT_USER": "gridlink-test",
        "MINIO_ROOT_PASSWORD": "gridlink-test-secret",
        "GRIDLINK_PG_EPHEMERAL": "1",  # the data is thrown away: no fsync
    }
    try:
        for part in parts:
            subprocess.run([str(INFRA), "start", part], env=env, check=True)
        yield Infra(
            kafka_bootstrap=f"127.0.0.1:{env['GRIDLINK_KAFKA_PORT']}",
            pg_port=int(env["GRIDLINK_PG_PORT"]),
            minio_endpoint=f"127.0.0.1:{env['GRIDLINK_MINIO_PORT']}",
            minio_user=env["MINIO_ROOT_USER"],
            minio_password=env["MINIO_ROOT_PASSWORD"],
        )
    finally:
        subprocess.run([str(INFRA), "stop"], env=env, check=False)
        shutil.rmtree(run_dir, ignore_errors=True)


@asynccontextmanager
async def running(app):
    """Run an app's lifespan (pool, consumer, relay…) and give an HTTP client for it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def eventually(check, *, timeout: float = 15.0, interval: float = 0.1):
    """Poll an async check until it returns a truthy value (for effects that cross Kafka)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last result: {result!r})")
        await asyncio.sleep(interval)


async def read_topic(settings: ServiceSettings, topic_name: str, *, until, timeout: float = 15.0) -> list[dict]:
    """Read a topic from the beginning until `until(messages)` is true; messages as JSON dicts."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic_name), bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
    )
    await consumer.start()
    messages: list[dict] = []
    try:
        deadline = time.monotonic() + timeout
        while not until(messages):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic_name}: condition not met; got {messages!r}")
            for records in (await consumer.getmany(timeout_ms=200)).values():
                messages.extend(json.loads(r.value) for r in records)
        return messages
    finally:
        await consumer.stop()


async def publish(settings: ServiceSettings, topic_name: str, *values: bytes) -> None:
    """Produce raw messages to a topic, as another department's system would."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(settings.topic(topic_name), value, key=b"k")
    finally:
        await producer.stop()


def bearer(settings: ServiceSettings, role: str, jurisdiction_code: str = "330727", department_code: str | None = None,
           subject: str | None = None) -> dict[str, str]:
    """Authorization headers for a test actor, signed with the settings' key."""
    from shared.auth import Actor, issue_token

    actor = Actor(subject=subject or f"{role}-{department_code or jurisdiction_code}", role=role,
                  jurisdiction_code=jurisdiction_code, department_code=department_code)
    return {"authorization": f"Bearer {issue_token(secret=settings.auth_jwt_secret, actor=actor)}"}


def load_fake_wecom():
    """The fake WeCom/WeChat server module (a script under deploy/local, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fake_wecom", PROJECT_ROOT / "deploy" / "local" / "fake_wecom.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeClock:
    """A monotonic clock a test moves by hand."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now
