"""SLA's HTTP routes."""

from datetime import date, timedelta
from uuid import UUID

from fastapi import APIRouter, Request

from services.sla import store
from services.sla.calendar import CST
from shared.events import utcnow
from shared.problems import Problem

router = APIRouter(prefix="/api/v1")
TIMER_FIELDS = ("stage", "department_code", "round", "priority", "clock", "minutes", "started_at", "warn_at", "due_at",
                "reminders", "paused_at", "fired_at", "stopped_at", "stop_reason")


@router.get("/cases/{case_id}/timers")
async def case_timers(case_id: UUID, request: Request):
    """The deadlines of one case: when each warns and is due, and whether it breached or stopped."""
    async with request.app.state.runtime.pool.acquire() as conn:
        rows = await store.list_timers(conn, case_id=case_id)
    return {"case_id": str(case_id), "timers": [{k: row[k] for k in TIMER_FIELDS} for row in rows]}


@router.get("/departments/scores")
async def department_scores(request: Request, since: date | None = None, until: date | None = None):
    """Per department: stages finished in time and late, warnings (催办) and breaches (督办)."""
    until = until or utcnow().astimezone(CST).date()
    since = since or until - timedelta(days=30)
    if since > until:
        raise Problem(400, "Invalid period", "since must not be after until.", kind="invalid-period")
    async with request.app.state.runtime.pool.acquire() as conn:
        rows = await store.scores(conn, since=since, until=until)
    result = []
    for row in rows:
        finished = row["on_time"] + row["late"]
        result.append({**dict(row), "on_time_rate": round(row["on_time"] / finished, 4) if finished else None})
    return {"since": since, "until": until, "departments": result}


@router.get("/policy")
async def policy(request: Request):
    """The deadline policy in force."""
    p = request.app.state.policy
    return {"version": p.version, "warning_ratio": p.warning_ratio, "stages": p.stages, "levels": p.levels,
            "reminder_every_minutes": p.reminder_minutes, "always": sorted(p.always)}
