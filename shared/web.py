"""The HTTP surface every service shares: problem+json errors, latency metrics, health routes,
and the dependencies routes use — the runtime, a database connection, the current actor.

Private by default: every route of every service needs a valid bearer token unless its endpoint
is declared `@public("why")`. The check is one app-wide dependency, so a route someone forgets
to think about is closed, not open; `tests/unit/test_routes.py` asks every route of every service.
"""

import functools
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import logs, metrics, tracing
from shared.auth import Actor, InvalidToken, ProviderUnavailable, TokenVerifier
from shared.problems import Problem, install_problem_handlers, problem_response
from shared.service import Runtime
from shared.settings import ServiceSettings

# FastAPI's own pages: the API's description (what other departments integrate against), no data.
DOCUMENTATION_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


def public(reason: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a route open to callers without a token. The reason is required and is the
    written-down answer to "why is this open?" (a health probe, a resident page, a callback that
    carries the platform's own signature)."""
    if not reason.strip():
        raise ValueError("a public route needs its reason")

    def mark(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        endpoint.public_reason = reason  # type: ignore[attr-defined]
        return endpoint

    return mark


def public_reason(route: Any) -> str | None:
    """Why a route is public, or None for a private one."""
    return getattr(getattr(route, "endpoint", None), "public_reason", None)


def _bearer_actor(request: Request) -> Actor | None:
    """The actor of the request's bearer token; None without one; 401 for an invalid one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not token and not scheme:
        return None
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401, "Authentication required", "请使用 Authorization: Bearer <令牌> 发送登录令牌。", kind="unauthenticated"
        )
    return verify_bearer(request, token.strip())


def verify_bearer(request: Request, token: str) -> Actor:
    """The actor of a token, with the app's verifier; 401 for an invalid token, 503 while the
    identity provider's keys cannot be fetched."""
    try:
        return request.app.state.token_verifier.verify(token)
    except InvalidToken as error:
        raise Problem(401, "Invalid token", f"登录令牌无效（{error}），请重新登录。", kind="unauthenticated") from None
    except ProviderUnavailable:
        raise Problem(
            503,
            "Identity provider unavailable",
            "统一身份认证服务暂时无法访问，请稍后再试。",
            kind="temporarily-unavailable",
        ) from None


async def authenticate(request: Request) -> None:
    """App-wide dependency: a private route without a valid token answers 401 before anything else."""
    if public_reason(request.scope.get("route")) is None:
        request.state.actor = current_actor(request)


def current_actor(request: Request) -> Actor:
    """The authenticated actor of a private route (or 401 on a public route without a token)."""
    actor = getattr(request.state, "actor", None) or _bearer_actor(request)
    if actor is None:
        raise Problem(
            401, "Authentication required", "请先登录：发送 Authorization: Bearer <令牌>。", kind="unauthenticated"
        )
    return actor


def optional_actor(request: Request) -> Actor | None:
    """On a public route: the caller's actor when they sent a token (staff), else None (residents)."""
    return getattr(request.state, "actor", None) or _bearer_actor(request)


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def get_connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    """One pooled connection for the request, returned when the response is done."""
    async with get_runtime(request).pool.acquire() as conn:
        yield conn


CurrentActor = Annotated[Actor, Depends(current_actor)]
OptionalActor = Annotated[Actor | None, Depends(optional_actor)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Connection = Annotated[asyncpg.Connection, Depends(get_connection)]


class _TooLarge(StarletteHTTPException):
    """A body that grew past the limit while it was read: FastAPI passes HTTP exceptions on, and
    the problem handlers answer it as 413 problem+json."""

    def __init__(self, limit: int):
        super().__init__(413, f"请求内容不能超过 {limit // 1024} KB；照片请压缩后再传，视频请用大文件上传。")


class BodyLimit:
    """Refuse a request body over `limit` bytes with 413 problem+json: a declared length before
    anything is read, a streamed body as soon as it grows past the limit. The routes that take
    files, and only they, have their own larger limit (`larger`, by method and path), so a JSON or
    form route is never read past the small one."""

    def __init__(self, app: ASGIApp, *, limit: int, larger: Mapping[tuple[str, str], int] | None = None):
        self.app, self.default, self.larger = app, limit, dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get((scope["method"], scope["path"]), self.default)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received, started = 0, False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        detail = str(_TooLarge(limit).detail)
        response = problem_response(Request(scope), 413, "Request too large", detail, kind="request-too-large")
        await response(scope, receive, send)


@functools.cache
def contract() -> dict[str, Any]:
    """The AsyncAPI document, built once per process (it depends on the code only)."""
    from shared.asyncapi import build_document  # imports every event model: only when asked

    return build_document()


class ObserveLatency:
    """Every request's duration by route template (not the raw path: label cardinality stays
    bounded) and status. Plain ASGI: a BaseHTTPMiddleware costs each request a task and a stream."""

    def __init__(self, app: ASGIApp, *, service: str):
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # An exception escaping the app reaches the client as a 500: it counts as one.
        started, status = time.perf_counter(), 500
        headers = Headers(scope=scope)
        # The caller's request id (or a new one) for the logs and the events this request causes.
        request_id = logs.request_id_from(headers.get(logs.REQUEST_ID_HEADER))

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (logs.REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
                ]
            await send(message)

        # A server span when tracing is on (shared/tracing.py), the caller's traceparent its parent.
        with tracing.serving(self.service, scope["method"], headers) as span:
            try:
                with logs.bound(request=request_id):
                    await self.app(scope, receive, watched)
            finally:
                template = getattr(scope.get("route"), "path", "unmatched")  # the router sets scope["route"]
                metrics.HTTP_REQUEST_DURATION.labels(self.service, scope["method"], template, str(status)).observe(
                    time.perf_counter() - started
                )
                if status >= 500:
                    metrics.HTTP_SERVER_ERRORS.labels(self.service).inc()
                tracing.finish_request(span, method=scope["method"], route=template, status=status)


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager],
    large_bodies: Mapping[tuple[str, str], int] | None = None,
    authenticate: Callable[[Request], Any] = authenticate,
) -> FastAPI:
    """A FastAPI app with /healthz, /readyz, /metrics; the lifespan sets `app.state.runtime`.
    Request bodies are limited (413 beyond): `settings.http_max_body_bytes`, or, for the routes that
    take files, their own larger limit (`large_bodies`: (method, path) → bytes). `authenticate` is
    the app-wide check of private routes: the bearer token unless the app has its own (the
    console's session cookie); either way it lets `@public` routes through."""
    app = FastAPI(title=title, lifespan=lifespan, dependencies=[Depends(authenticate)])
    app.add_middleware(BodyLimit, limit=settings.http_max_body_bytes, larger=large_bodies)
    app.state.settings = settings
    if settings.log_format == "json":
        logs.configure_logging(service=settings.service_name, level=settings.log_level)
    tracing.configure(settings)  # off (no spans, no cost) unless an OTLP endpoint is set
    metrics.SERVICE_INFO.labels(settings.service_name, settings.jurisdiction_code, settings.jurisdiction_level).set(1)
    metrics.HTTP_SERVER_ERRORS.labels(settings.service_name)  # at 0 from the start (see its help)
    app.state.token_verifier = TokenVerifier.from_settings(settings)
    install_problem_handlers(app)
    if settings.cors_origins:  # pages served from another origin (the H5 form uploading photos to media)
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["*"],
        )

    app.add_middleware(ObserveLatency, service=settings.service_name)

    @app.get("/healthz", include_in_schema=False)
    @public("liveness probe: says whether the process answers and its background work still runs")
    async def healthz(request: Request):
        runtime = getattr(request.app.state, "runtime", None)
        # The console's runtime is its own (a live feed, no pool or tasks): only a service's counts here.
        stopped = runtime.stopped_tasks() if isinstance(runtime, Runtime) else []
        if stopped:  # a dead relay or consumer leaves the pod answering but useless: have it restarted
            return JSONResponse(
                {"status": "failing", "service": settings.service_name, "stopped": stopped}, status_code=503
            )
        return {"status": "ok", "service": settings.service_name}

    @app.get("/readyz", include_in_schema=False)
    @public("readiness probe for Kubernetes: which dependencies answer, no data")
    async def readyz(request: Request):
        runtime = getattr(request.app.state, "runtime", None)
        checks = await runtime.readiness() if runtime else {"startup": "not finished"}
        ready = all(v == "ok" for v in checks.values())
        # Notes: what an operator should know that does not make the service unready (shared.service).
        noted = getattr(runtime, "noted", None)
        body = {"ready": ready, "checks": checks, "notes": noted() if noted else {}}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/asyncapi.json", include_in_schema=False)
    @public("the event contract (AsyncAPI) other departments integrate against: schemas only, no data")
    async def asyncapi_document():
        return JSONResponse(contract())

    @app.get("/metrics", include_in_schema=False)
    @public("Prometheus scrapes it inside the cluster; counters only, no personal data")
    async def metrics_endpoint():
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
