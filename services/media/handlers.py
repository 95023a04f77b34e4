"""Media's event handlers: a submitted report links its uploaded media to its case."""

import asyncpg

from services.media import store
from shared.events import Event, ReportSubmitted


async def on_report_submitted(conn: asyncpg.Connection, event: Event) -> None:
    report: ReportSubmitted = event.payload
    if report.media_ids:
        await store.link_to_case(conn, media_ids=report.media_ids, report_id=report.report_id, case_id=report.case_id)


HANDLERS = {"report.submitted": on_report_submitted}
