"""Intake's HTTP routes."""

from uuid import UUID, uuid4

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from services.intake import store
from services.intake.domain import ReportIn, mask_phone, phone_hash
from shared.db import enqueue
from shared.events import ReportSubmitted, new_event, utcnow
from shared.problems import Problem

router = APIRouter(prefix="/api/v1")


def _report_view(row) -> dict:
    return {
        "report_id": str(row["report_id"]),
        "case_id": str(row["case_id"]),
        "status": row["status"],
        "category": row["category"],
        "department_code": row["department_code"],
        "channel": row["channel"],
        "reporter_phone": row["reporter_phone_masked"],
        "submitted_at": row["submitted_at"].isoformat(),
    }


@router.post("/reports", status_code=201)
async def submit_report(
    report: ReportIn, request: Request, idempotency_key: str | None = Header(default=None, max_length=200)
):
    """Accept a report: it and its report.submitted event are committed together before we answer."""
    runtime, taxonomy = request.app.state.runtime, request.app.state.taxonomy
    settings = runtime.settings
    if report.category is not None and report.category not in taxonomy.categories:
        raise Problem(422, "Unknown category", f"'{report.category}' is not a category of the taxonomy.",
                      kind="unknown-category")
    async with runtime.pool.acquire() as conn, conn.transaction():
        if idempotency_key:
            existing = await store.find_report_by_idempotency_key(conn, key=idempotency_key)
            if existing:
                return JSONResponse(_report_view(existing), status_code=200)
        report_id, case_id, now = uuid4(), uuid4(), utcnow()
        masked = mask_phone(report.reporter_phone) if report.reporter_phone else None
        await store.insert_report(
            conn,
            report_id=report_id,
            case_id=case_id,
            description=report.description,
            category=report.category,
            lat=report.lat,
            lng=report.lng,
            channel=report.channel.value,
            reporter_phone_hash=phone_hash(report.reporter_phone, settings.phone_hash_key) if report.reporter_phone else None,
            reporter_phone_masked=masked,
            media_ids=report.media_ids,
            idempotency_key=idempotency_key,
            submitted_at=now,
        )
        payload = ReportSubmitted(
            report_id=report_id,
            case_id=case_id,
            description=report.description,
            category=report.category,
            lat=report.lat,
            lng=report.lng,
            channel=report.channel.value,
            reporter_phone_masked=masked,
            media_ids=report.media_ids,
            submitted_at=now,
        )
        await enqueue(conn, settings, new_event(
            payload, producer=settings.service_name, jurisdiction_code=settings.jurisdiction_code,
            key=str(case_id), correlation_id=report_id,
        ))
    return {"report_id": str(report_id), "case_id": str(case_id), "status": "submitted"}


@router.get("/reports/{report_id}")
async def get_report(report_id: UUID, request: Request):
    async with request.app.state.runtime.pool.acquire() as conn:
        row = await store.find_report(conn, report_id=report_id)
    if row is None:
        raise Problem(404, "Report not found", f"No report {report_id}.", kind="not-found")
    return _report_view(row)
