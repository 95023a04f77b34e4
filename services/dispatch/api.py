"""Dispatch's HTTP routes: cases (list, detail, one POST per action), the responsibility list,
and the development token issuer."""

import base64
import hashlib
import json
from datetime import datetime
from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.dispatch import cases, store
from services.dispatch.domain import ACTIONS, Forbidden, IllegalTransition, can_see
from services.dispatch.responsibility import InvalidResponsibilityList, build_list
from shared.auth import ROLES, Actor, issue_token
from shared.problems import Problem
from shared.web import CurrentActor, public

router = APIRouter(prefix="/api/v1")


def case_json(row: asyncpg.Record, timeline: list[asyncpg.Record] | None = None) -> dict:
    body = jsonable_encoder(dict(row))
    body["media"] = {"before": body.pop("before_media_ids"), "after": body.pop("after_media_ids")}
    if timeline is not None:
        body["timeline"] = [
            {"seq": t["seq"], "at": t["at"], "action": t["action"], "status": t["status"], "actor": t["actor"],
             "reason": t["reason"], "detail": t["detail"]}
            for t in timeline
        ]
    return jsonable_encoder(body)


def _visible(actor: Actor, row: asyncpg.Record) -> bool:
    return can_see(actor=actor, case=cases.case_state(row))


@router.get("/cases")
async def list_cases(
    request: Request, actor: CurrentActor,
    status: str | None = None, department_code: str | None = None,
    jurisdiction_code: str | None = Query(None, pattern=r"^\d{6}(\d{3}){0,2}$"),
    category: str | None = None, priority: str | None = Query(None, pattern="^(urgent|normal)$"),
    overdue: bool | None = None, created_from: datetime | None = None, created_to: datetime | None = None,
    cursor: str | None = None, limit: int = Query(50, ge=1, le=200),
):
    """Cases the actor may see, newest first, filtered; follow `next_cursor` for the next page."""
    prefix = jurisdiction_code or actor.jurisdiction_code
    if not prefix.startswith(actor.jurisdiction_code):
        raise Problem(403, "Outside your jurisdiction", f"您只能查看 {actor.jurisdiction_code} 辖区内的案件。",
                      kind="forbidden")
    if actor.role == "handler":
        department_code = actor.department_code  # a department sees its own cases only
    after = None
    if cursor:
        try:
            created_at, case_id = json.loads(base64.urlsafe_b64decode(cursor))
            after = (datetime.fromisoformat(created_at), UUID(case_id))
        except (ValueError, TypeError):
            raise Problem(400, "Invalid cursor", "Use the next_cursor of the previous page.", kind="invalid-cursor")
    async with request.app.state.runtime.pool.acquire() as conn:
        rows = await store.list_cases(
            conn, jurisdiction_prefix=prefix, department_code=department_code, status=status, category=category,
            priority=priority, overdue=overdue, created_from=created_from, created_to=created_to, after=after,
            limit=limit,
        )
    next_cursor = None
    if len(rows) == limit:
        last = rows[-1]
        next_cursor = base64.urlsafe_b64encode(
            json.dumps([last["created_at"].isoformat(), str(last["case_id"])]).encode()).decode()
    return {"cases": [case_json(r) for r in rows], "next_cursor": next_cursor}


@router.get("/cases/{case_id}")
async def get_case(case_id: UUID, request: Request, actor: CurrentActor):
    """A case with its timeline and media."""
    async with request.app.state.runtime.pool.acquire() as conn:
        row = await store.find_case(conn, case_id=case_id)
        if row is None:
            raise Problem(404, "Case not found", f"No case {case_id}.", kind="not-found")
        if not _visible(actor, row):
            raise Problem(403, "Not your case", "该案件不在您的辖区或部门范围内。", kind="forbidden")
        timeline = await store.list_timeline(conn, case_id=case_id)
    return case_json(row, timeline)


class CommandIn(BaseModel):
    """Arguments of a case action; which ones are required depends on the action."""

    reason: str | None = Field(None, max_length=2000)
    department_code: str | None = None
    co_department_codes: list[str] | None = None
    result: str | None = Field(None, max_length=4000)
    after_media_ids: list[UUID] | None = None
    rating: int | None = None
    comment: str | None = Field(None, max_length=2000)
    plan: str | None = Field(None, max_length=8000)
    minutes: int | None = Field(None, ge=1, le=60 * 24 * 30)
    into_case_id: UUID | None = None
    category: str | None = Field(None, max_length=64)
    priority: str | None = Field(None, pattern="^(urgent|normal)$")


async def _command(
    request: Request, *, action: str, case_id: UUID, body: CommandIn, actor: Actor, idempotency_key: str | None,
) -> JSONResponse:
    runtime, app_state = request.app.state.runtime, request.app.state
    arguments = body.model_dump(exclude_none=True, mode="json")
    request_hash = hashlib.sha256(json.dumps([action, str(case_id), arguments], sort_keys=True).encode()).hexdigest()
    key = f"{actor.subject}:{idempotency_key}" if idempotency_key else None
    async with runtime.pool.acquire() as conn, conn.transaction():
        if key:
            earlier = await store.find_idempotent(conn, key=key)
            if earlier:
                if earlier["request_hash"] != request_hash:
                    raise Problem(422, "Idempotency-Key reused", "这个 Idempotency-Key 已用于另一个请求。",
                                  kind="idempotency-key-reused")
                return JSONResponse(earlier["response"], status_code=earlier["status_code"])
        try:
            row = await cases.run_command(conn, settings=app_state.settings, taxonomy=app_state.taxonomy,
                                          case_id=case_id, action=action, actor=actor, arguments=arguments)
        except cases.CaseNotFound:
            raise Problem(404, "Case not found", f"No case {case_id}.", kind="not-found") from None
        except Forbidden as error:
            raise Problem(403, "Not allowed", str(error), kind="forbidden") from None
        except IllegalTransition as error:
            raise Problem(409, "Action not allowed now", str(error), kind="illegal-transition") from None
        response = case_json(row)
        if key:
            await store.save_idempotent(conn, key=key, request_hash=request_hash, status_code=200, response=response)
    return JSONResponse(response)


def _command_route(action: str):
    async def command(case_id: UUID, body: CommandIn, request: Request, actor: CurrentActor,
                      idempotency_key: str | None = Header(None, max_length=200)):
        return await _command(request, action=action, case_id=case_id, body=body, actor=actor,
                              idempotency_key=idempotency_key)
    command.__name__ = action
    return command


for _action in ACTIONS:
    router.add_api_route(f"/cases/{{case_id}}/{_action.replace('_', '-')}", _command_route(_action),
                         methods=["POST"], summary=f"Case action: {_action}")


@router.get("/responsibility-list")
async def current_responsibility_list(request: Request, actor: CurrentActor):
    """The responsibility list in force, and its earlier versions."""
    async with request.app.state.runtime.pool.acquire() as conn:
        latest = await store.latest_list(conn)
        versions = await store.list_versions(conn)
    return {"current": latest["document"], "versions": jsonable_encoder([dict(v) for v in versions])}


@router.post("/responsibility-list", status_code=201)
async def publish_responsibility_list(document: dict, request: Request, actor: CurrentActor):
    """Publish a new version of the responsibility list (admins only); dispatch uses it at once."""
    if actor.role != "admin":
        raise Problem(403, "Admins only", "只有管理员可以修改责任清单。", kind="forbidden")
    try:
        rlist = build_list(taxonomy=request.app.state.taxonomy, document=document)
    except InvalidResponsibilityList as error:
        raise Problem(422, "Invalid responsibility list", str(error), kind="invalid-responsibility-list") from None
    async with request.app.state.runtime.pool.acquire() as conn:
        if not await store.insert_list(conn, version=rlist.version, document=rlist.document(), created_by=actor.label):
            raise Problem(409, "Version exists", f"版本 {rlist.version} 已存在，请使用新的版本号。", kind="version-exists")
    return rlist.document()


@router.get("/supervision")
async def supervised_breaches(request: Request, actor: CurrentActor, limit: int = Query(100, ge=1, le=1000)):
    """Deadlines missed by the centres below this one (督办), newest first."""
    if actor.role not in ("dispatcher", "supervisor", "admin"):
        raise Problem(403, "Not allowed", "只有调度员、督查员和管理员可以查看督办清单。", kind="forbidden")
    async with request.app.state.runtime.pool.acquire() as conn:
        rows = await store.list_supervised_breaches(conn, jurisdiction_prefix=actor.jurisdiction_code, limit=limit)
    return {"breaches": jsonable_encoder([dict(r) for r in rows])}


@router.get("/jurisdictions/{code}")
async def get_jurisdiction(code: str, request: Request, actor: CurrentActor):
    """A division with its children; a village with its grids, grid workers and WeChat groups."""
    async with request.app.state.runtime.pool.acquire() as conn:
        division = await store.find_jurisdiction(conn, code=code)
        if division is None:
            raise Problem(404, "Division not found", f"没有代码为 {code} 的行政区划（是否已运行 make seed？）。",
                          kind="not-found")
        children = await store.list_children(conn, code=code)
        grids = await store.list_grids(conn, village_code=code) if division["level"] == "village" else []
    return {**dict(division), "children": [dict(c) for c in children], "grids": [dict(g) for g in grids]}


class DevTokenIn(BaseModel):
    subject: str = Field(min_length=1, max_length=100)
    role: str = Field(pattern="^(" + "|".join(ROLES) + ")$")
    jurisdiction_code: str = Field(pattern=r"^\d{6}(\d{3}){0,2}$")
    department_code: str | None = None
    name: str = ""


@router.post("/auth/dev-tokens", status_code=201, include_in_schema=False)
@public("the development issuer (GRIDLINK_AUTH_DEV_ISSUER, make up only) is how a token is had at all; 404 when off")
async def dev_token(body: DevTokenIn, request: Request):
    """Tokens for local development (`make up`); absent unless GRIDLINK_AUTH_DEV_ISSUER=true."""
    settings = request.app.state.settings
    if not settings.auth_dev_issuer:
        raise Problem(404, "Not found", "The development token issuer is disabled.", kind="not-found")
    if body.role == "handler" and not body.department_code:
        raise Problem(422, "Department required", "A handler token names its department.", kind="validation-error")
    actor = Actor(subject=body.subject, role=body.role, jurisdiction_code=body.jurisdiction_code,
                  department_code=body.department_code, name=body.name)
    return {"access_token": issue_token(secret=settings.auth_jwt_secret, actor=actor), "token_type": "bearer"}
