"""Dispatch: owns the case at its level (county, town or village) and runs its lifecycle."""

from contextlib import asynccontextmanager
from pathlib import Path

import yaml
from fastapi import FastAPI, Request

from services.dispatch import cases, store
from services.dispatch.api import router
from services.dispatch.directory_api import directory_actor
from services.dispatch.directory_api import router as directory_router
from services.dispatch.handlers import make_handlers
from services.dispatch.responsibility import build_list
from services.dispatch.settings import DispatchSettings
from shared.auth import WECOM_SUBJECT_PREFIX
from shared.loops import repeat_until_stopped
from shared.service import Runtime, running_service
from shared.sla_policy import load_sla_policy
from shared.taxonomy import load_taxonomy
from shared.topics import service_topics
from shared.web import authenticate as bearer_authenticate
from shared.web import create_service_app


async def authenticate(request: Request) -> None:
    """The services' bearer check; a WeCom session's person is then looked up in the directory,
    which dispatch owns: their role holds only while the directory still gives it to them."""
    await bearer_authenticate(request)
    actor = getattr(request.state, "actor", None)
    if actor is not None and actor.subject.startswith(WECOM_SUBJECT_PREFIX):
        async with request.app.state.runtime.pool.acquire() as conn:
            request.state.actor = await directory_actor(conn, actor)


def create_app(settings: DispatchSettings | None = None) -> FastAPI:
    settings = settings or DispatchSettings(service_name="dispatch")
    taxonomy = load_taxonomy(settings.responsibility_list_path)
    sla_policy = load_sla_policy(settings.sla_policy_path)
    shipped_list = build_list(
        taxonomy=taxonomy, document=yaml.safe_load(settings.responsibility_list_path.read_text(encoding="utf-8"))
    )

    async def auto_verify_loop(runtime: Runtime) -> None:
        async def step() -> None:
            async with runtime.pool.acquire() as conn, conn.transaction():
                await cases.auto_verify(conn, settings=settings, taxonomy=taxonomy)

        await repeat_until_stopped(runtime.stopping, settings.dispatch_auto_verify_interval_s, step, what="auto-verify")

    async def install_shipped_list(pool) -> None:
        """The shipped list is the first version; later versions come from the admin API."""
        async with pool.acquire() as conn:
            if await store.latest_list(conn) is None:
                await store.insert_list(
                    conn, version=shipped_list.version, document=shipped_list.document(), created_by="system:shipped"
                )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with running_service(
            settings,
            service_dir=Path(__file__).parent,
            topics=service_topics("dispatch").reads,
            handlers=make_handlers(settings=settings, taxonomy=taxonomy, policy=sla_policy),
            loops={"auto_verify": auto_verify_loop},
            setup=install_shipped_list,
        ) as runtime:
            app.state.runtime = runtime
            yield

    app = create_service_app(settings, title="GridLink dispatch", lifespan=lifespan, authenticate=authenticate)
    app.state.taxonomy = taxonomy
    app.include_router(router)
    app.include_router(directory_router)
    return app
