"""The console's queue shows sla's calendar banner while the next 60 days lack the official
calendar, and stops once an admin enters the year (real dispatch, sla and console)."""

from datetime import UTC, datetime

import httpx

from services.console.app import create_app as console_app
from services.dispatch.app import create_app as dispatch_app
from services.sla.app import create_app as sla_app
from shared.topics import ensure_topics
from tests.integration.test_console import HTML, log_in
from tests.integration.test_sla import Clock
from tests.support import bearer, running, serving

DECEMBER = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


async def test_the_queue_warns_while_next_years_holidays_are_missing(make_settings):
    dispatch_settings = make_settings("dispatch", auth_dev_issuer=True)
    sla_settings = make_settings("sla")
    await ensure_topics(dispatch_settings)
    async with (
        serving(dispatch_app(dispatch_settings)) as dispatch_url,
        serving(sla_app(sla_settings, clock=Clock(DECEMBER))) as sla_url,
    ):
        settings = make_settings(
            "console", auth_dev_issuer=True, console_dispatch_url=dispatch_url, console_sla_url=sla_url
        )
        async with running(console_app(settings)) as client:
            await log_in(client, "dispatcher")
            queue = await client.get("/", headers=HTML)
            assert queue.status_code == 200
            assert 'class="notice" role="status">2027年的法定节假日安排尚未录入' in queue.text

            async with httpx.AsyncClient(base_url=sla_url) as sla:
                entered = await sla.put(
                    "/api/v1/calendar/years/2027",
                    json={"source": "测试数据（非官方）", "holidays": [], "workdays": []},
                    headers=bearer(sla_settings, "admin"),
                )
            assert entered.status_code == 200
            assert 'class="notice"' not in (await client.get("/", headers=HTML)).text

        # Without an answer from sla the queue still works, without the notice.
        unreachable = make_settings(
            "console", auth_dev_issuer=True, console_dispatch_url=dispatch_url, console_sla_url="http://127.0.0.1:9"
        )
        async with running(console_app(unreachable)) as client:
            await log_in(client, "dispatcher")
            queue = await client.get("/", headers=HTML)
            assert queue.status_code == 200 and 'class="notice"' not in queue.text
