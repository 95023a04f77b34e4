"""Metrics that dashboards and alerts rely on say what happened: an unhandled exception counts as the
500 the client got; the SLA calendar says how long it still covers and when it was missing."""

from contextlib import asynccontextmanager

import httpx
from prometheus_client import REGISTRY

from shared.settings import ServiceSettings
from shared.web import create_service_app, public


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_an_unhandled_exception_is_counted_as_the_500_it_becomes():
    @asynccontextmanager
    async def lifespan(app):
        yield

    app = create_service_app(ServiceSettings(service_name="crashy"), title="t", lifespan=lifespan)

    @app.get("/boom")
    @public("a test route that fails")
    async def boom():
        raise RuntimeError("a bug")

    labels = {"service": "crashy", "method": "GET", "route": "/boom", "status": "500"}
    before = sample("gridlink_http_request_duration_seconds_count", labels)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/boom")).status_code == 500
    assert sample("gridlink_http_request_duration_seconds_count", labels) == before + 1
