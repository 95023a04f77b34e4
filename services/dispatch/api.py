"""Dispatch's HTTP routes: cases (list, detail, one POST per action), the responsibility list,
and the development token issuer."""

import base64
import hashlib
import json
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.dispatch import cases, store
from services.dispatch.domain import Forbidden, IllegalTransition, available_actions, can_see
from services.dispatch.responsibility import InvalidResponsibilityList, build_list
from shared.auth import ROLES, Actor, issue_token
from shared.case_actions import ACTIONS, OPEN, STATUSES, ActionRequest, ActionSpec
from shared.problems import Problem
from shared.service import Runtime
from shared.web import Connection, CurrentActor, RuntimeDep, public

router = APIRouter(prefix="/api/v1")


class TimelineEntry(BaseModel):
    seq: int | None
    at: datetime
    action: str
    status: str
    actor: str
    reason: str | None
    detail: dict[str, Any]


class CaseMedia(BaseModel):
    before: list[UUID]  # 整改前
    after: list[UUID]  # 整改后


class CaseOut(BaseModel):
    """A case as staff see it."""

    case_id: UUID
    case_no: str | None  # the human case number (None for cases from before it was kept)
    report_id: UUID
    seq: int
    status: str
    jurisdiction_code: str
    grid_code: str | None
    owner_code: str | None
    level: str | None
    category: str
    category_name: str | None
    priority: str
    department_code: str | None
    department_name: str | None
    co_department_codes: list[str]
    acknowledged_departments: list[str]
    plan_submitted: bool
    extension_pending: bool
    awaiting_reporter: bool
    checked_at: datetime | None = Field(None, description="when a grid worker checked it on site (现场核实)")
    overdue: bool
    description: str
    address: str | None
    lat: float | None
    lng: float | None
    responsibility_list_version: str | None
    rule: str | None
    recurrence_of: UUID | None
    merged_into: UUID | None
    rating: int | None
    report_count: int
    resolved_at: datetime | None
    created_at: datetime
    updated_at: datetime
    media: CaseMedia


class Evidence(BaseModel):
    """A photo media holds for the case, as media told dispatch (media.attached)."""

    media_id: UUID
    role: str  # before | after
    flags: list[str] = Field(description="what media's checks found: far_from_report, reused_photo…")
    attached_at: datetime


class CaseDetail(CaseOut):
    timeline: list[TimelineEntry]
    evidence: list[Evidence] = []
    # What the asking person may do to the case now (the console's buttons), by action name.
    actions: list[str]


class CasePage(BaseModel):
    cases: list[CaseOut]
    next_cursor: str | None


def case_out(row: asyncpg.Record) -> CaseOut:
    return CaseOut(**dict(row), media=CaseMedia(before=row["before_media_ids"], after=row["after_media_ids"]))


# A division (6, 9 or 12 digits) or a grid (15): cases are listed by the deepest place known.
JURISDICTION_OR_GRID = r"^\d{6}(\d{3}){0,3}$"


def _prefix(actor: Actor, jurisdiction_code: str | None) -> str:
    """The place a listing covers: the asked one, which must be inside the actor's own."""
    prefix = jurisdiction_code or actor.jurisdiction_code
    if not prefix.startswith(actor.jurisdiction_code):
        raise Problem(
            403, "Outside your jurisdiction", f"您只能查看 {actor.jurisdiction_code} 辖区内的案件。", kind="forbidden"
        )
    return prefix


def _visible(actor: Actor, row: asyncpg.Record) -> bool:
    return can_see(actor=actor, case=cases.case_state(row))


@router.get("/cases", response_model=CasePage)
async def list_cases(
    conn: Connection,
    actor: CurrentActor,
    status: Annotated[list[str] | None, Query(description="one or more statuses (repeat the parameter)")] = None,
    department_code: str | None = None,
    jurisdiction_code: str | None = Query(None, pattern=JURISDICTION_OR_GRID),
    category: str | None = None,
    priority: str | None = Query(None, pattern="^(urgent|normal)$"),
    overdue: bool | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    q: str | None = Query(None, min_length=1, max_length=100),
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=200),
):
    """Cases the actor may see, newest first, filtered; follow `next_cursor` for the next page.
    `q` finds a case number exactly, or text in the description or the address."""
    unknown = sorted(set(status or ()) - set(STATUSES))
    if unknown:
        raise Problem(
            422,
            "Unknown status",
            f"没有这个状态：{'、'.join(unknown)}。可用：{'、'.join(STATUSES)}。",
            kind="unknown-status",
        )
    prefix = _prefix(actor, jurisdiction_code)
    if actor.role == "handler":
        department_code = actor.department_code  # a department sees its own cases only
    after = None
    if cursor:
        try:
            created_at, case_id = json.loads(base64.urlsafe_b64decode(cursor))
            after = (datetime.fromisoformat(created_at), UUID(case_id))
        except (ValueError, TypeError):
            raise Problem(
                400, "Invalid cursor", "Use the next_cursor of the previous page.", kind="invalid-cursor"
            ) from None
    rows = await store.list_cases(
        conn,
        jurisdiction_prefix=prefix,
        department_code=department_code,
        statuses=status,
        category=category,
        priority=priority,
        overdue=overdue,
        created_from=created_from,
        created_to=created_to,
        text=q.strip() if q else None,
        after=after,
        limit=limit,
    )
    next_cursor = None
    if len(rows) == limit:
        last = rows[-1]
        next_cursor = base64.urlsafe_b64encode(
            json.dumps([last["created_at"].isoformat(), str(last["case_id"])]).encode()
        ).decode()
    return CasePage(cases=[case_out(r) for r in rows], next_cursor=next_cursor)


class GridLoad(BaseModel):
    grid_code: str | None  # None: open cases not yet placed in a grid (待定位)
    open: int
    overdue: int
    urgent: int


class CaseMap(BaseModel):
    grids: list[GridLoad]


@router.get("/cases/by-grid", response_model=CaseMap)
async def open_cases_by_grid(
    conn: Connection,
    actor: CurrentActor,
    jurisdiction_code: str | None = Query(None, pattern=JURISDICTION_OR_GRID),
):
    """Open cases the actor may see, counted per grid (the console's map, coloured by overdue)."""
    rows = await store.open_cases_by_grid(
        conn,
        jurisdiction_prefix=_prefix(actor, jurisdiction_code),
        department_code=actor.department_code if actor.role == "handler" else None,
        statuses=list(OPEN),
    )
    return CaseMap(grids=[GridLoad(**dict(r)) for r in rows])


@router.get("/cases/{case_id}", response_model=CaseDetail)
async def get_case(case_id: UUID, conn: Connection, actor: CurrentActor):
    """A case with its timeline, media and the actions the asking person may take now."""
    row = await store.find_case(conn, case_id=case_id)
    if row is None:
        raise Problem(404, "Case not found", f"No case {case_id}.", kind="not-found")
    if not _visible(actor, row):
        raise Problem(403, "Not your case", "该案件不在您的辖区或部门范围内。", kind="forbidden")
    timeline = await store.list_timeline(conn, case_id=case_id)
    return CaseDetail(
        **case_out(row).model_dump(),
        timeline=[TimelineEntry(**dict(t)) for t in timeline],
        evidence=[Evidence(**dict(e)) for e in await store.case_evidence(conn, case_id=case_id)],
        actions=available_actions(actor=actor, case=cases.case_state(row)),
    )


async def _command(
    runtime: Runtime,
    *,
    settings,
    taxonomy,
    spec: ActionSpec,
    case_id: UUID,
    body: ActionRequest,
    actor: Actor,
    idempotency_key: str | None,
) -> JSONResponse:
    arguments = body.model_dump(exclude_none=True, mode="json")
    request_hash = hashlib.sha256(json.dumps([spec.name, str(case_id), arguments], sort_keys=True).encode()).hexdigest()
    key = f"{actor.subject}:{idempotency_key}" if idempotency_key else None
    async with runtime.pool.acquire() as conn, conn.transaction():
        if key:
            earlier = await store.find_idempotent(conn, key=key)
            if earlier:
                if earlier["request_hash"] != request_hash:
                    raise Problem(
                        422,
                        "Idempotency-Key reused",
                        "这个 Idempotency-Key 已用于另一个请求。",
                        kind="idempotency-key-reused",
                    )
                # A replay answers only someone who may still see the case (rights change).
                current = await store.find_case(conn, case_id=case_id)
                if current is None or not _visible(actor, current):
                    raise Problem(403, "Not your case", "该案件不在您的辖区或部门范围内。", kind="forbidden")
                return JSONResponse(earlier["response"], status_code=earlier["status_code"])
        try:
            row = await cases.run_command(
                conn,
                settings=settings,
                taxonomy=taxonomy,
                case_id=case_id,
                action=spec.name,
                actor=actor,
                arguments=arguments,
            )
        except cases.CaseNotFound:
            raise Problem(404, "Case not found", f"No case {case_id}.", kind="not-found") from None
        except Forbidden as error:
            raise Problem(403, "Not allowed", str(error), kind="forbidden") from None
        except IllegalTransition as error:
            raise Problem(409, "Action not allowed now", str(error), kind="illegal-transition") from None
        response = jsonable_encoder(case_out(row))
        if key:
            await store.save_idempotent(conn, key=key, request_hash=request_hash, status_code=200, response=response)
    return JSONResponse(response)


def _command_route(spec: ActionSpec):
    """The route of one action, taking that action's own request model."""
    Body = spec.request  # noqa: N806 - a class, used as the body's annotation

    async def command(
        case_id: UUID,
        # FastAPI reads the body's model from this annotation at run time: each action has its own,
        # so it is a variable, which a static type can't be.
        body: Body,  # type: ignore[valid-type]
        request: Request,
        runtime: RuntimeDep,
        actor: CurrentActor,
        idempotency_key: str | None = Header(None, max_length=200),
    ):
        return await _command(
            runtime,
            settings=request.app.state.settings,
            taxonomy=request.app.state.taxonomy,
            spec=spec,
            case_id=case_id,
            body=body,
            actor=actor,
            idempotency_key=idempotency_key,
        )

    command.__name__ = spec.name
    return command


for _spec in ACTIONS.values():
    roles = "、".join(sorted(_spec.roles)) + "、admin"
    router.add_api_route(
        f"/cases/{{case_id}}/{_spec.path}",
        _command_route(_spec),
        methods=["POST"],
        response_model=CaseOut,
        summary=f"{_spec.label}（{_spec.name}）",
        description=f"Allowed from {', '.join(_spec.from_statuses)}; roles: {roles}; "
        f"requires: {', '.join(_spec.requires) or 'nothing'}; publishes {_spec.event_type}. "
        "409 when the case's status or a missing argument does not allow it, 403 for someone who may not.",
    )


class ListVersion(BaseModel):
    version: str
    created_at: datetime
    created_by: str | None


class ResponsibilityListOut(BaseModel):
    current: dict[str, Any]  # the document in force, as published
    versions: list[ListVersion]


@router.get("/responsibility-list", response_model=ResponsibilityListOut)
async def current_responsibility_list(conn: Connection, actor: CurrentActor):
    """The responsibility list in force, and its earlier versions (any staff member may read it)."""
    latest = await store.list_in_force(conn)
    versions = await store.list_versions(conn)
    return ResponsibilityListOut(current=latest["document"], versions=[ListVersion(**dict(v)) for v in versions])


class ListDocument(ListVersion):
    document: dict[str, Any]


@router.get("/responsibility-list/versions/{version}", response_model=ListDocument)
async def responsibility_list_version(version: str, conn: Connection, actor: CurrentActor):
    """One published version of the responsibility list (to compare versions; any staff member)."""
    row = await store.find_list(conn, version=version)
    if row is None:
        raise Problem(404, "No such version", f"没有版本「{version}」的责任清单。", kind="not-found")
    return ListDocument(**dict(row))


@router.post("/responsibility-list", status_code=201, response_model=dict[str, Any])
async def publish_responsibility_list(
    document: dict[str, Any], request: Request, conn: Connection, actor: CurrentActor
):
    """Publish a new version of the responsibility list; dispatch uses it at once.

    Who: admins of this centre's division or above — a village's admin does not replace the
    county's list, a county admin may publish a town centre's."""
    if actor.role != "admin":
        raise Problem(403, "Admins only", "只有管理员可以修改责任清单。", kind="forbidden")
    centre = request.app.state.settings.jurisdiction_code
    if not centre.startswith(actor.jurisdiction_code):
        raise Problem(
            403,
            "Not this centre's admin",
            f"责任清单由 {centre} 及以上的管理员发布，请联系上级管理员。",
            kind="forbidden",
        )
    try:
        rlist = build_list(taxonomy=request.app.state.taxonomy, document=document)
    except InvalidResponsibilityList as error:
        raise Problem(
            422,
            "Invalid responsibility list",
            str(error),
            kind="invalid-responsibility-list",
            errors=[{"field": where, "message": message} for where, message in error.errors],
        ) from None
    if not await store.insert_list(conn, version=rlist.version, document=rlist.document(), created_by=actor.label):
        raise Problem(409, "Version exists", f"版本 {rlist.version} 已存在，请使用新的版本号。", kind="version-exists")
    return rlist.document()


class SupervisedBreach(BaseModel):
    """A deadline a centre below this one missed (督办)."""

    event_id: UUID
    case_id: UUID
    case_no: str | None  # None for breaches recorded before case numbers travelled with deadlines
    owner_code: str  # the centre that missed it
    jurisdiction_code: str | None
    stage: str
    department_code: str
    category: str | None
    due_at: datetime
    breached_at: datetime


class SupervisedNotice(BaseModel):
    """通报: a department missed `breaches` deadlines within `days` days (the SLA policy's count)."""

    notice_id: UUID
    jurisdiction_code: str
    department_code: str
    breaches: int
    days: int
    since: datetime
    issued_at: datetime
    case_ids: list[UUID]
    case_nos: list[str]


class SupervisionList(BaseModel):
    breaches: list[SupervisedBreach]
    notices: list[SupervisedNotice] = Field(default_factory=list, description="通报, newest first")


@router.get("/supervision", response_model=SupervisionList)
async def supervised_breaches(conn: Connection, actor: CurrentActor, limit: int = Query(100, ge=1, le=1000)):
    """Deadlines missed by the centres below this one (督办), and 通报 of departments' repeated
    breaches, newest first: dispatchers, supervisors and admins of this level."""
    if actor.role not in ("dispatcher", "supervisor", "admin"):
        raise Problem(403, "Not allowed", "只有调度员、督查员和管理员可以查看督办清单。", kind="forbidden")
    rows = await store.list_supervised_breaches(conn, jurisdiction_prefix=actor.jurisdiction_code, limit=limit)
    notices = await store.list_supervised_notices(conn, jurisdiction_prefix=actor.jurisdiction_code, limit=limit)
    return SupervisionList(
        breaches=[SupervisedBreach(**dict(r)) for r in rows], notices=[SupervisedNotice(**dict(r)) for r in notices]
    )


class DivisionOut(BaseModel):
    code: str
    name: str
    level: str
    kind: str | None


class GridOut(BaseModel):
    code: str
    name: str
    worker_id: str  # the grid worker's WeCom user id
    worker_name: str
    group_id: str  # the residents' WeChat group
    group_name: str


class JurisdictionOut(DivisionOut):
    parent_code: str | None
    children: list[DivisionOut]
    grids: list[GridOut]


@router.get("/jurisdictions/{code}", response_model=JurisdictionOut)
async def get_jurisdiction(code: str, conn: Connection, actor: CurrentActor):
    """A division with its children; a village with its grids, grid workers and WeChat groups.

    Who: staff of the division or above it (the people of a division are its own staff's business);
    the divisions above one's own are shown by name, without their people."""
    if not (code.startswith(actor.jurisdiction_code) or actor.jurisdiction_code.startswith(code)):
        raise Problem(
            403, "Outside your jurisdiction", f"您只能查看 {actor.jurisdiction_code} 辖区内的区划。", kind="forbidden"
        )
    division = await store.find_jurisdiction(conn, code=code)
    if division is None:
        raise Problem(
            404, "Division not found", f"没有代码为 {code} 的行政区划（是否已运行 make seed？）。", kind="not-found"
        )
    children = await store.list_children(conn, code=code)
    own = code.startswith(actor.jurisdiction_code)
    grids = await store.list_grids(conn, village_code=code) if own and division["level"] == "village" else []
    return JurisdictionOut(
        **dict(division), children=[DivisionOut(**dict(c)) for c in children], grids=[GridOut(**dict(g)) for g in grids]
    )


class DevTokenIn(BaseModel):
    subject: str = Field(min_length=1, max_length=100)
    role: str = Field(pattern="^(" + "|".join(ROLES) + ")$")
    # county, town, village, or a grid worker's grid (15 digits)
    jurisdiction_code: str = Field(pattern=r"^\d{6}(\d{3}){0,3}$")
    department_code: str | None = None
    name: str = ""


class TokenOut(BaseModel):
    access_token: str
    token_type: str


@router.post("/auth/dev-tokens", status_code=201, include_in_schema=False, response_model=TokenOut)
@public("the development issuer (GRIDLINK_AUTH_DEV_ISSUER, make up only) is how a token is had at all; 404 when off")
async def dev_token(body: DevTokenIn, request: Request):
    """Tokens for local development (`make up`); absent unless GRIDLINK_AUTH_DEV_ISSUER=true."""
    settings = request.app.state.settings
    if not settings.auth_dev_issuer:
        raise Problem(404, "Not found", "The development token issuer is disabled.", kind="not-found")
    if body.role == "handler" and not body.department_code:
        raise Problem(422, "Department required", "A handler token names its department.", kind="validation-error")
    actor = Actor(
        subject=body.subject,
        role=body.role,
        jurisdiction_code=body.jurisdiction_code,
        department_code=body.department_code,
        name=body.name,
    )
    return TokenOut(access_token=issue_token(secret=settings.auth_jwt_secret, actor=actor), token_type="bearer")
