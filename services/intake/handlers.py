"""Intake follows its reports' cases so a reporter's query (我要查询) sees the current status."""

import asyncpg

from services.intake import store
from shared.events import CaseDispatched, Event


async def on_case_dispatched(conn: asyncpg.Connection, event: Event) -> None:
    case: CaseDispatched = event.payload
    await store.update_case_status(
        conn, case_id=case.case_id, status="dispatched", department_code=case.department_code, at=case.dispatched_at
    )


HANDLERS = {"case.dispatched": on_case_dispatched}
