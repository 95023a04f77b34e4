"""Console (工作台): the staff's web pages, a backend-for-frontend over the services' public APIs
and the case topic. It keeps no domain state: every page asks the services with the person's token."""

from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from services.console import pages, sessions
from services.console.api import router
from services.console.live import Hub, running_hub
from services.console.settings import ConsoleSettings
from shared.case_actions import ACTIONS
from shared.events import CaseFacts, Event
from shared.jurisdictions import load_county
from shared.taxonomy import load_taxonomy
from shared.web import create_service_app


class ConsoleRuntime:
    """What /readyz asks: the live feed's consumer."""

    def __init__(self, hub: Hub):
        self.hub = hub

    async def readiness(self) -> dict[str, str]:
        return {"consumer": "ok" if self.hub.running else "not running"}


def live_message(names: pages.Names, event: Event) -> dict:
    """What a queue page is told of a case event: the case's row, and whether it is a new urgent case."""
    facts = event.payload
    assert isinstance(facts, CaseFacts)
    case = facts.model_dump(mode="json") | {"created_at": event.occurred_at.isoformat(), "overdue": False}
    action = getattr(facts, "action", "")
    return {
        "type": event.type,
        "case_id": str(facts.case_id),
        "case_no": pages.case_no(case),
        "status": facts.status,
        "status_label": pages.STATUS_LABELS.get(facts.status, facts.status),
        "category_name": facts.category_name,
        "step": ACTIONS[action].label if action in ACTIONS else "",
        "urgent_new": event.type == "case.dispatched" and action == "dispatch" and facts.priority == "urgent",
        "row": pages.queue_row(case, names),
    }


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings(service_name="console")
    names = pages.Names(load_county(settings.county_map_path), load_taxonomy(settings.responsibility_list_path))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        timeout = httpx.Timeout(settings.console_http_timeout_s)
        async with (
            httpx.AsyncClient(timeout=timeout) as http,
            running_hub(settings, lambda event: live_message(names, event)) as hub,
        ):
            app.state.http, app.state.hub, app.state.runtime = http, hub, ConsoleRuntime(hub)
            yield

    app = create_service_app(settings, title="GridLink console", lifespan=lifespan, authenticate=sessions.authenticate)
    app.state.names = names

    @app.exception_handler(sessions.LoginRequired)
    async def login_required(request: Request, exc: sessions.LoginRequired):
        return sessions.login_required_response(request)

    @app.exception_handler(sessions.CsrfFailed)
    async def csrf_failed(request: Request, exc: sessions.CsrfFailed):
        if "text/html" not in request.headers.get("accept", ""):
            return sessions.csrf_failed_response(request)
        actor = sessions.session_actor(request)
        csrf = request.cookies.get(sessions.CSRF_COOKIE, "")
        html = pages.error_page(status=403, message=exc.message, actor=actor, names=names, csrf=csrf)
        return HTMLResponse(html, status_code=403)

    app.include_router(router)
    return app
