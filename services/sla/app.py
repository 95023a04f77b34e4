"""SLA: turns every deadline into events."""

from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import yaml
from fastapi import FastAPI

from services.sla.api import router
from services.sla.domain import Policy
from services.sla.handlers import make_handlers, make_ticker
from services.sla.settings import SlaSettings
from shared.events import utcnow
from shared.service import running_service
from shared.topics import CASES
from shared.web import create_service_app


def load_policy(settings: SlaSettings) -> Policy:
    return Policy(yaml.safe_load(settings.sla_policy_path.read_text(encoding="utf-8")))


def create_app(settings: SlaSettings | None = None, *, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """`clock` is injectable so tests move time instead of sleeping."""
    settings = settings or SlaSettings(service_name="sla")
    policy = load_policy(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with running_service(
            settings, service_dir=Path(__file__).parent, topics=[CASES],
            handlers=make_handlers(settings=settings, policy=policy), loops={"ticker": make_ticker(clock, policy)},
        ) as runtime:
            app.state.runtime = runtime
            yield

    app = create_service_app(settings, title="GridLink sla", lifespan=lifespan)
    app.state.policy = policy
    app.include_router(router)
    return app
