"""Every service's web shell: health, problem answers, and CORS only where configured."""

from contextlib import asynccontextmanager

import httpx

from shared.settings import ServiceSettings
from shared.web import create_service_app


@asynccontextmanager
async def no_lifespan(app):
    yield


async def preflight(settings: ServiceSettings) -> httpx.Response:
    app = create_service_app(settings, title="t", lifespan=no_lifespan)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://media") as client:
        assert (await client.get("/healthz")).json() == {"status": "ok", "service": settings.service_name}
        return await client.options(
            "/api/v1/media", headers={"origin": "http://127.0.0.1:8001", "access-control-request-method": "POST"}
        )


async def test_cors_answers_only_for_configured_origins():
    allowed = await preflight(ServiceSettings(service_name="media", cors_origins=["http://127.0.0.1:8001"]))
    assert allowed.headers["access-control-allow-origin"] == "http://127.0.0.1:8001"
    closed = await preflight(ServiceSettings(service_name="media"))
    assert "access-control-allow-origin" not in closed.headers
