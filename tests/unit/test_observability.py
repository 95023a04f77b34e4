"""Metrics that dashboards and alerts rely on say what happened: an unhandled exception counts as the
500 the client got; the SLA calendar says how long it still covers and when it was missing."""

from contextlib import asynccontextmanager
from datetime import date

import chinese_calendar
import httpx
from prometheus_client import REGISTRY

from services.sla import metrics as sla_metrics
from services.sla.calendar import official_workday
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
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/boom")).status_code == 500
    assert sample("gridlink_http_request_duration_seconds_count", labels) == before + 1


def test_the_calendar_says_how_long_it_covers_and_counts_days_it_does_not():
    last = date(max(chinese_calendar.holidays).year, 12, 31)
    assert sla_metrics.calendar_covered_days(date(last.year, 12, 2)) == 29
    assert REGISTRY.get_sample_value("gridlink_sla_calendar_covered_days") == sla_metrics.calendar_covered_days()
    before = sample("gridlink_sla_calendar_fallbacks_total", {})
    assert official_workday(date(2099, 3, 2))  # a Monday in a year no notice covers yet
    assert sample("gridlink_sla_calendar_fallbacks_total", {}) == before + 1
