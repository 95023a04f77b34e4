"""Dispatch's HTTP routes."""

from uuid import UUID

from fastapi import APIRouter, Request

from services.dispatch import store
from shared.problems import Problem

router = APIRouter(prefix="/api/v1")


@router.get("/cases/{case_id}")
async def get_case(case_id: UUID, request: Request):
    """A case with its timeline."""
    async with request.app.state.runtime.pool.acquire() as conn:
        case = await store.find_case(conn, case_id=case_id)
        if case is None:
            raise Problem(404, "Case not found", f"No case {case_id}.", kind="not-found")
        timeline = await store.list_timeline(conn, case_id=case_id)
    return {
        **{k: (str(v) if isinstance(v, UUID) else v) for k, v in dict(case).items()},
        "timeline": [
            {"at": t["at"], "action": t["action"], "status": t["status"], "actor": t["actor"], "detail": t["detail"]}
            for t in timeline
        ],
    }
