"""Broadcasts (政策宣传进社区) against real PostgreSQL/Kafka and the fake robot server: one
delivery per group of the jurisdiction, progress and failures through the API and metrics."""

from datetime import timedelta
from uuid import uuid4

import httpx

from services.notify import store
from services.notify.app import create_app, load_groups
from services.notify.broadcasts import broadcast_message, select_groups
from services.notify.settings import NotifySettings
from shared.db import create_pool
from shared.events import utcnow
from shared.topics import ensure_topics
from tests.support import bearer, eventually, running

TOWN = "330727203"  # 云峰乡: 47 grids, 149 groups


async def progress(client, broadcast_id):
    return (await client.get(f"/api/v1/broadcasts/{broadcast_id}")).json()


def as_supervisor(client, settings):
    """Broadcasts are sent and followed by supervisors (and admins): here the county's."""
    client.headers.update(bearer(settings, "supervisor"))


async def test_a_broadcast_reaches_every_group_of_a_town_once(make_settings, fake_wecom):
    settings = make_settings("notify")
    await ensure_topics(settings)
    groups = select_groups(load_groups(settings.notify_groups_path), TOWN)
    marker = uuid4().hex[:8]
    dead_group = groups[5]
    httpx.post(f"{fake_wecom}/_fake/failures", params={"key": dead_group.robot_key, "errcode": 93000, "times": 1})
    async with running(create_app(settings)) as client:
        as_supervisor(client, settings)
        response = await client.post(
            "/api/v1/broadcasts",
            json={"content": f"**冬季防火提示** {marker}\n请各户检查电线、燃气，离家断电。", "target": TOWN},
        )
        assert response.status_code == 202
        accepted = response.json()
        assert accepted["groups"] == len(groups) == 149

        async def done():
            state = await progress(client, accepted["broadcast_id"])
            return state if state["done"] else None

        state = await eventually(done, timeout=60)
        assert (state["total"], state["sent"], state["failed"], state["pending"]) == (149, 148, 1, 0)
        [failure] = state["failures"]
        assert failure["group_id"] == dead_group.group_id and "93000" in failure["last_error"]
        assert failure["recipient"] == dead_group.name and dead_group.robot_key not in str(state)
        metrics = (await client.get("/metrics")).text
        assert 'gridlink_notify_broadcast_groups_total{outcome="sent"}' in metrics
        assert 'gridlink_notify_deliveries_total{channel="wecom_robot",outcome="sent",template="broadcast"}' in metrics
        assert 'gridlink_notify_queue_messages{kind="broadcast",state="due"}' in metrics
    received = [
        m
        for m in httpx.get(f"{fake_wecom}/_fake/messages").json()
        if m["body"].get("msgtype") == "markdown" and marker in m["body"]["markdown"]["content"]
    ]
    assert sorted(m["key"] for m in received) == sorted(g.robot_key for g in groups if g != dead_group)


async def test_a_retried_request_with_the_same_idempotency_key_is_one_broadcast(make_settings):
    settings = make_settings("notify")
    await ensure_topics(settings)
    async with running(create_app(settings)) as client:
        as_supervisor(client, settings)
        request = {"content": "防汛通知", "msgtype": "text", "target": "330727203200"}
        headers = {"Idempotency-Key": f"policy-{uuid4()}"}
        first = await client.post("/api/v1/broadcasts", json=request, headers=headers)
        again = await client.post("/api/v1/broadcasts", json=request, headers=headers)
        assert first.status_code == 202 and again.status_code == 200
        assert first.json()["broadcast_id"] == again.json()["broadcast_id"]
        state = await progress(client, first.json()["broadcast_id"])
        assert state["total"] == first.json()["groups"] == 16


async def test_bad_broadcasts_are_refused_with_problem_details(make_settings):
    settings = make_settings("notify")
    await ensure_topics(settings)
    async with running(create_app(settings)) as client:
        as_supervisor(client, settings)
        for body, status, kind in [
            ({"content": "x", "target": "杭州"}, 422, "validation-error"),
            ({"content": "", "target": "all"}, 422, "validation-error"),
            ({"content": "x", "target": "330727999"}, 422, "no-groups"),
            ({"content": "长" * 1400, "target": "all", "msgtype": "markdown"}, 422, "message-too-long"),
        ]:
            response = await client.post("/api/v1/broadcasts", json=body)
            assert response.status_code == status, body
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"].endswith(kind)
        missing = await client.get(f"/api/v1/broadcasts/{uuid4()}")
        assert missing.status_code == 404 and missing.json()["type"].endswith("not-found")


async def test_case_notifications_go_before_a_broadcast_queued_earlier(database_url):
    groups = load_groups(NotifySettings().notify_groups_path)[:50]
    pool = await create_pool(NotifySettings(service_name="notify", database_url=database_url))
    try:
        db = await pool.acquire()
        async with db.transaction():
            await store.insert_broadcast(
                db,
                broadcast_id=uuid4(),
                idempotency_key=None,
                target="all",
                msgtype="text",
                content="通知",
                body=broadcast_message(msgtype="text", content="通知"),
                groups=groups,
            )
        case_notification = uuid4()
        await store.insert_notification(
            db,
            notification_id=case_notification,
            source_event_id=uuid4(),
            case_id=uuid4(),
            channel="wecom_robot",
            target="demo-zhujian",
            template="case.dispatched",
            body={"msgtype": "text", "text": {"content": "派单"}},
        )
        async with db.transaction():
            first, *rest = await store.claim_due(db, now=utcnow() + timedelta(seconds=1), limit=10)
        assert first["notification_id"] == case_notification
        assert len(rest) == 9 and all(r["template"] == "broadcast" for r in rest)
        await pool.release(db)
    finally:
        await pool.close()


async def test_only_supervisors_and_admins_broadcast_and_only_within_their_jurisdiction(make_settings):
    settings = make_settings("notify")
    await ensure_topics(settings)
    request = {"content": "防汛通知", "msgtype": "text", "target": "330727203200"}
    async with running(create_app(settings)) as client:
        for role in ("dispatcher", "handler", "grid_worker"):
            refused = await client.post(
                "/api/v1/broadcasts", json=request, headers=bearer(settings, role, department_code="zhujian")
            )
            assert refused.status_code == 403, role
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"].endswith("forbidden") and "督查员或管理员" in refused.json()["detail"]
        elsewhere = await client.post(
            "/api/v1/broadcasts", json=request | {"target": "all"}, headers=bearer(settings, "supervisor", "330727203")
        )
        assert elsewhere.status_code == 403 and "330727203 辖区" in elsewhere.json()["detail"]

        town = bearer(settings, "supervisor", "330727203")
        accepted = await client.post("/api/v1/broadcasts", json=request, headers=town)
        assert accepted.status_code == 202 and accepted.json()["groups"] == 16
        status_url = accepted.json()["status_url"]
        assert (await client.get(status_url, headers=town)).json()["total"] == 16
        assert (await client.get(status_url, headers=bearer(settings, "admin"))).status_code == 200
        assert (await client.get(status_url, headers=bearer(settings, "dispatcher"))).status_code == 403
        assert (await client.get(status_url, headers=bearer(settings, "supervisor", "330727101"))).status_code == 403


async def test_a_case_deliveries_are_for_the_command_centre(make_settings):
    settings = make_settings("notify")
    await ensure_topics(settings)
    case_url = f"/api/v1/cases/{uuid4()}/notifications"
    async with running(create_app(settings)) as client:
        for role in ("dispatcher", "supervisor", "admin"):
            allowed = await client.get(case_url, headers=bearer(settings, role))
            assert allowed.status_code == 200 and allowed.json()["notifications"] == []
        for role in ("handler", "grid_worker"):
            refused = await client.get(case_url, headers=bearer(settings, role, department_code="zhujian"))
            assert refused.status_code == 403 and refused.json()["type"].endswith("forbidden")
            assert "案件详情" in refused.json()["detail"]
