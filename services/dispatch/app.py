"""Dispatch: owns the case; routes reports to departments by the responsibility list."""

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.dispatch.api import router
from services.dispatch.handlers import make_handlers
from shared.service import running_service
from shared.settings import Settings
from shared.taxonomy import load_taxonomy
from shared.topics import REPORTS
from shared.web import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service_name="dispatch")
    taxonomy = load_taxonomy(settings.responsibility_list_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with running_service(
            settings, service_dir=Path(__file__).parent, topics=[REPORTS],
            handlers=make_handlers(settings=settings, taxonomy=taxonomy),
        ) as runtime:
            app.state.runtime = runtime
            yield

    app = create_service_app(settings, title="GridLink dispatch", lifespan=lifespan)
    app.include_router(router)
    return app
