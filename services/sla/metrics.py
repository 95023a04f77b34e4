"""SLA's own Prometheus metrics (the shared ones cover HTTP, handlers, consumer lag)."""

from datetime import date

import chinese_calendar
from prometheus_client import Counter, Gauge, Histogram

PENDING = Gauge("gridlink_sla_pending_timers", "Running timers not yet breached, by stage", ["stage"])
WARNINGS = Counter("gridlink_sla_warnings_total", "sla.warning (催办) events", ["department", "category"])
BREACHES = Counter("gridlink_sla_breaches_total", "sla.breached (督办) events", ["department", "category"])
LATENESS = Histogram(
    "gridlink_sla_fire_lateness_seconds",
    "How long after its due moment a timer was handled",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300),
)
CALENDAR_FALLBACKS = Counter(
    "gridlink_sla_calendar_fallbacks_total",
    "Working-time calculations on a day the official calendar does not cover (Monday-Friday assumed).",
)
CALENDAR_COVERED_DAYS = Gauge(
    "gridlink_sla_calendar_covered_days",
    "Days from today to the last day the installed official calendar (chinese-calendar) covers; "
    "update the package when the State Council publishes next year's holidays.",
)


def calendar_covered_days(today: date | None = None) -> int:
    last_year = max(chinese_calendar.holidays).year
    return (date(last_year, 12, 31) - (today or date.today())).days


CALENDAR_COVERED_DAYS.set_function(calendar_covered_days)
