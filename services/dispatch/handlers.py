"""Dispatch's event handlers: decode → route → store → emit."""

import asyncpg

from services.dispatch import store
from services.dispatch.domain import route_report
from shared.db import enqueue
from shared.events import CaseDispatched, Event, ReportSubmitted, new_event, utcnow
from shared.settings import Settings
from shared.taxonomy import Taxonomy


def make_handlers(*, settings: Settings, taxonomy: Taxonomy):
    """Handlers bound to this instance's settings and responsibility list."""

    async def on_report_submitted(conn: asyncpg.Connection, event: Event) -> None:
        report: ReportSubmitted = event.payload
        decision = route_report(taxonomy=taxonomy, category=report.category)
        now = utcnow()
        created = await store.insert_case(
            conn,
            case_id=report.case_id,
            report_id=report.report_id,
            jurisdiction_code=event.jurisdiction_code,
            status="dispatched",
            category=decision.category,
            priority=decision.priority,
            department_code=decision.department_code,
            description=report.description,
            lat=report.lat,
            lng=report.lng,
            responsibility_list_version=decision.list_version,
            rule=decision.rule,
            created_at=report.submitted_at,
            updated_at=now,
        )
        if not created:
            return  # the same case reserved twice (a replayed report with a new event id)
        await store.append_timeline(
            conn, case_id=report.case_id, at=report.submitted_at, action="submit", status="submitted",
            actor=f"reporter:{report.channel}", detail={"report_id": str(report.report_id)},
        )
        await store.append_timeline(
            conn, case_id=report.case_id, at=now, action="dispatch", status="dispatched",
            actor=f"system:{settings.service_name}",
            detail={
                "department_code": decision.department_code,
                "department_name": decision.department_name,
                "responsibility_list_version": decision.list_version,
                "rule": decision.rule,
            },
        )
        dispatched = CaseDispatched(
            case_id=report.case_id,
            report_id=report.report_id,
            category=decision.category,
            category_name=decision.category_name,
            priority=decision.priority,
            department_code=decision.department_code,
            department_name=decision.department_name,
            description=report.description,
            lat=report.lat,
            lng=report.lng,
            responsibility_list_version=decision.list_version,
            rule=decision.rule,
            dispatched_at=now,
        )
        await enqueue(conn, settings, new_event(
            dispatched, producer=settings.service_name, jurisdiction_code=event.jurisdiction_code,
            key=str(report.case_id), correlation_id=event.correlation_id,
        ))

    return {"report.submitted": on_report_submitted}
