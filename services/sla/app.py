"""SLA: turns every deadline into events."""

from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI

from services.sla.api import router
from services.sla.domain import Policy
from services.sla.handlers import make_handlers, make_ticker
from services.sla.settings import SlaSettings
from shared.events import utcnow
from shared.service import running_service
from shared.sla_policy import load_sla_policy
from shared.topics import service_topics
from shared.web import create_service_app


def load_policy(settings: SlaSettings) -> Policy:
    """The policy file, read and checked at startup, with the clocks sla runs it on."""
    return Policy(load_sla_policy(settings.sla_policy_path))


def create_app(settings: SlaSettings | None = None, *, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """`clock` is injectable so tests move time instead of sleeping."""
    settings = settings or SlaSettings(service_name="sla")
    policy = load_policy(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with running_service(
            settings,
            service_dir=Path(__file__).parent,
            topics=service_topics("sla").reads,
            handlers=make_handlers(settings=settings, policy=policy),
            loops={"ticker": make_ticker(clock, policy)},
        ) as runtime:
            app.state.runtime = runtime
            yield

    app = create_service_app(settings, title="GridLink sla", lifespan=lifespan)
    app.state.policy = policy
    app.include_router(router)
    return app
