"""Media: photos, video and voice as evidence, in an S3 object store."""

from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from fastapi import FastAPI

from services.media.api import router
from services.media.handlers import make_handlers
from services.media.settings import MediaSettings
from services.media.workflow import make_housekeeping, make_incoming_loop
from shared.objects import ObjectStore
from shared.service import running_service
from shared.topics import service_topics
from shared.web import create_service_app


def create_app(settings: MediaSettings | None = None) -> FastAPI:
    settings = settings or MediaSettings(service_name="media")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        objects = ObjectStore(settings, bucket=settings.media_bucket)
        incoming = ObjectStore(settings, bucket=settings.intake_incoming_bucket)
        await objects.ensure_bucket()
        await incoming.ensure_bucket()
        pools: list[asyncpg.Pool] = []

        async def keep_pool(pool: asyncpg.Pool) -> None:  # before the first event: handlers use it at 办结
            pools.append(pool)

        async with running_service(
            settings,
            service_dir=Path(__file__).parent,
            topics=service_topics("media").reads,
            handlers=make_handlers(settings=settings, objects=objects, pool=lambda: pools[0]),
            setup=keep_pool,
            loops={"housekeeping": make_housekeeping(objects), "incoming": make_incoming_loop(objects, incoming)},
            checks={"object_store": objects.ensure_bucket},
        ) as runtime:
            app.state.runtime, app.state.objects = runtime, objects
            yield

    # One direct upload (larger files go through a presigned PUT to the object store); every other
    # route is read no further than the service-wide limit.
    app = create_service_app(
        settings,
        title="GridLink media",
        lifespan=lifespan,
        large_bodies={("POST", "/api/v1/media"): settings.media_max_bytes + settings.http_max_body_bytes},
    )
    app.include_router(router)
    return app
