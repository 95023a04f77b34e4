"""SLA's HTTP routes, for staff: a case's deadlines, departments' scores, the policy in force.

The official calendar (holidays and 调休) is read by every staff role and changed by admins only.

Who may read them: every staff role (dispatcher, handler, grid_worker, supervisor, admin), which
is every valid token. Deadlines and on-time scores are what the whole county works to and is
assessed by (考核通报); they name departments and times, never residents.
"""

import logging
from datetime import date, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from services.sla import metrics, store
from services.sla.calendar import CST, InvalidCalendar, calendar_year
from shared.events import utcnow
from shared.problems import Problem
from shared.sla_policy import Duration
from shared.web import Connection, CurrentActor

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1")


class Timer(BaseModel):
    stage: str = Field(
        description="acknowledge (接单), joint_plan (联合处置方案), resolve (办结), arbitrate (退单仲裁)"
    )
    department_code: str
    round: int = Field(description="1, then one more each time the case is dispatched again")
    priority: str
    clock: str = Field(description="wall, working, or working:<department> (its own hours)")
    minutes: float = Field(description="length of the stage on its clock")
    started_at: datetime
    warn_at: datetime = Field(description="first 催办")
    due_at: datetime = Field(description="督办 when the stage is not done by then")
    reminders: int = Field(description="催办 sent so far")
    paused_at: datetime | None = Field(description="set while an extension or a question to the reporter is open")
    fired_at: datetime | None = Field(description="when it breached")
    stopped_at: datetime | None
    stop_reason: str | None


class CaseTimers(BaseModel):
    case_id: UUID
    timers: list[Timer]


class DepartmentScore(BaseModel):
    department_code: str
    on_time: int = Field(description="stages finished in time")
    late: int = Field(description="stages finished after their deadline")
    warnings: int = Field(description="催办")
    breaches: int = Field(description="督办")
    on_time_rate: float | None = Field(description="on_time / (on_time + late); null when none finished")


class DepartmentScores(BaseModel):
    since: date
    until: date
    departments: list[DepartmentScore]


# A stage's time as written in the policy file, e.g. {"minutes": 10} or {"working_days": 3}.
DurationSpec = dict[str, int | float]


class PolicyView(BaseModel):
    version: str
    warning_ratio: float = Field(description="催办 when this share of a stage's time is used")
    stage_warning_ratio: dict[str, float] = Field(
        {}, description="stage → its own share (接单 at half, when the backup on duty is @-mentioned)"
    )
    stages: dict[str, dict[str, DurationSpec]] = Field(description="priority → stage → time")
    levels: dict[str, dict[str, dict[str, DurationSpec]]] = Field(description="level → priority → stage → time")
    reminder_every_minutes: dict[str, float] = Field(description="priority → minutes between repeated 催办")
    always: list[str] = Field(description="round-the-clock departments")
    notices: dict[str, int] | None = Field(
        None, description="通报: {breaches, days} — that many missed deadlines of a department within that many days"
    )


@router.get("/cases/{case_id}/timers", response_model=CaseTimers)
async def case_timers(case_id: UUID, conn: Connection, actor: CurrentActor):
    """The deadlines of one case: when each warns and is due, and whether it breached or stopped.

    Who: any staff member (see the module docstring)."""
    rows = await store.list_timers(conn, case_id=case_id)
    return {"case_id": case_id, "timers": [dict(row) for row in rows]}


@router.get("/departments/scores", response_model=DepartmentScores)
async def department_scores(
    conn: Connection, actor: CurrentActor, since: date | None = None, until: date | None = None
):
    """Per department: stages finished in time and late, warnings (催办) and breaches (督办).

    Who: any staff member; the scores are the county's published assessment of its departments."""
    until = until or utcnow().astimezone(CST).date()
    # The 30 days before `until`, or from the first day there is when `until` is nearer to it.
    since = since or (until - timedelta(days=30) if until > date.min + timedelta(days=30) else date.min)
    if since > until:
        raise Problem(400, "Invalid period", "since must not be after until.", kind="invalid-period")
    rows = await store.scores(conn, since=since, until=until)
    result = []
    for row in rows:
        finished = row["on_time"] + row["late"]
        result.append({**dict(row), "on_time_rate": round(row["on_time"] / finished, 4) if finished else None})
    return {"since": since, "until": until, "departments": result}


def _written(stages: dict[str, dict[str, Duration]]) -> dict[str, dict[str, DurationSpec]]:
    return {
        priority: {stage: {d.unit: d.amount} for stage, d in by_stage.items()} for priority, by_stage in stages.items()
    }


@router.get("/policy", response_model=PolicyView)
async def policy(request: Request, actor: CurrentActor):
    """The deadline policy in force, as written in the policy file.

    Who: any staff member; every department should know its deadlines."""
    p = request.app.state.policy.document
    return {
        "version": p.version,
        "warning_ratio": p.warning_ratio,
        "stage_warning_ratio": p.stage_warning_ratios,
        "stages": _written(p.stages),
        "levels": {level: _written(stages) for level, stages in p.levels.items()},
        "reminder_every_minutes": p.reminder_every_minutes,
        "always": sorted(p.always),
        "notices": {"breaches": p.notices.breaches, "days": p.notices.days} if p.notices else None,
    }


# --- the official calendar --------------------------------------------------------------------


class HolidayRange(BaseModel):
    name: str = Field(description="元旦, 春节, 清明, 劳动节, 端午, 中秋, 国庆节…", min_length=1, max_length=40)
    first: date = Field(description="first day off")
    last: date = Field(description="last day off (the range includes the weekend days in it)")


class MadeUpWorkday(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    day: date = Field(alias="date", description="a Saturday or Sunday worked (调休上班)")
    holiday: str = Field("", alias="for", description="the holiday it makes up for", max_length=40)


class CalendarYearIn(BaseModel):
    source: str = Field(
        description="the notice the dates come from, e.g. 国务院办公厅关于2027年部分节假日安排的通知",
        min_length=1,
        max_length=200,
    )
    holidays: list[HolidayRange] = Field(max_length=40)
    workdays: list[MadeUpWorkday] = Field(max_length=40)


class CalendarYearView(CalendarYearIn):
    year: int
    origin: str = Field(description="api (entered by an admin), file (shared/data/holidays.yaml)")


class CalendarChange(BaseModel):
    year: int
    changed_at: datetime
    actor: str = Field(description="role:subject of the admin")
    actor_name: str | None
    before: dict | None = Field(description="the year as entered before (null: it came from the file or nowhere)")
    after: dict


class CalendarCoverage(BaseModel):
    today: date = Field(description="in Beijing time")
    covered_through: date | None = Field(description="last day with official data, in a run from today")
    days_ahead: int = Field(description="days from today on with official data")
    horizon_days: int = Field(description="deadlines need this many days ahead covered")
    covered: bool = Field(description="false: some working-day deadlines may treat holidays as working days")
    banner: str | None = Field(description="what the console shows when not covered (Chinese), else null")
    years: dict[int, str] = Field(description="year → where its data comes from: api, file or package")


# Years the calendar takes: the notices begin long after 2000, and a county plans no further than 2100.
CalendarYearNumber = Annotated[int, Path(ge=2000, le=2100, description="the year, e.g. 2027")]


def _calendar(request: Request):
    return request.app.state.calendar


def _today(request: Request) -> date:
    return request.app.state.clock().astimezone(CST).date()


def _require_admin(actor) -> None:
    if actor.role != "admin":
        raise Problem(
            403,
            "Admins only",
            "Only an admin may change the official calendar; ask your county's admin to enter the notice.",
            kind="forbidden",
        )


@router.get("/calendar", response_model=CalendarCoverage)
async def calendar_coverage(request: Request, actor: CurrentActor):
    """Whether the official calendar covers the coming days, and where each year's data comes from;
    `banner` is what the console shows while it does not.

    Who: any staff member; deadlines depend on it."""
    calendar = _calendar(request)
    today = _today(request)
    coverage = calendar.coverage(today)
    known = set(calendar.file_years) | set(calendar.stored_years) | set(range(today.year - 1, today.year + 2))
    return {
        "today": today,
        "covered_through": coverage.covered_through,
        "days_ahead": coverage.days_ahead,
        "horizon_days": coverage.horizon_days,
        "covered": coverage.ok,
        "banner": coverage.message(),
        "years": {year: origin for year in sorted(known) if (origin := calendar.source_of(year))},
    }


@router.get("/calendar/years/{year}", response_model=CalendarYearView)
async def calendar_year_view(year: CalendarYearNumber, request: Request, actor: CurrentActor):
    """One year's holidays and 调休 working days as sla uses them.

    Who: any staff member."""
    calendar = _calendar(request)
    entry = calendar.year(year)
    if entry is None:
        raise Problem(
            404,
            "Year not entered",
            f"{year} is neither in the calendar file nor entered by an admin; an admin can enter it "
            f"from the State Council's notice (PUT /api/v1/calendar/years/{year}).",
            kind="calendar-year-missing",
        )
    return {"year": year, "origin": calendar.source_of(year), **entry.as_document()}


@router.put("/calendar/years/{year}", response_model=CalendarYearView)
async def put_calendar_year(
    year: CalendarYearNumber, body: CalendarYearIn, request: Request, conn: Connection, actor: CurrentActor
):
    """Enter or correct a year from the State Council's notice; it wins over the file and the
    package from now on (new deadlines; running ones keep theirs). Audited: who, when, before, after.

    Who: admins only."""
    _require_admin(actor)
    try:
        entry = calendar_year(
            year=year,
            source=body.source,
            holidays=[h.model_dump() for h in body.holidays],
            workdays=[{"date": w.day, "for": w.holiday} for w in body.workdays],
        )
    except InvalidCalendar as error:
        raise Problem(422, "Invalid calendar", str(error), kind="invalid-calendar") from None
    document = entry.as_document()
    async with conn.transaction():
        await store.save_calendar_year(
            conn, year=year, document=document, at=utcnow(), actor=actor.label, actor_name=actor.name
        )
    calendar = _calendar(request)
    calendar.use_stored(calendar.stored_years | {year: entry})
    metrics.CALENDAR_DAYS_AHEAD.set(calendar.coverage(_today(request)).days_ahead)
    log.warning("calendar %s entered by %s (%s)", year, actor.label, body.source)
    return {"year": year, "origin": "api", **document}


@router.get("/calendar/changes", response_model=list[CalendarChange])
async def calendar_changes(
    conn: Connection,
    actor: CurrentActor,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):
    """Who changed the official calendar, when, and what it was before and after; newest first.

    Who: admins only."""
    _require_admin(actor)
    rows = await store.calendar_changes(conn, year=year, limit=limit)
    return [dict(r) for r in rows]
