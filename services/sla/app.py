"""SLA: turns every deadline into events."""

from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import asyncpg
from fastapi import FastAPI

from services.sla import metrics, store
from services.sla.analytics.api import router as analytics_router
from services.sla.analytics.consumer import running_analytics
from services.sla.analytics.exports import load_names
from services.sla.api import router
from services.sla.calendar import CST, OfficialCalendar, calendar_year, load_calendar_file
from services.sla.domain import Policy
from services.sla.handlers import make_handlers, make_ticker
from services.sla.settings import SlaSettings
from shared.events import utcnow
from shared.loops import repeat_until_stopped
from shared.service import running_service
from shared.sla_policy import load_sla_policy
from shared.topics import service_topics
from shared.web import create_service_app


def load_calendar(settings: SlaSettings) -> OfficialCalendar:
    """The official calendar from the data file; the years admins entered are added at startup."""
    return OfficialCalendar(
        file_years=load_calendar_file(settings.sla_holidays_path),
        on_fallback=lambda year: metrics.CALENDAR_FALLBACK.labels(str(year)).inc(),
    )


def load_policy(settings: SlaSettings, calendar: OfficialCalendar | None = None) -> Policy:
    """The policy file, read and checked at startup, with the clocks sla runs it on."""
    calendar = calendar or load_calendar(settings)
    return Policy(load_sla_policy(settings.sla_policy_path), is_workday=calendar.is_workday)


async def refresh_calendar(pool: asyncpg.Pool, calendar: OfficialCalendar, clock: Callable[[], datetime]) -> None:
    """Take the years admins entered (this or another replica) and measure the coverage."""
    async with pool.acquire() as conn:
        rows = await store.calendar_years(conn)
    calendar.use_stored(
        {
            r["year"]: calendar_year(year=r["year"], source=r["source"], holidays=r["holidays"], workdays=r["workdays"])
            for r in rows
        }
    )
    metrics.CALENDAR_DAYS_AHEAD.set(calendar.coverage(clock().astimezone(CST).date()).days_ahead)


def make_calendar_loop(calendar: OfficialCalendar, clock: Callable[[], datetime]):
    async def calendar_loop(runtime) -> None:
        async def step() -> bool:
            await refresh_calendar(runtime.pool, calendar, clock)
            return False

        await repeat_until_stopped(
            runtime.stopping, runtime.settings.sla_calendar_refresh_s, step, what="calendar refresh"
        )

    return calendar_loop


def create_app(settings: SlaSettings | None = None, *, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """`clock` is injectable so tests move time instead of sleeping."""
    settings = settings or SlaSettings(service_name="sla")
    calendar = load_calendar(settings)
    policy = load_policy(settings, calendar)

    def calendar_note() -> str | None:
        return calendar.coverage(clock().astimezone(CST).date()).message()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with (
            running_service(
                settings,
                service_dir=Path(__file__).parent,
                topics=service_topics("sla").reads,
                handlers=make_handlers(settings=settings, policy=policy),
                loops={"ticker": make_ticker(clock, policy), "calendar": make_calendar_loop(calendar, clock)},
                notes={"calendar": calendar_note},
                setup=lambda pool: refresh_calendar(pool, calendar, clock),
            ) as runtime,
            running_analytics(runtime, clock=clock) as analytics,
        ):
            app.state.runtime = runtime
            app.state.analytics = analytics
            yield

    app = create_service_app(settings, title="GridLink sla", lifespan=lifespan)
    app.state.policy = policy
    app.state.calendar = calendar
    app.state.clock = clock
    app.state.names = load_names(settings)
    app.include_router(router)
    app.include_router(analytics_router)
    return app
