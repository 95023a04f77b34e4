"""Test fixtures: real Kafka, PostgreSQL and MinIO started once per session (by the same scripts
`make up` uses, on free ports and in their own run directory), a template database copied for
each test, per-test topic prefixes, and the local fake WeCom server."""

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from shared.db import apply_migrations, create_pool
from shared.settings import PROJECT_ROOT, Settings

SERVICES = ("intake", "dispatch", "sla", "notify", "media")
INFRA = PROJECT_ROOT / "deploy" / "local" / "infra.sh"


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


@pytest.fixture(scope="session")
def infra():
    """Real servers for this test session; stopped (and their data removed) at the end."""
    run_dir = PROJECT_ROOT / ".cache" / f"test-run-{os.getpid()}"
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
        "GRIDLINK_PG_EPHEMERAL": "1",  # test data is thrown away: no fsync
    }
    subprocess.run([str(INFRA), "start"], env=env, check=True)
    try:
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


TEMPLATE_DB = "gridlink_template"


@pytest.fixture(scope="session")
async def template_database(infra: Infra) -> str:
    """A database with every service's migrations applied once; tests get copies of it."""
    admin = await asyncpg.connect(infra.database_url("postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        await admin.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    finally:
        await admin.close()
    for service in SERVICES:
        settings = Settings(service_name=service, database_url=infra.database_url(TEMPLATE_DB))
        pool = await create_pool(settings)
        try:
            await apply_migrations(pool, schema=service, service_dir=PROJECT_ROOT / "services" / service)
        finally:
            await pool.close()
    return TEMPLATE_DB


@pytest.fixture
async def database_url(infra: Infra, template_database: str) -> str:
    """A fresh database for one test, copied from the template."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(infra.database_url("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    finally:
        await admin.close()
    return infra.database_url(name)


@pytest.fixture(scope="session")
def fake_wecom():
    """The local fake WeCom robot server (a real HTTP server) on a free port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "deploy" / "local" / "fake_wecom.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{url}/healthz").raise_for_status()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("fake WeCom server did not start")
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
def make_settings(infra: Infra, database_url: str, fake_wecom: str):
    """Settings for one service in this test: fresh database, own topics and groups, own bucket."""
    prefix = f"t{uuid.uuid4().hex[:10]}."

    def make(service: str, **overrides) -> Settings:
        values = dict(
            service_name=service,
            database_url=database_url,
            kafka_bootstrap=infra.kafka_bootstrap,
            topic_prefix=prefix,
            minio_endpoint=infra.minio_endpoint,
            minio_access_key=infra.minio_user,
            minio_secret_key=infra.minio_password,
            media_bucket=f"media-{prefix.rstrip('.')}",
            wecom_base_url=fake_wecom,
            consumer_retry_backoff_s=0.01,
            notify_retry_base_s=0.05,
            sla_tick_interval_s=0.05,
        )
        values.update(overrides)
        return Settings(**values)

    return make
