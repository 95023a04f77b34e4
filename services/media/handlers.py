"""Media's event handlers: a submitted report attaches its uploaded media to its case as 'before';
case events say whose the case is, which decides who may see its evidence."""

import logging
from collections.abc import Callable

import asyncpg

from services.media import store, workflow
from services.media.settings import MediaSettings
from shared.case_actions import CASE_TRANSITION_TYPES
from shared.db import is_transient
from shared.events import CaseFacts, Event, ReportAttached, ReportSubmitted, StaffPhotosSubmitted, submitted_report
from shared.objects import ObjectStore

log = logging.getLogger(__name__)

# 办结 (by the department) and 即知即改 (by the grid worker): the reporter is shown the before/after.
RESOLVING = ("case.resolved", "case.settled")


def make_handlers(
    *,
    settings: MediaSettings,
    objects: ObjectStore | None = None,
    pool: Callable[[], asyncpg.Pool] | None = None,
):
    """Handlers bound to this instance's settings (evidence thresholds, producer name), and, for the
    整改前后对比 made at 办结, the object store and the pool (`pool()`: the service's, once running)."""

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

    async def on_case_resolved(conn: asyncpg.Connection, event: Event) -> None:
        await on_case_event(conn, event)
        if objects is None or pool is None:
            return
        case = event.payload_as(CaseFacts)
        try:
            await workflow.announce_comparison(
                conn, settings=settings, pool=pool(), objects=objects, case_id=case.case_id
            )
        except Exception as exc:
            if is_transient(exc):
                raise  # the database or broker is away: the consumer waits and tries again
            # A picture that cannot be made (a photo that no longer decodes, the object store
            # refusing) must not cost media the case's facts, which the same event records: the
            # reporter is then not shown the comparison, and the console can still make it.
            log.exception("no 整改前后对比 for case %s", case.case_id)

    return {
        "staff.photos_submitted": on_staff_photos_submitted,
        "report.submitted": on_report_submitted,
        "report.attached": on_report_attached,
        "case.dispatched": on_case_event,
        **{event_type: on_case_event for event_type in CASE_TRANSITION_TYPES},
        **{event_type: on_case_resolved for event_type in RESOLVING},
    }
