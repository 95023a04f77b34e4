"""The HTTP surface every service shares: problem+json errors, latency metrics, health routes."""

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared import metrics
from shared.problems import install_problem_handlers
from shared.settings import Settings


def create_service_app(
    settings: Settings, *, title: str, lifespan: Callable[[FastAPI], AbstractAsyncContextManager]
) -> FastAPI:
    """A FastAPI app with /healthz, /readyz, /metrics; the lifespan sets `app.state.runtime`."""
    app = FastAPI(title=title, lifespan=lifespan)
    app.state.settings = settings
    install_problem_handlers(app)
    if settings.cors_origins:  # pages served from another origin (the H5 form uploading photos to media)
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "PUT"],
                           allow_headers=["*"])

    @app.middleware("http")
    async def observe_latency(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        # The route template (not the raw path) keeps label cardinality bounded.
        template = getattr(route, "path", "unmatched")
        metrics.HTTP_REQUEST_DURATION.labels(
            settings.service_name, request.method, template, str(response.status_code)
        ).observe(time.perf_counter() - started)
        return response

    @app.get("/healthz", include_in_schema=False)
    async def healthz():
        return {"status": "ok", "service": settings.service_name}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request):
        runtime = getattr(request.app.state, "runtime", None)
        checks = await runtime.readiness() if runtime else {"startup": "not finished"}
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint():
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
