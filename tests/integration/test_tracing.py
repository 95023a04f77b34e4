"""Tracing (shared/tracing.py) on the real broker: a report's trace follows it from intake's HTTP request
through the outbox and Kafka (the W3C traceparent header) to dispatch and on to notify; and off, the
default, no span is made and no header is added."""

import time
from contextlib import AsyncExitStack

import httpx
from aiokafka import AIOKafkaConsumer
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.dispatch.app import create_app as dispatch_app
from services.intake.app import create_app as intake_app
from services.notify.app import create_app as notify_app
from shared import tracing
from shared.topics import REPORTS
from tests.support import bearer, eventually, running

REPORT = {
    "description": "幸福路与建设街交叉口往南50米，井盖翻起来了，赶紧来人看看！",
    "category": "manhole",
    "lat": 29.0812,
    "lng": 120.0431,
    "channel": "api",
}


async def test_a_reports_trace_crosses_kafka_from_intake_to_dispatch_to_notify(make_settings, fake_wecom):
    apps = {
        name: factory(make_settings(name))
        for name, factory in [("intake", intake_app), ("dispatch", dispatch_app), ("notify", notify_app)]
    }
    exporter = InMemorySpanExporter()
    for app in apps.values():
        tracing.configure(app.state.settings, exporter=exporter)
    try:
        async with AsyncExitStack() as stack:
            client = {name: await stack.enter_async_context(running(app)) for name, app in apps.items()}
            answer = await client["intake"].post("/api/v1/reports", json=REPORT)
            assert answer.status_code == 201, answer.text
            case_id, case_no = answer.json()["case_id"], answer.json()["case_no"]
            dispatcher = bearer(apps["dispatch"].state.settings, "dispatcher")

            async def dispatched():
                r = await client["dispatch"].get(f"/api/v1/cases/{case_id}", headers=dispatcher)
                return r.status_code == 200 and r.json()["status"] == "dispatched"

            await eventually(dispatched)

            async def wecom_received():
                r = httpx.get(f"{fake_wecom}/_fake/messages", params={"key": "demo-zhujian"})
                return [m for m in r.json() if case_no in m["body"]["text"]["content"]]

            await eventually(wecom_received)

            async def notify_processed():
                return [
                    s
                    for s in exporter.get_finished_spans()
                    if s.resource.attributes["service.name"] == "notify" and s.kind == SpanKind.CONSUMER
                ]

            await eventually(notify_processed)
    finally:
        for app in apps.values():
            tracing.configure(app.state.settings)  # off again for the tests after this one

    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}

    def service(span):
        return span.resource.attributes["service.name"]

    [post] = [s for s in spans if service(s) == "intake" and s.name == "POST /api/v1/reports"]
    assert post.kind == SpanKind.SERVER and post.attributes["http.response.status_code"] == 201
    trace_id = post.context.trace_id
    prefix = apps["intake"].state.settings.topic_prefix

    # intake's POST → intake publishes the report (its outbox relay, after the request ended) …
    [intake_publish] = [s for s in spans if service(s) == "intake" and s.kind == SpanKind.PRODUCER]
    assert intake_publish.parent.span_id == post.context.span_id
    assert intake_publish.attributes["messaging.destination.name"] == f"{prefix}{REPORTS.name}"
    # … dispatch applies it in a span whose parent is intake's, carried by the Kafka header …
    [dispatch_process] = [
        s for s in spans if service(s) == "dispatch" and s.kind == SpanKind.CONSUMER and s.context.trace_id == trace_id
    ]
    assert dispatch_process.parent.span_id == intake_publish.context.span_id
    assert service(by_id[dispatch_process.parent.span_id]) == "intake"
    # … dispatch publishes the case it made in that span, and notify applies it in the same trace
    # (and the report itself too, for the grid's worker: that span's parent is intake's publish).
    dispatch_publishes = [
        s for s in spans if service(s) == "dispatch" and s.kind == SpanKind.PRODUCER and s.context.trace_id == trace_id
    ]
    assert dispatch_publishes and all(s.parent.span_id == dispatch_process.context.span_id for s in dispatch_publishes)
    notify_spans = [s for s in spans if service(s) == "notify" and s.kind == SpanKind.CONSUMER]
    in_trace = [s for s in notify_spans if s.context.trace_id == trace_id]
    parents = [by_id[s.parent.span_id] for s in in_trace]
    assert all(p.kind == SpanKind.PRODUCER for p in parents)
    assert any(p in dispatch_publishes for p in parents)


async def test_off_by_default_no_span_and_no_header(make_settings, infra):
    settings = make_settings("intake")
    app = intake_app(settings)
    assert tracing.tracer("intake") is None
    async with running(app) as client:
        answer = await client.post("/api/v1/reports", json=REPORT)
        assert answer.status_code == 201, answer.text
    records = []
    consumer = AIOKafkaConsumer(
        settings.topic(REPORTS.name), bootstrap_servers=infra.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + 15
        while not records and time.monotonic() < deadline:
            records = [r for batch in (await consumer.getmany(timeout_ms=200)).values() for r in batch]
    finally:
        await consumer.stop()
    assert records
    assert all(tracing.traceparent_of(r.headers) is None for r in records)
    assert all(dict(r.headers).get("request_id") for r in records)
