"""Notify: tells departments and reporters through WeCom and WeChat."""

from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.notify.api import router
from services.notify.domain import load_directory
from services.notify.handlers import make_delivery_loop, make_handlers
from shared.service import running_service
from shared.settings import Settings
from shared.topics import CASES
from shared.web import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service_name="notify")
    directory = load_directory(settings.directory_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with httpx.AsyncClient(timeout=5.0) as http, running_service(
            settings, service_dir=Path(__file__).parent, topics=[CASES],
            handlers=make_handlers(settings=settings, directory=directory),
            loops={"delivery": make_delivery_loop(http)},
        ) as runtime:
            app.state.runtime = runtime
            yield

    app = create_service_app(settings, title="GridLink notify", lifespan=lifespan)
    app.include_router(router)
    return app
