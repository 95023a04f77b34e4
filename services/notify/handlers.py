"""Notify's event handlers (queue notifications) and the delivery loop (send them)."""

import asyncio
import logging
from datetime import timedelta
from uuid import uuid4

import asyncpg
import httpx

from services.notify import store
from services.notify.domain import DepartmentContact, backoff_seconds, dispatched_message
from services.notify.wecom import WeComError, WeComRobotClient
from shared.db import enqueue
from shared.events import CaseDispatched, Event, NotificationFailed, NotificationSent, new_event, utcnow
from shared.settings import Settings

log = logging.getLogger(__name__)


def make_handlers(*, settings: Settings, directory: dict[str, DepartmentContact]):
    async def on_case_dispatched(conn: asyncpg.Connection, event: Event) -> None:
        case: CaseDispatched = event.payload
        contact = directory.get(case.department_code)
        if contact is None:
            raise LookupError(f"department {case.department_code} has no WeCom group in the directory")
        ack_minutes = settings.sla_ack_minutes_urgent if case.priority == "urgent" else settings.sla_ack_minutes_normal
        await store.insert_notification(
            conn,
            notification_id=uuid4(),
            source_event_id=event.event_id,
            case_id=case.case_id,
            channel="wecom_robot",
            target=contact.robot_key,
            template="case.dispatched",
            body=dispatched_message(case, contact=contact, ack_minutes=ack_minutes),
        )

    return {"case.dispatched": on_case_dispatched}


async def deliver_one(*, settings: Settings, pool: asyncpg.Pool, robot: WeComRobotClient) -> bool:
    """Send the next due notification; False when none is due."""
    async with pool.acquire() as conn, conn.transaction():
        row = await store.claim_due_notification(conn, now=utcnow())
        if row is None:
            return False
        common = dict(notification_id=row["notification_id"], case_id=row["case_id"], channel=row["channel"],
                      target=row["target"], template=row["template"])
        try:
            await robot.send(key=row["target"], message=row["body"])
        except (WeComError, httpx.HTTPError) as exc:
            attempts = row["attempts"] + 1
            retryable = not isinstance(exc, WeComError) or exc.retryable
            give_up = not retryable or attempts >= settings.notify_max_attempts
            retry_at = None if give_up else utcnow() + timedelta(seconds=backoff_seconds(attempts, settings.notify_retry_base_s))
            log.warning("notification %s attempt %d failed: %s", row["notification_id"], attempts, exc)
            await store.mark_attempt_failed(conn, notification_id=row["notification_id"], error=str(exc), retry_at=retry_at)
            if give_up:
                await enqueue(conn, settings, _event(settings, NotificationFailed(**common, reason=str(exc)), row))
            return True
        await store.mark_sent(conn, notification_id=row["notification_id"], at=utcnow())
        await enqueue(conn, settings, _event(settings, NotificationSent(**common), row))
        return True


def _event(settings: Settings, payload, row) -> Event:
    return new_event(payload, producer=settings.service_name, jurisdiction_code=settings.jurisdiction_code,
                     key=str(row["case_id"] or row["notification_id"]))


def make_delivery_loop(http: httpx.AsyncClient):
    async def delivery_loop(runtime) -> None:
        robot = WeComRobotClient(runtime.settings.wecom_base_url, http)
        while not runtime.stopping.is_set():
            try:
                if await deliver_one(settings=runtime.settings, pool=runtime.pool, robot=robot):
                    continue
            except Exception:
                log.exception("notification delivery failed; retrying")
            try:
                await asyncio.wait_for(runtime.stopping.wait(), runtime.settings.outbox_poll_interval_s)
            except TimeoutError:
                pass

    return delivery_loop
