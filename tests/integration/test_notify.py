"""Notify against real Kafka, PostgreSQL and the local fake WeCom server: a redelivered event
sends once; a message WeCom refuses for good is marked failed with the reason and announced."""

import httpx

from services.notify.app import create_app
from shared.topics import CASES, NOTIFICATIONS, ensure_topics
from tests.support import bearer, case_dispatched, eventually, publish, read_topic, running


def dispatched_event():
    return case_dispatched(
        "huanwei",
        category="exposed_garbage",
        category_name="暴露垃圾",
        priority="normal",
        department_name="环境卫生服务中心",
        description="东关街垃圾堆了三天",
    )


async def test_redelivered_event_is_sent_once(make_settings, fake_wecom):
    settings = make_settings("notify")
    await ensure_topics(settings)
    event = dispatched_event()
    await publish(settings, CASES.name, event.to_bytes(), event.to_bytes())
    case_id = str(event.payload.case_id)
    async with running(create_app(settings)) as client:

        async def sent():
            rows = (
                await client.get(f"/api/v1/cases/{case_id}/notifications", headers=bearer(settings, "dispatcher"))
            ).json()["notifications"]
            return rows if rows and rows[0]["status"] == "sent" else None

        [row] = await eventually(sent)
        assert row["attempts"] == 1 and row["recipient"] == "部门群（huanwei）"
        assert "target" not in row and "demo-huanwei" not in str(row)  # the robot key stays in notify
        events = await read_topic(settings, NOTIFICATIONS.name, until=lambda ms: len(ms) >= 1)
        assert events[0]["type"] == "notification.sent"
    received = httpx.get(f"{fake_wecom}/_fake/messages", params={"key": "demo-huanwei"}).json()
    assert len([m for m in received if case_id[:8] in m["body"]["text"]["content"]]) == 1


async def test_refused_message_fails_with_reason(make_settings, tmp_path):
    directory = tmp_path / "directory.yaml"
    directory.write_text('departments:\n  huanwei:\n    robot_key: ""\n    mentioned_mobiles: []\n')
    settings = make_settings("notify", directory_path=directory)
    await ensure_topics(settings)
    event = dispatched_event()
    await publish(settings, CASES.name, event.to_bytes())
    async with running(create_app(settings)) as client:

        async def failed():
            rows = (
                await client.get(
                    f"/api/v1/cases/{event.payload.case_id}/notifications", headers=bearer(settings, "dispatcher")
                )
            ).json()["notifications"]
            return rows if rows and rows[0]["status"] == "failed" else None

        [row] = await eventually(failed)
        assert "93000" in row["last_error"] and row["attempts"] == 1
        events = await read_topic(settings, NOTIFICATIONS.name, until=lambda ms: len(ms) >= 1)
        assert events[0]["type"] == "notification.failed" and "93000" in events[0]["payload"]["reason"]


async def test_a_grid_worker_hears_of_each_new_report_in_their_grid(make_settings, fake_wecom, county):
    settings = make_settings("notify")
    await ensure_topics(settings)
    grid = next(iter(county.grids.values()))
    new = case_dispatched(grid_code=grid.code, case_no="20261202-000777", address="幸福路 18 号")
    moved = case_dispatched(grid_code=grid.code, case_no="20261202-000778", action="transfer")
    await publish(settings, CASES.name, new.to_bytes(), moved.to_bytes(), new.to_bytes())
    async with running(create_app(settings)):

        async def told():
            messages = httpx.get(f"{fake_wecom}/_fake/app/messages").json()
            mine = [m["body"] for m in messages if m["body"]["touser"] == grid.worker.worker_id]
            return mine if any("000777" in m["text"]["content"] for m in mine) else None

        received = await eventually(told)
        await read_topic(settings, NOTIFICATIONS.name, until=lambda ms: len(ms) >= 3)  # 2 派单, 1 notice
    received = [
        m["body"]["text"]["content"]
        for m in httpx.get(f"{fake_wecom}/_fake/app/messages").json()
        if m["body"]["touser"] == grid.worker.worker_id
    ]
    [notice] = [text for text in received if "000777" in text]  # once, though the event came twice
    assert grid.name in notice and "即知即改" in notice and "幸福路 18 号" in notice
    assert not any("000778" in text for text in received)  # a transfer is not news to the grid
