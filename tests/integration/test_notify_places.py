"""Notify's events say where their subject is (the Event envelope's jurisdiction_code): a case's
notifications name the case's division, a broadcast's the grid of the group it goes to."""

from uuid import uuid4

from services.notify import store
from services.notify.app import create_app
from services.notify.broadcasts import broadcast_message
from services.notify.domain import Group
from services.notify.settings import NotifySettings
from shared.db import create_pool
from shared.events import CaseDispatched, new_event, utcnow
from shared.topics import CASES, NOTIFICATIONS, ensure_topics
from tests.support import publish, read_topic, running

VILLAGE = "330727001002"


async def test_a_cases_notification_events_name_the_cases_division(make_settings, fake_wecom):
    settings = make_settings("notify")
    await ensure_topics(settings)
    dispatched = CaseDispatched(
        case_id=uuid4(),
        report_id=uuid4(),
        category="exposed_garbage",
        category_name="暴露垃圾",
        priority="normal",
        department_code="huanwei",
        department_name="环境卫生服务中心",
        description="东关街垃圾堆了三天",
        responsibility_list_version="v",
        rule="r",
        dispatched_at=utcnow(),
        jurisdiction_code=VILLAGE,
    )
    await publish(
        settings,
        CASES.name,
        new_event(dispatched, producer="dispatch", jurisdiction_code=VILLAGE, key=str(dispatched.case_id)).to_bytes(),
    )
    async with running(create_app(settings)):
        [sent] = await read_topic(settings, NOTIFICATIONS.name, until=lambda ms: len(ms) >= 1)
    assert (sent["type"], sent["payload"]["case_id"]) == ("notification.sent", str(dispatched.case_id))
    assert sent["jurisdiction_code"] == VILLAGE


async def test_a_broadcast_message_is_about_its_groups_grid(database_url):
    groups = [
        Group("wr330727001001001", "莲源社区第1网格群", "330727001001001", "grp-1"),
        Group("wr330727101200003", "青山镇某村第3网格群", "330727101200003", "grp-2"),
    ]
    pool = await create_pool(NotifySettings(service_name="notify", database_url=database_url))
    try:
        async with pool.acquire() as db, db.transaction():
            broadcast_id = uuid4()
            await store.insert_broadcast(
                db,
                broadcast_id=broadcast_id,
                idempotency_key=None,
                target="all",
                msgtype="text",
                content="通知",
                groups=groups,
                body=broadcast_message(msgtype="text", content="通知"),
            )
            rows = await db.fetch(
                "SELECT group_id, jurisdiction_code FROM notifications WHERE broadcast_id = $1", broadcast_id
            )
    finally:
        await pool.close()
    assert sorted((r["group_id"], r["jurisdiction_code"]) for r in rows) == sorted(
        (g.group_id, g.jurisdiction_code) for g in groups
    )
