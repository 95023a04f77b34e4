"""SLA's HTTP routes, for staff: a case's deadlines, departments' scores, the policy in force.

Who may read them: every staff role (dispatcher, handler, grid_worker, supervisor, admin), which
is every valid token. Deadlines and on-time scores are what the whole county works to and is
assessed by (考核通报); they name departments and times, never residents.
"""

from datetime import date, datetime, timedelta
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from services.sla import store
from services.sla.calendar import CST
from shared.events import utcnow
from shared.problems import Problem
from shared.sla_policy import Duration
from shared.web import Connection, CurrentActor

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
    stages: dict[str, dict[str, DurationSpec]] = Field(description="priority → stage → time")
    levels: dict[str, dict[str, dict[str, DurationSpec]]] = Field(description="level → priority → stage → time")
    reminder_every_minutes: dict[str, float] = Field(description="priority → minutes between repeated 催办")
    always: list[str] = Field(description="round-the-clock departments")


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
        "stages": _written(p.stages),
        "levels": {level: _written(stages) for level, stages in p.levels.items()},
        "reminder_every_minutes": p.reminder_every_minutes,
        "always": sorted(p.always),
    }
