"""Test fixtures: real Kafka, PostgreSQL, MinIO and the OpenID Connect provider started once per
session (by the same scripts `make up` uses, on free ports and in their own run directory), a
template database copied for each test, per-test topic prefixes, the local fake WeCom server, and
the county map the project ships."""

import os
import subprocess
import sys
import time
import uuid

import asyncpg
import httpx
import pytest

from devtools.local_servers import Infra, free_port, local_servers
from services.intake.settings import IntakeSettings
from shared.db import apply_migrations, create_pool
from shared.jurisdictions import County, load_county
from shared.settings import PROJECT_ROOT, ServiceSettings
from tests.support import SETTINGS_CLASSES

SERVICES = ("intake", "dispatch", "sla", "notify", "media")


@pytest.fixture(scope="session")
def county() -> County:
    """The county map the project ships (the demo county), as services load it."""
    return load_county(IntakeSettings().county_map_path)


@pytest.fixture(scope="session")
def infra():
    """Real servers for this test session; stopped (and their data removed) at the end."""
    with local_servers(PROJECT_ROOT / ".cache" / f"test-run-{os.getpid()}") as servers:
        yield servers


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
        settings = SETTINGS_CLASSES[service](service_name=service, database_url=infra.database_url(TEMPLATE_DB))
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
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
                raise RuntimeError("fake WeCom server did not start") from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
def make_settings(infra: Infra, database_url: str, fake_wecom: str):
    """Settings for one service in this test: fresh database, own topics and groups, own bucket."""
    prefix = f"t{uuid.uuid4().hex[:10]}."

    def make(service: str, **overrides) -> ServiceSettings:
        cls = SETTINGS_CLASSES[service]
        # The settings classes ignore unknown names: refuse them here, so a typo or another
        # service's setting fails the test instead of silently leaving the default in place.
        unknown = set(overrides) - set(cls.model_fields)
        if unknown:
            raise TypeError(f"{cls.__name__} has no setting {', '.join(sorted(unknown))}")
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
            auth_oidc_issuer=infra.oidc_issuer,
            consumer_retry_backoff_s=0.01,
            consumer_retry_max_backoff_s=0.5,
            notify_retry_base_s=0.05,
            sla_tick_interval_s=0.05,
        )
        # The test values above go to whichever services have those settings.
        values = {name: value for name, value in values.items() if name in cls.model_fields} | overrides
        return cls(**values)

    return make
