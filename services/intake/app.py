"""Intake: every channel in; reports are durable before they are acknowledged."""

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.intake.api import router
from services.intake.handlers import HANDLERS
from shared.service import running_service
from shared.settings import Settings
from shared.taxonomy import load_taxonomy
from shared.topics import CASES
from shared.web import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service_name="intake")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with running_service(
            settings, service_dir=Path(__file__).parent, topics=[CASES], handlers=HANDLERS
        ) as runtime:
            app.state.runtime = runtime
            yield

    app = create_service_app(settings, title="GridLink intake", lifespan=lifespan)
    app.state.taxonomy = load_taxonomy(settings.responsibility_list_path)
    app.include_router(router)
    return app
