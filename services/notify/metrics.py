"""Notify's own Prometheus metrics (in the process registry next to the shared ones)."""

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "gridlink_notify_deliveries_total",
    "Delivery attempts by channel, template (broadcast for broadcasts) and outcome (sent, retry, failed).",
    ["channel", "template", "outcome"],
)
SEND_DURATION = Histogram(
    "gridlink_notify_send_duration_seconds",
    "Time for a channel to answer one message.",
    ["channel"],
)
RATE_DEFERRED = Counter(
    "gridlink_notify_rate_deferred_total",
    "Robot messages held back by our per-robot limit (not attempts: they go out when a slot frees).",
)
BROADCAST_GROUPS = Counter(
    "gridlink_notify_broadcast_groups_total",
    "Broadcast deliveries: queued when a broadcast is accepted, then sent or failed.",
    ["outcome"],
)
# Series that exist from the start, at 0: one born at its first event shows Prometheus no increase,
# so the dashboard would miss a new process's first broadcast deliveries.
for _outcome in ("queued", "sent", "failed"):
    BROADCAST_GROUPS.labels(_outcome)
for _outcome in ("sent", "retry", "failed"):
    DELIVERIES.labels("wecom_robot", "broadcast", _outcome)
CALLBACKS = Counter(
    "gridlink_notify_callbacks_total",
    "Inbound WeCom/official-account callbacks by source and outcome (accepted, duplicate, ignored, "
    "verified, or the reason they were refused).",
    ["source", "outcome"],
)
QUEUE = Gauge(
    "gridlink_notify_queue_messages",
    "Notifications not yet settled, by state (due now, held for later, in flight), and broadcast or not.",
    ["state", "kind"],
)
DIGESTS = Counter(
    "gridlink_notify_digests_total",
    "派单 digests (派单汇总) sent to a group whose robot had spent its minute, by outcome (sent, failed).",
    ["outcome"],
)
DIGESTED = Counter(
    "gridlink_notify_digested_notifications_total",
    "派单 notifications carried by a digest rather than their own message, by the digest's outcome.",
    ["outcome"],
)
FALLBACKS = Counter(
    "gridlink_notify_fallbacks_total",
    "Notifications taken over by their next channel, by the channel that did not deliver and why "
    "(failed, unconfirmed: no receipt in time).",
    ["channel", "reason"],
)
