"""SLA's HTTP routes."""

from uuid import UUID

from fastapi import APIRouter, Request

from services.sla import store

router = APIRouter(prefix="/api/v1")


@router.get("/cases/{case_id}/timers")
async def case_timers(case_id: UUID, request: Request):
    """The deadlines of one case and whether each fired or was stopped."""
    async with request.app.state.runtime.pool.acquire() as conn:
        rows = await store.list_timers(conn, case_id=case_id)
    return {"case_id": str(case_id), "timers": [
        {k: row[k] for k in ("stage", "department_code", "started_at", "due_at", "fired_at", "stopped_at")}
        for row in rows
    ]}
