"""OpenTelemetry tracing, off by default: a span for each HTTP request a service answers, one for each
event its outbox relay publishes and one for each event its consumer applies, so a resident's
report can be followed as one trace from intake's POST through dispatch to notify.

The context crosses Kafka as the W3C `traceparent` header. An event is published by the outbox relay,
after the request or the handler that caused it has finished, so the context of its cause is kept
with the row: the outbox's `request_id` column holds `<request id> <traceparent>` while tracing is on
(`origin`, written by shared/db.py), and the relay starts its publish span as that context's child
and sends the publish span's own context in the header (`publish_headers`). The consumer applies
the event inside a span whose parent is that header (`consuming`), and what the handler writes to
the outbox carries the consume span on.

Off (GRIDLINK_TRACING_OTLP_ENDPOINT empty, the default) no span is ever made: the SDK is not even
imported, `tracer` answers None, `origin` gives the request id back unchanged, and a relay or a
consumer only looks the service up in a dict. A traceparent written by a replica with tracing on is
passed on as it is. On, spans go in batches over OTLP/HTTP to the endpoint (a collector's
`http://otel-collector.monitoring:4318/v1/traces`); `configure(settings, exporter=…)` lets a test
collect them in memory instead.
"""

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:  # the SDK is imported only when tracing is turned on
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from shared.settings import ServiceSettings

TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()
# Service name → its tracer, only for the services of this process with tracing on.
_TRACERS: dict[str, Tracer] = {}
_PROVIDERS: dict[str, "TracerProvider"] = {}
_OFF = nullcontext()


def configure(settings: "ServiceSettings", *, exporter: "SpanExporter | None" = None) -> "TracerProvider | None":
    """Turn tracing on for the settings' service when they name an OTLP endpoint (or a test gives an
    exporter), else off; returns the service's tracer provider, or None when off."""
    service = settings.service_name
    old = _PROVIDERS.pop(service, None)
    _TRACERS.pop(service, None)
    if old is not None:
        old.shutdown()
    if exporter is None and not settings.tracing_otlp_endpoint:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    resource = Resource.create(
        {
            "service.name": service,
            "service.namespace": "gridlink",
            "gridlink.jurisdiction_code": settings.jurisdiction_code,
            "gridlink.jurisdiction_level": settings.jurisdiction_level,
        }
    )
    provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.tracing_sample_ratio)))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.tracing_otlp_endpoint)))
    _PROVIDERS[service] = provider
    _TRACERS[service] = provider.get_tracer("gridlink")
    return provider


def tracer(service: str) -> Tracer | None:
    """The service's tracer while tracing is on, else None."""
    return _TRACERS.get(service)


def _parent(traceparent: str | None) -> Any:
    return _PROPAGATOR.extract({TRACEPARENT: traceparent}) if traceparent else None


def _traceparent_of(span: trace.Span) -> str | None:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get(TRACEPARENT)


# --- HTTP ---------------------------------------------------------------------------------------


def serving(service: str, method: str, headers: Mapping[str, str]) -> AbstractContextManager[trace.Span | None]:
    """A context manager: a server span around one HTTP request (its name and status are set by
    `finish_request` once the route is known), the child of the caller's traceparent when it sent
    one; None (and nothing made) while the service does not trace."""
    active = tracer(service)
    if active is None:
        return _OFF
    return active.start_as_current_span(
        method, context=_parent(headers.get(TRACEPARENT)), kind=SpanKind.SERVER, record_exception=True
    )


def finish_request(span: trace.Span | None, *, method: str, route: str, status: int) -> None:
    if span is None:
        return
    span.update_name(f"{method} {route}")
    span.set_attribute("http.request.method", method)
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


# --- the outbox and Kafka -----------------------------------------------------------------------


def origin(request_id: str | None) -> str | None:
    """What the outbox keeps of an event's cause: the request id, and while a span is current (tracing
    on) its traceparent after a space."""
    span = trace.get_current_span()
    if not span.get_span_context().is_valid:
        return request_id
    return f"{request_id or ''} {_traceparent_of(span)}"


def split_origin(stored: str | None) -> tuple[str | None, str | None]:
    """(request id, traceparent) of an outbox row's `request_id` column."""
    if not stored or " " not in stored:
        return stored or None, None
    request_id, _, traceparent = stored.rpartition(" ")
    return request_id or None, traceparent or None


def publish_headers(service: str, topic: str, traceparent: str) -> list[tuple[str, bytes]]:
    """The traceparent header of an event being published: a publish span's, as the child of the
    event's cause, while this service traces; the cause's own otherwise."""
    active = tracer(service)
    if active is not None:
        span = active.start_span(
            f"publish {topic}",
            context=_parent(traceparent),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": topic,
            },
        )
        traceparent = _traceparent_of(span) or traceparent
        span.end()
    return [(TRACEPARENT, traceparent.encode())]


def traceparent_of(headers: Any) -> str | None:
    for name, value in headers or ():
        if name == TRACEPARENT and value:
            return value.decode(errors="replace")
    return None


def consuming(service: str, headers: Any, topic: str, event_type: str) -> Any:
    """A context manager: the consumer span around applying one event, the child of the span that
    published it; nothing while this service does not trace."""
    active = tracer(service)
    if active is None:
        return _OFF
    return active.start_as_current_span(
        f"process {topic}",
        context=_parent(traceparent_of(headers)),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "gridlink.event_type": event_type,
        },
    )
