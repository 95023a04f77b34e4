"""Prometheus metrics shared by every service (one process registry; `service` is a label)."""

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUEST_DURATION = Histogram(
    "gridlink_http_request_duration_seconds",
    "HTTP request latency by route template and status.",
    ["service", "method", "route", "status"],
)
HTTP_SERVER_ERRORS = Counter(
    "gridlink_http_server_errors_total",
    "Responses with a 5xx status (unhandled exceptions included), by service. Made at 0 when the app is "
    "built: a series born at its first error would show Prometheus no increase.",
    ["service"],
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
TRANSIENT_FAILURES = Counter(
    "gridlink_consumer_transient_failures_total",
    "Handler failures waited out as transient (database or broker unavailable, deadlock…), by event type.",
    ["service", "event_type"],
)
CONSUMER_WAITING = Gauge(
    "gridlink_consumer_waiting",
    "1 while the consumer waits out a transient failure (consumption paused), else 0.",
    ["service"],
)
EVENTS_SKIPPED = Counter(
    "gridlink_events_skipped_total",
    "Consumed events skipped because this version does not know their type.",
    ["service", "event_type"],
)
OUTBOX_PUBLISHED = Counter(
    "gridlink_outbox_published_total", "Events relayed from the outbox to Kafka.", ["service", "topic"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "gridlink_outbox_oldest_age_seconds",
    "Age of the oldest event waiting in the outbox when the relay last looked (0: empty); grows while "
    "the relay cannot publish.",
    ["service"],
)
SERVICE_INFO = Gauge(
    "gridlink_service_info",
    "1 for each running service instance, naming the jurisdiction it serves: dashboards join it on "
    "`instance, service` to tell the county's dispatch centre from a town's or a village's.",
    ["service", "jurisdiction_code", "jurisdiction_level"],
)
