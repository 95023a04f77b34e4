"""Every route of every service and who may call it, from the apps' own route tables.

    python -m devtools.routes > ROUTES.md

Open or closed comes from the route itself (`@public(reason)` in shared/web.py; everything else
needs a staff bearer token). Which roles a closed route admits is checked inside its handler; the
rules below name the constants those handlers check, so the roles printed are the code's own.
"""

from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from services.console.app import create_app as console_app
from services.console.settings import ConsoleSettings
from services.dispatch.app import create_app as dispatch_app
from services.dispatch.settings import DispatchSettings
from services.intake import api as intake_api
from services.intake.app import create_app as intake_app
from services.intake.settings import IntakeSettings
from services.media.app import create_app as media_app
from services.media.settings import MediaSettings
from services.notify import broadcasts as notify_broadcasts
from services.notify import domain as notify_domain
from services.notify.app import create_app as notify_app
from services.notify.settings import NotifySettings
from services.sla.app import create_app as sla_app
from services.sla.settings import SlaSettings
from shared.auth import ROLES
from shared.case_actions import ACTIONS, ActionSpec
from shared.web import DOCUMENTATION_PATHS, public_reason

APPS = {
    "intake": lambda: intake_app(IntakeSettings(service_name="intake")),
    "dispatch": lambda: dispatch_app(DispatchSettings(service_name="dispatch")),
    "sla": lambda: sla_app(SlaSettings(service_name="sla")),
    "notify": lambda: notify_app(NotifySettings(service_name="notify")),
    "media": lambda: media_app(MediaSettings(service_name="media")),
    "console": lambda: console_app(ConsoleSettings(service_name="console")),
}

# Routes without a role rule admit every role; what they show is narrowed to the caller's division
# (and a handler's department) by the handler, as its description says.
ANY_STAFF = "any staff role"
# (service, method, path) → (roles the handler admits, the scope it narrows them to).
ROLE_RULES: dict[tuple[str, str, str], tuple[frozenset[str] | tuple[str, ...], str]] = {
    ("intake", "GET", "/api/v1/reports-to-locate"): (intake_api.LOCATING_ROLES, "reports in their division"),
    ("intake", "POST", "/api/v1/reports/{report_id}/location"): (intake_api.LOCATING_ROLES, "grids in their division"),
    ("intake", "POST", "/api/v1/triage/corrections"): (intake_api.CORRECTING_ROLES, ""),
    ("intake", "GET", "/api/v1/personal-data-reads"): (
        intake_api.AUDIT_ROLES,
        "reads by staff of their division and below; admins and the county see all",
    ),
    ("notify", "POST", "/api/v1/broadcasts"): (notify_broadcasts.BROADCASTERS, "resident groups in their division"),
    ("notify", "GET", "/api/v1/broadcasts/{broadcast_id}"): (notify_broadcasts.BROADCASTERS, "their division's"),
    ("notify", "GET", "/api/v1/broadcasts/reach"): (
        notify_broadcasts.BROADCASTERS,
        "resident groups in their division",
    ),
    ("notify", "GET", "/api/v1/cases/{case_id}/notifications"): (notify_domain.DELIVERY_READERS, ""),
    ("dispatch", "POST", "/api/v1/responsibility-list"): (("admin",), "of this centre's division or above"),
    ("dispatch", "GET", "/api/v1/supervision"): (("dispatcher", "supervisor", "admin"), "breaches below their level"),
    # The directory (通讯录) and duty rosters: admins manage their division and below; staff of a
    # division (not grid workers; handlers their own department) read its rosters.
    **{
        ("dispatch", method, f"/api/v1/directory{path}"): (("admin",), "people and shifts of their division and below")
        for method, path in (
            ("PUT", "/people/{person_id}"),
            ("GET", "/people"),
            ("GET", "/people/{person_id}"),
            ("DELETE", "/people/{person_id}"),
            ("POST", "/people/import"),
            ("POST", "/rosters/shifts"),
            ("DELETE", "/rosters/shifts/{shift_id}"),
            ("GET", "/audit"),
        )
    },
    **{
        ("dispatch", "GET", f"/api/v1/directory{path}"): (
            ("dispatcher", "handler", "supervisor", "admin"),
            "rosters in their division and below; handlers their own department's",
        )
        for path in ("/rosters/{department_code}", "/rosters/{department_code}/on-duty")
    },
    # The mobile work page (/m/…, opened in WeCom): any signed-in person (a WeCom session or a staff
    # one); what they see and may do is what dispatch and media let their role see and do.
    ("console", "GET", "/m/"): (ROLES, "cases they may see: a handler's department's, a grid worker's grid's"),
    ("console", "GET", "/m/cases/{reference}"): (ROLES, "cases they may see"),
    ("console", "POST", "/m/cases/{reference}/actions/{name}"): (
        ROLES,
        "the roles shared/case_actions.py gives that action, on cases they may see",
    ),
    ("console", "POST", "/m/cases/{reference}/photos"): (ROLES, "cases they may see (media decides)"),
}


@dataclass(frozen=True)
class RouteAccess:
    service: str
    method: str
    path: str
    who: str
    what: str


@asynccontextmanager
async def _no_lifespan(app: FastAPI):
    yield


def _case_action(service: str, method: str, path: str) -> ActionSpec | None:
    """The dispatch case action a route takes, if it is one (shared.case_actions)."""
    if (service, method) != ("dispatch", "POST"):
        return None
    name = path.removeprefix("/api/v1/cases/{case_id}/")
    return next((spec for spec in ACTIONS.values() if spec.path == name), None)


def _action_roles(spec: ActionSpec) -> str:
    roles = sorted((spec.roles - {"system"}) | {"admin"})
    lead = "; a handler only for the lead (主办) department" if spec.lead_only and "handler" in roles else ""
    return f"{', '.join(roles)} (cases they may see{lead})"


def _who(service: str, method: str, path: str, reason: str | None) -> str:
    if reason is not None:
        return f"anyone (public): {reason}"
    if (service, method, path) in ROLE_RULES:
        roles, scope = ROLE_RULES[(service, method, path)]
        return ", ".join(sorted(roles)) + (f" ({scope})" if scope else "")
    if action := _case_action(service, method, path):
        return _action_roles(action)
    if service == "console":
        return "any signed-in staff member (session cookie)"
    return ANY_STAFF


def route_access() -> Iterator[RouteAccess]:
    for service, factory in APPS.items():
        app = factory()
        app.router.lifespan_context = _no_lifespan
        for route in iter_route_contexts(app.routes):
            path = str(route.path)
            if path in DOCUMENTATION_PATHS:
                continue
            doc = (getattr(route.endpoint, "__doc__", None) or "").strip().split("\n\n")[0]
            for method in sorted((route.methods or set()) - {"HEAD"}):
                action = _case_action(service, method, path)
                what = f"案件操作「{action.label}」" if action else " ".join(doc.split())
                yield RouteAccess(service, method, path, _who(service, method, path, public_reason(route)), what)


HEADER = "| Method | Path | Who may call it | What it does |"


def markdown() -> str:
    lines = [
        "# Routes and who may call them",
        "",
        "Generated by `python -m devtools.routes` from every service's route table. Public routes say why",
        "(`@public(reason)`); every other route answers 401 without a valid staff bearer token (the",
        "console: without a session) and 403 to a role not listed. /docs, /redoc and /openapi.json",
        "(the API's description, no data) are open on every service.",
    ]
    current = None
    for r in route_access():
        if r.service != current:
            current = r.service
            lines += ["", f"## {current}", "", HEADER, "|---|---|---|---|"]
        who, what = (text.replace("|", "\\|") for text in (r.who, r.what))
        lines.append(f"| {r.method} | `{r.path}` | {who} | {what} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
