"""Prometheus metrics shared by every service (one process registry; `service` is a label)."""

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUEST_DURATION = Histogram(
    "gridlink_http_request_duration_seconds",
    "HTTP request latency by route template and status.",
    ["service", "method", "route", "status"],
)
HANDLER_DURATION = Histogram(
    "gridlink_event_handler_duration_seconds",
    "Time to apply one consumed event, by type and outcome (ok, duplicate, retry, dead_letter).",
    ["service", "event_type", "outcome"],
)
CONSUMER_LAG = Gauge(
    "gridlink_consumer_lag_messages",
    "Messages between the consumer's position and the partition's high watermark.",
    ["service", "topic", "partition"],
)
DEAD_LETTERS = Counter(
    "gridlink_dead_letters_total",
    "Messages sent to the dead-letter topic, by source topic and reason kind.",
    ["service", "topic", "reason"],
)
EVENTS_SKIPPED = Counter(
    "gridlink_events_skipped_total",
    "Consumed events skipped because this version does not know their type.",
    ["service", "event_type"],
)
OUTBOX_PUBLISHED = Counter(
    "gridlink_outbox_published_total", "Events relayed from the outbox to Kafka.", ["service", "topic"]
)
