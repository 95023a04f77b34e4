"""Business metrics for the Grafana dashboard (deploy/k8s/monitoring/gridlink-scorecards.json): this
month's 三率 by department and by town. A rate without data has no series (Grafana shows "No data"),
never 0."""

from datetime import date

from prometheus_client import Gauge

from services.sla.analytics import figures
from services.sla.analytics.scorecards import RATES

RATE = Gauge(
    "gridlink_scorecard_rate",
    "This month's scorecard rate (0-1) by group (department, town), key and rate",
    ["group", "key", "rate"],
)
SAMPLE = Gauge(
    "gridlink_scorecard_sample",
    "How many units this month's rate is computed on (show it next to the rate)",
    ["group", "key", "rate"],
)
SUPERVISED = Gauge("gridlink_scorecard_supervised", "This month's 督办 count", ["group", "key"])


async def refresh(conn, *, today: date) -> None:
    since = today.replace(day=1)
    for group in ("department", "town"):
        for card in await figures.scorecards(conn, by=group, period="all", since=since, until=today):
            key = card["key"] or "unknown"
            for rate in RATES:
                value = card[rate]["value"]
                if value is None:
                    try:
                        RATE.remove(group, key, rate)
                    except KeyError:
                        pass
                else:
                    RATE.labels(group, key, rate).set(value)
                SAMPLE.labels(group, key, rate).set(card[rate]["n"])
            SUPERVISED.labels(group, key).set(card["supervised"])
