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


async def test_request_bodies_are_limited_with_a_problem_answer():
    from services.dispatch.app import create_app as dispatch_app
    from services.dispatch.settings import DispatchSettings

    app = dispatch_app(DispatchSettings(service_name="dispatch", http_max_body_bytes=4096, auth_dev_issuer=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dispatch") as client:
        person = {"subject": "d1", "role": "dispatcher", "jurisdiction_code": "330727"}
        assert (await client.post("/api/v1/auth/dev-tokens", json=person)).status_code == 201
        big = await client.post("/api/v1/auth/dev-tokens", json=person | {"name": "x" * 10_000})

        async def stream():  # no Content-Length: counted as it arrives
            for _ in range(10):
                yield b" " * 1000

        streamed = await client.post(
            "/api/v1/auth/dev-tokens", content=stream(), headers={"content-type": "application/json"}
        )
    for refused in (big, streamed):
        assert refused.status_code == 413, refused.text
        assert refused.headers["content-type"] == "application/problem+json" and refused.json()["status"] == 413


async def test_only_the_routes_that_take_files_read_past_the_service_wide_limit():
    """Intake's report form takes photos, so its limit is theirs; Open311's form and the JSON
    routes beside it are refused past the small limit before anything parses them."""
    from services.intake.app import create_app as intake_app
    from services.intake.settings import IntakeSettings

    settings = IntakeSettings(service_name="intake", http_max_body_bytes=4096, media_image_max_bytes=8192)
    report_limit = settings.intake_max_photos * 8192 + 4096
    app = intake_app(settings)
    app.router.lifespan_context = no_lifespan
    big = {"api_key": "x" * 10_000}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        open311 = await client.post("/open311/v2/requests.json", data=big)
        query = await client.post("/api/v1/query", json={"case_no": "x" * 10_000})
        # The report route reads it (and then finds no runtime here: anything but 413 will do).
        report = await client.post("/api/v1/reports", json={"description": "x" * 10_000})
        huge = await client.post("/api/v1/reports", content=b"x" * (report_limit + 1))
    for refused in (open311, query, huge):
        assert refused.status_code == 413, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert "4 KB" in open311.json()["detail"]
    assert report.status_code != 413
