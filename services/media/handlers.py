"""Media's event handlers: a submitted report attaches its uploaded media to its case as 'before';
case events say whose the case is, which decides who may see its evidence."""

import asyncpg

from services.media import store, workflow
from services.media.settings import MediaSettings
from shared.case_actions import CASE_TRANSITION_TYPES
from shared.events import CaseFacts, Event, ReportAttached, ReportSubmitted, StaffPhotosSubmitted, submitted_report


def make_handlers(*, settings: MediaSettings):
    """Handlers bound to this instance's settings (evidence thresholds, producer name)."""

    async def park(conn: asyncpg.Connection, report: ReportSubmitted | ReportAttached) -> None:
        common = {"case_id": report.case_id, "report_id": report.report_id, "submitted_at": report.submitted_at}
        await store.park_incoming(
            conn,
            photos=[
                *(
                    {"object_key": p.object_key, "filename": p.filename, "content_type": p.content_type} | common
                    for p in report.incoming_photos
                ),
                *(
                    {"object_key": f"url:{report.report_id}:{n}", "url": url} | common
                    for n, url in enumerate(report.photo_urls)
                ),
            ],
        )

    async def on_report_submitted(conn: asyncpg.Connection, event: Event) -> None:
        report = submitted_report(event)
        await park(conn, report)
        await workflow.attach_report_media(
            conn,
            settings=settings,
            case_id=report.case_id,
            report_id=report.report_id,
            lat=report.place.lat,
            lng=report.place.lng,
            submitted_at=report.submitted_at,
            media_ids=report.media_ids,
            jurisdiction_code=report.place.division_code,
            grid_code=report.place.grid_code,
        )

    async def on_report_attached(conn: asyncpg.Connection, event: Event) -> None:
        report = event.payload_as(ReportAttached)
        await park(conn, report)
        await workflow.attach_before_media(
            conn,
            settings=settings,
            case_id=report.case_id,
            report_id=report.report_id,
            submitted_at=report.submitted_at,
            media_ids=report.media_ids,
        )

    async def on_case_event(conn: asyncpg.Connection, event: Event) -> None:
        case = event.payload_as(CaseFacts)
        await store.save_case_facts(
            conn,
            case_id=case.case_id,
            report_id=case.report_id,
            jurisdiction_code=case.jurisdiction_code or event.jurisdiction_code,
            department_code=case.department_code,
            co_department_codes=case.co_department_codes,
            seq=case.seq,
            grid_code=case.grid_code,
        )

    async def on_staff_photos_submitted(conn: asyncpg.Connection, event: Event) -> None:
        """Photos staff sent the AI bot with 办结 (parked by notify under staff/<command id>/): taken in
        like a report's, as the case's "after" evidence."""
        request = event.payload_as(StaffPhotosSubmitted)
        common = {"case_id": request.case_id, "report_id": request.report_id, "submitted_at": request.submitted_at}
        await store.park_incoming(
            conn,
            photos=[
                {"object_key": p.object_key, "filename": p.filename, "content_type": p.content_type} | common
                for p in request.photos
            ],
        )

    return {
        "staff.photos_submitted": on_staff_photos_submitted,
        "report.submitted": on_report_submitted,
        "report.attached": on_report_attached,
        "case.dispatched": on_case_event,
        **{event_type: on_case_event for event_type in CASE_TRANSITION_TYPES},
    }
