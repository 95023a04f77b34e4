"""Intake: every channel in; reports are triaged, located and durable before they are acknowledged."""

__all__ = ["create_app", "load_triage_model"]

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.intake import h5, open311, privacy
from services.intake.api import router
from services.intake.handlers import make_handlers, make_loops
from services.intake.reports import Intake, apply_new_corrections, use_accepted_model
from services.intake.settings import IntakeSettings
from services.intake.triage_models import load_triage_model
from shared.jurisdictions import load_county
from shared.objects import ObjectStore
from shared.service import running_service
from shared.taxonomy import load_taxonomy
from shared.topics import service_topics
from shared.web import create_service_app


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings(service_name="intake")
    taxonomy = load_taxonomy(settings.responsibility_list_path)
    intake = Intake(
        settings=settings,
        taxonomy=taxonomy,
        county=load_county(settings.county_map_path),
        model=load_triage_model(settings, taxonomy),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        incoming = ObjectStore(settings, bucket=settings.intake_incoming_bucket)
        await incoming.ensure_bucket()
        async with running_service(
            settings,
            service_dir=Path(__file__).parent,
            topics=service_topics("intake").reads,
            handlers=make_handlers(intake),
            loops={**make_loops(intake), "retention": privacy.retention_loop},
            checks={"object_store": incoming.ensure_bucket},
        ) as runtime:
            app.state.runtime, app.state.incoming = runtime, incoming
            # The model the retraining job accepted last, and the corrections stored before this
            # start, are in place before the first request.
            await use_accepted_model(runtime.pool, intake)
            await apply_new_corrections(runtime.pool, intake)
            yield

    # A report may bring its photos: each up to the image limit, plus the form around them. Every
    # other route (Open311's form too) is read no further than the service-wide limit.
    photos = settings.intake_max_photos * settings.media_image_max_bytes
    app = create_service_app(
        settings,
        title="GridLink intake",
        lifespan=lifespan,
        large_bodies={("POST", "/api/v1/reports"): photos + settings.http_max_body_bytes},
    )
    app.state.taxonomy = taxonomy
    app.state.intake = intake
    app.include_router(router)
    app.include_router(open311.router)
    app.include_router(h5.router)
    return app
