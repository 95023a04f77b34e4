"""The directory's routes (/api/v1/directory): people with their roles, WeCom user ids and
mobiles, CSV import, duty rosters and the audit trail. Admins manage their division and below;
every change is audited in the same transaction as the change."""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from services.dispatch import directory_store as store
from services.dispatch.directory import (
    DIRECTORY_ROLES,
    NOT_IN_DIRECTORY,
    PersonIn,
    PersonRole,
    ShiftIn,
    holds,
    manages,
    read_people_csv,
    serves_department,
    session_role,
)
from services.dispatch.directory_publish import publish, publish_person, publish_shift
from shared.auth import WECOM_LOGIN_AUDIENCE, WECOM_SUBJECT_PREFIX, Actor, InvalidToken
from shared.events import DutyShiftRemoved, utcnow
from shared.phones import encrypt_phone, mask_phone, phone_hash
from shared.problems import Problem
from shared.web import Connection, CurrentActor, public

router = APIRouter(prefix="/api/v1/directory", tags=["directory"])
MAX_CSV_BYTES = 2 * 1024 * 1024


class PersonOut(BaseModel):
    person_id: str
    name: str
    wecom_user_id: str | None
    mobile_masked: str | None  # 138****1234: the number itself is never shown
    active: bool
    updated_at: datetime
    roles: list[PersonRole]


class PeopleOut(BaseModel):
    people: list[PersonOut]


class ImportOut(BaseModel):
    imported: int
    person_ids: list[str]


class ShiftOut(BaseModel):
    shift_id: UUID
    department_code: str
    jurisdiction_code: str
    starts_at: datetime
    ends_at: datetime
    on_duty: str
    on_duty_name: str
    on_duty_wecom_user_id: str | None
    backup: str | None
    backup_name: str | None
    backup_wecom_user_id: str | None


class RosterOut(BaseModel):
    shifts: list[ShiftOut]


class AuditEntry(BaseModel):
    audit_id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


class AuditOut(BaseModel):
    entries: list[AuditEntry]


def _admin(actor: Actor, jurisdiction_code: str | None = None) -> None:
    if actor.role != "admin":
        raise Problem(403, "Admins only", "只有管理员可以管理通讯录和值班表。", kind="forbidden")
    if jurisdiction_code is not None and not manages(admin=actor, jurisdiction_code=jurisdiction_code):
        raise Problem(
            403,
            "Outside your jurisdiction",
            f"您只能管理 {actor.jurisdiction_code} 及以下的人员和值班表，请联系上级管理员。",
            kind="forbidden",
        )


def _mobile(request: Request, mobile: str | None) -> tuple[bytes, bytes, str] | None:
    """A mobile as it is kept: ciphertext, keyed hash, masked."""
    if mobile is None:
        return None
    settings = request.app.state.settings
    return (
        encrypt_phone(mobile, settings.directory_mobile_encryption_key),
        phone_hash(mobile, settings.directory_mobile_hash_key),
        mask_phone(mobile),
    )


async def _out(conn, rows) -> list[PersonOut]:
    roles = await store.roles_of(conn, [r["person_id"] for r in rows])
    return [PersonOut(**dict(r), roles=[PersonRole(**x) for x in roles[r["person_id"]]]) for r in rows]


async def _visible_person(conn, actor: Actor, person_id: str) -> PersonOut:
    """A person the admin manages (every role of theirs in the admin's division or below), else 404."""
    _admin(actor)
    row = await store.person(conn, person_id)
    if row is not None:
        found = (await _out(conn, [row]))[0]
        if all(manages(admin=actor, jurisdiction_code=r.jurisdiction_code) for r in found.roles):
            return found
    raise Problem(404, "Not found", f"通讯录中没有 {person_id}，或不在您的管理范围内。", kind="not-found")


async def _save(request: Request, conn, actor: Actor, person_id: str, person: PersonIn, *, action: str) -> None:
    for role in person.roles:
        _admin(actor, role.jurisdiction_code)
    if person.wecom_user_id:
        owner = await store.wecom_user_owner(conn, person.wecom_user_id)
        if owner not in (None, person_id):
            raise Problem(
                409, "WeCom user id taken", f"企业微信账号 {person.wecom_user_id} 已属于 {owner}。", kind="conflict"
            )
    if await store.person(conn, person_id) is not None:
        await _visible_person(conn, actor, person_id)  # an admin does not take over another county's person
    roles = [r.model_dump() for r in person.roles]
    await store.save_person(
        conn,
        person_id=person_id,
        name=person.name,
        wecom_user_id=person.wecom_user_id,
        mobile=_mobile(request, person.mobile),
        active=person.active,
        roles=roles,
    )
    detail = person.model_dump(exclude={"mobile"}) | {"mobile": mask_phone(person.mobile) if person.mobile else None}
    await store.audit(conn, actor=actor.label, action=action, subject=person_id, detail=detail)
    await publish_person(conn, request.app.state.settings, person_id)


@router.put("/people/{person_id}", response_model=PersonOut)
async def save_person(person_id: str, person: PersonIn, request: Request, conn: Connection, actor: CurrentActor):
    """Create or replace a person (their roles, WeCom user id, mobile); `person_id` is their
    subject at the identity provider."""
    async with conn.transaction():
        await _save(request, conn, actor, person_id, person, action="person.saved")
    return await _visible_person(conn, actor, person_id)


@router.get("/people", response_model=PeopleOut)
async def list_people(
    request: Request,
    conn: Connection,
    actor: CurrentActor,
    role: str | None = Query(None, pattern="^(" + "|".join(DIRECTORY_ROLES) + ")$"),
    department_code: str | None = Query(None, max_length=40),
    jurisdiction_code: str | None = Query(None, pattern=r"^\d{6,15}$"),
    mobile: str | None = Query(None, pattern=r"^1[3-9]\d{9}$", description="find someone by their number"),
):
    """People with a role in the admin's division (or the given one below it)."""
    within = jurisdiction_code or actor.jurisdiction_code
    _admin(actor, within)
    hashed = phone_hash(mobile, request.app.state.settings.directory_mobile_hash_key) if mobile else None
    rows = await store.people(conn, within=within, role=role, department_code=department_code, mobile_hash=hashed)
    return PeopleOut(people=await _out(conn, rows))


@router.get("/people/{person_id}", response_model=PersonOut)
async def get_person(person_id: str, conn: Connection, actor: CurrentActor):
    return await _visible_person(conn, actor, person_id)


@router.delete("/people/{person_id}", response_model=PersonOut)
async def deactivate_person(person_id: str, request: Request, conn: Connection, actor: CurrentActor):
    """Someone who left: kept (their shifts and history name them), no longer active."""
    async with conn.transaction():
        await _visible_person(conn, actor, person_id)
        await store.deactivate(conn, person_id)
        await store.audit(conn, actor=actor.label, action="person.deactivated", subject=person_id, detail={})
        await publish_person(conn, request.app.state.settings, person_id)
    return await _visible_person(conn, actor, person_id)


@router.post(
    "/people/import",
    response_model=ImportOut,
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}},
)
async def import_people(request: Request, conn: Connection, actor: CurrentActor):
    """People from a CSV (columns person_id, name, wecom_user_id, mobile, role, jurisdiction_code,
    department_code; one row per role). Everything is checked first — each error with its line —
    and then saved in one transaction, or nothing is."""
    _admin(actor)
    body = await request.body()
    if len(body) > MAX_CSV_BYTES:
        raise Problem(413, "Request too large", "通讯录文件不能超过 2 MB，请分批导入。", kind="request-too-large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(422, "Not UTF-8", "请把通讯录另存为 UTF-8 编码的 CSV 后再导入。", kind="invalid-csv") from None
    people, errors = read_people_csv(text, admin=actor)
    if errors:
        raise Problem(
            422,
            "Invalid people file",
            f"通讯录文件有 {len(errors)} 处错误，已全部列出；改正后重新导入（未导入任何人员）。",
            kind="invalid-csv",
            errors=[e.model_dump() for e in errors],
        )
    async with conn.transaction():
        for person_id, person in people.items():
            await _save(request, conn, actor, person_id, person, action="person.imported")
    return ImportOut(imported=len(people), person_ids=list(people))


@router.post("/rosters/shifts", status_code=201, response_model=ShiftOut)
async def add_shift(shift: ShiftIn, request: Request, conn: Connection, actor: CurrentActor):
    """A shift of a department's duty roster: the person on duty and a backup, each of whom must
    serve that department here (its handler, or a dispatcher); shifts do not overlap."""
    _admin(actor, shift.jurisdiction_code)
    names = [p for p in (shift.on_duty, shift.backup) if p]
    roles = await store.roles_of(conn, names)
    for person_id in names:
        row = await store.person(conn, person_id)
        if row is None or not row["active"]:
            raise Problem(
                422, "Unknown person", f"通讯录中没有在岗的 {person_id}，请先录入人员。", kind="validation-error"
            )
        if not serves_department(
            roles[person_id], department_code=shift.department_code, jurisdiction_code=shift.jurisdiction_code
        ):
            raise Problem(
                422,
                "Not of this department",
                f"{row['name']} 不是 {shift.department_code} 的处置人员或本级调度员，不能排班。",
                kind="validation-error",
            )
    shift_id = uuid4()
    async with conn.transaction():
        clash = await store.add_shift(conn, shift_id=shift_id, **shift.model_dump())
        if clash is not None:
            raise Problem(
                409,
                "Shifts overlap",
                f"与已有班次（{clash['starts_at']:%Y-%m-%d %H:%M} 至 {clash['ends_at']:%Y-%m-%d %H:%M} UTC）时间重叠。",
                kind="conflict",
                shift_id=str(clash["shift_id"]),
            )
        await store.audit(
            conn, actor=actor.label, action="shift.added", subject=str(shift_id), detail=shift.model_dump()
        )
        row = await store.shift(conn, shift_id)
        assert row is not None
        await publish_shift(conn, request.app.state.settings, row)
    return ShiftOut(**dict(row))


def _may_read_roster(actor: Actor, jurisdiction_code: str) -> None:
    """Staff of the division or above read its rosters (handlers their own department's only)."""
    if not jurisdiction_code.startswith(actor.jurisdiction_code) or actor.role == "grid_worker":
        raise Problem(403, "Not allowed", "您无权查看该部门的值班表。", kind="forbidden")


@router.get("/rosters/{department_code}", response_model=RosterOut)
async def roster(
    department_code: str,
    conn: Connection,
    actor: CurrentActor,
    jurisdiction_code: str = Query(pattern=r"^\d{6,15}$"),
    since: datetime | None = None,
    days: int = Query(7, ge=1, le=62),
):
    """The department's shifts from `since` (default now) for `days` days."""
    _may_read_roster(actor, jurisdiction_code)
    if actor.role == "handler" and actor.department_code != department_code:
        raise Problem(403, "Not allowed", "您只能查看本部门的值班表。", kind="forbidden")
    start = since or datetime.now().astimezone()
    rows = await store.shifts(
        conn,
        department_code=department_code,
        jurisdiction_code=jurisdiction_code,
        since=start,
        until=start + timedelta(days=days),
    )
    return RosterOut(shifts=[ShiftOut(**dict(r)) for r in rows])


@router.get("/rosters/{department_code}/on-duty", response_model=ShiftOut)
async def on_duty(
    department_code: str,
    conn: Connection,
    actor: CurrentActor,
    jurisdiction_code: str = Query(pattern=r"^\d{6,15}$"),
    at: datetime | None = None,
):
    """Who is on duty (and who backs them up) at `at` (default now): whom 派单 should @."""
    _may_read_roster(actor, jurisdiction_code)
    moment = at or datetime.now().astimezone()
    rows = await store.shifts(
        conn,
        department_code=department_code,
        jurisdiction_code=jurisdiction_code,
        since=moment,
        until=moment + timedelta(microseconds=1),
    )
    if not rows:
        raise Problem(404, "Nobody on duty", "该时间没有排班，请联系部门管理员排班。", kind="not-found")
    return ShiftOut(**dict(rows[0]))


class Removed(BaseModel):
    shift_id: UUID
    removed: bool


@router.delete("/rosters/shifts/{shift_id}", response_model=Removed)
async def remove_shift(shift_id: UUID, request: Request, conn: Connection, actor: CurrentActor):
    """Take a shift off the roster (audited with what it was)."""
    async with conn.transaction():
        row = await store.shift(conn, shift_id)
        if row is None:
            raise Problem(404, "Not found", "没有这个班次。", kind="not-found")
        _admin(actor, row["jurisdiction_code"])
        await store.delete_shift(conn, shift_id)
        await store.audit(conn, actor=actor.label, action="shift.removed", subject=str(shift_id), detail=dict(row))
        await publish(
            conn,
            request.app.state.settings,
            DutyShiftRemoved(
                shift_id=shift_id,
                department_code=row["department_code"],
                jurisdiction_code=row["jurisdiction_code"],
                removed_at=utcnow(),
            ),
            key=f"shift:{shift_id}",
            jurisdiction_code=row["jurisdiction_code"],
        )
    return Removed(shift_id=shift_id, removed=True)


@router.get("/audit", response_model=AuditOut)
async def audit_trail(
    request: Request,
    conn: Connection,
    actor: CurrentActor,
    subject: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
):
    """Who changed what in the directory and rosters, newest first: for the admins of this
    instance's county (another county's admins never read it, when a city runs several)."""
    _admin(actor)
    if actor.jurisdiction_code[:6] != request.app.state.settings.jurisdiction_code[:6]:
        raise Problem(403, "Another county", "您无权查看其他区县的通讯录变更记录。", kind="forbidden")
    rows = await store.audit_trail(conn, subject=subject, limit=limit)
    return AuditOut(entries=[AuditEntry(**dict(r)) for r in rows])


# --- WeCom sessions (the mobile work page): the directory decides who a WeCom user is -------------


class WecomPersonOut(BaseModel):
    person_id: str
    name: str
    wecom_user_id: str
    session_role: PersonRole = Field(description="the role the WeCom session acts in")
    roles: list[PersonRole]


async def _wecom_person(conn, userid: str) -> tuple[asyncpg.Record, list[dict]]:
    """The active person with this WeCom user id and their roles; 403 (in Chinese) otherwise."""
    row = await store.person_by_wecom(conn, userid)
    if row is None or not row["active"]:
        raise Problem(403, "Not in the directory", NOT_IN_DIRECTORY.format(userid=userid), kind="forbidden")
    return row, (await store.roles_of(conn, [row["person_id"]]))[row["person_id"]]


@router.post("/wecom-login", response_model=WecomPersonOut)
@public(
    "the console's WeCom login: the caller sends the console's one-minute ES256 assertion for the WeCom "
    "user it has just seen (audience urn:gridlink:dispatch:wecom-login, which no other route takes), "
    "checked here; the answer is that person's directory entry"
)
async def wecom_login(request: Request, conn: Connection):
    """Who a WeCom user is in the directory, and the role their mobile session acts in; an unknown
    or deactivated user id, or one without a role the mobile pages serve, is refused (403)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    verifier = request.app.state.token_verifier.wecom
    if scheme.lower() != "bearer" or verifier is None:
        raise Problem(401, "Authentication required", "缺少企业微信登录凭证。", kind="unauthenticated")
    try:
        claims = verifier.claims(token.strip(), audience=WECOM_LOGIN_AUDIENCE)
    except InvalidToken as error:
        raise Problem(401, "Invalid token", f"企业微信登录凭证无效（{error}）。", kind="unauthenticated") from None
    userid = str(claims["sub"]).removeprefix(WECOM_SUBJECT_PREFIX)
    row, roles = await _wecom_person(conn, userid)
    chosen = session_role(roles)
    if chosen is None:
        raise Problem(
            403,
            "No mobile role",
            f"{row['name']}在通讯录中没有可使用移动工作台的角色（处置人员、网格员、调度员、督查员或管理员），请联系管理员。",
            kind="forbidden",
        )
    return WecomPersonOut(
        person_id=row["person_id"],
        name=row["name"],
        wecom_user_id=userid,
        session_role=PersonRole(**chosen),
        roles=[PersonRole(**r) for r in roles],
    )


async def directory_actor(conn, actor: Actor) -> Actor:
    """The person a WeCom session's token names, as the directory says now: their person id and
    name, acting in the token's role only while the directory still gives it to them (403 once
    they are deactivated or the role is taken away)."""
    row, roles = await _wecom_person(conn, actor.subject.removeprefix(WECOM_SUBJECT_PREFIX))
    if not holds(roles, actor):
        raise Problem(
            403, "Role changed", "您在通讯录中的角色已变更，请关闭页面后从企业微信重新打开。", kind="forbidden"
        )
    return Actor(
        subject=row["person_id"],
        role=actor.role,
        jurisdiction_code=actor.jurisdiction_code,
        department_code=actor.department_code,
        name=row["name"],
    )
