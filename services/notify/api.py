"""Notify's HTTP routes."""

from uuid import UUID

from fastapi import APIRouter, Request

from services.notify import store

router = APIRouter(prefix="/api/v1")


@router.get("/cases/{case_id}/notifications")
async def case_notifications(case_id: UUID, request: Request):
    """Delivery status of every notification about a case."""
    async with request.app.state.runtime.pool.acquire() as conn:
        rows = await store.list_notifications(conn, case_id=case_id)
    fields = ("notification_id", "channel", "target", "template", "status", "attempts", "last_error", "created_at", "sent_at")
    return {"case_id": str(case_id), "notifications": [{k: row[k] for k in fields} for row in rows]}
