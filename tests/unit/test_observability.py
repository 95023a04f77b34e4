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
    # The per-service error counter the dashboard reads exists, at 0, before any error.
    assert REGISTRY.get_sample_value("gridlink_http_server_errors_total", {"service": "crashy"}) == 0
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/boom")).status_code == 500
    assert sample("gridlink_http_request_duration_seconds_count", labels) == before + 1
    assert sample("gridlink_http_server_errors_total", {"service": "crashy"}) == 1


async def test_a_traced_request_is_a_server_span_under_the_callers_traceparent():
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from shared import tracing

    @asynccontextmanager
    async def lifespan(app):
        yield

    settings = ServiceSettings(service_name="traced")
    app = create_service_app(settings, title="t", lifespan=lifespan)

    @app.get("/things/{thing}")
    @public("a test route")
    async def thing(thing: str):
        return {"origin": tracing.origin("req-1")}

    exporter = InMemorySpanExporter()
    tracing.configure(settings, exporter=exporter)
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.get("/things/x", headers={"traceparent": caller})
    finally:
        tracing.configure(settings)
    [span] = exporter.get_finished_spans()
    assert span.name == "GET /things/{thing}" and span.kind == SpanKind.SERVER
    assert span.attributes["http.response.status_code"] == 200
    assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    # What the outbox keeps of an event this request causes: the request id and the span's context.
    request_id, traceparent = tracing.split_origin(answer.json()["origin"])
    assert request_id == "req-1"
    assert traceparent == f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"


async def test_untraced_the_outbox_keeps_the_request_id_alone_and_no_span_is_made():
    from shared import tracing

    @asynccontextmanager
    async def lifespan(app):
        yield

    settings = ServiceSettings(service_name="untraced")
    app = create_service_app(settings, title="t", lifespan=lifespan)

    @app.get("/origin")
    @public("a test route")
    async def origin():
        return {"origin": tracing.origin("req-2"), "traced": tracing.tracer("untraced") is not None}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        body = (await client.get("/origin")).json()
    assert body == {"origin": "req-2", "traced": False}
    assert tracing.split_origin("req-2") == ("req-2", None)
