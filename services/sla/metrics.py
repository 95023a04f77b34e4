"""SLA's own Prometheus metrics (the shared ones cover HTTP, handlers, consumer lag)."""

from prometheus_client import Counter, Gauge, Histogram

PENDING = Gauge("gridlink_sla_pending_timers", "Running timers not yet breached, by stage", ["stage"])
WARNINGS = Counter("gridlink_sla_warnings_total", "sla.warning (催办) events", ["department", "category"])
BREACHES = Counter("gridlink_sla_breaches_total", "sla.breached (督办) events", ["department", "category"])
LATENESS = Histogram(
    "gridlink_sla_fire_lateness_seconds",
    "How long after its due moment a timer was handled",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300),
)
CALENDAR_DAYS_AHEAD = Gauge(
    "gridlink_calendar_covered_days_ahead",
    "Days from today (Beijing) on that the official calendar covers (holidays and 调休 known); "
    "below 60, working-day deadlines may treat holidays as working days",
)
CALENDAR_FALLBACK = Counter(
    "gridlink_calendar_fallback_days_total",
    "Days judged Monday-Friday because no official calendar covers their year, by year",
    ["year"],
)
NOTICES = Counter(
    "gridlink_sla_notices_total",
    "通报 issued for a department's repeated missed deadlines within the policy's window, by department",
    ["department"],
)
