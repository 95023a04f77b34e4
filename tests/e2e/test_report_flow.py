"""The first vertical slice through real Kafka, PostgreSQL and MinIO: a report with a photo becomes
a dispatched case, the department's WeCom group is told, the SLA clock starts, the media is linked."""

import io
from contextlib import AsyncExitStack

import httpx
from PIL import Image

from services.dispatch.app import create_app as dispatch_app
from services.intake.app import create_app as intake_app
from services.media.app import create_app as media_app
from services.notify.app import create_app as notify_app
from services.sla.app import create_app as sla_app
from shared.topics import CASES, MEDIA, REPORTS
from tests.support import bearer, eventually, read_topic, running


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_report_is_dispatched_notified_timed_and_linked(make_settings, fake_wecom):
    apps = {
        name: factory(make_settings(name))
        for name, factory in [
            ("intake", intake_app),
            ("dispatch", dispatch_app),
            ("sla", sla_app),
            ("notify", notify_app),
            ("media", media_app),
        ]
    }
    async with AsyncExitStack() as stack:
        client = {name: await stack.enter_async_context(running(app)) for name, app in apps.items()}
        for c in client.values():
            assert (await c.get("/readyz")).status_code == 200

        upload = await client["media"].post("/api/v1/media", files={"file": ("before.png", png_bytes(), "image/png")})
        assert upload.status_code == 201, upload.text
        media_id = upload.json()["media_id"]

        answer = await client["intake"].post(
            "/api/v1/reports",
            json={
                "description": "幸福路与建设街交叉口往南50米，井盖翻起来了，赶紧来人看看！",
                "category": "manhole",
                "lat": 29.0812,
                "lng": 120.0431,
                "reporter_phone": "13812341234",
                "channel": "api",
                "media_ids": [media_id],
            },
        )
        assert answer.status_code == 201, answer.text
        report_id, case_id, case_no = (answer.json()[k] for k in ("report_id", "case_id", "case_no"))

        dispatcher = bearer(apps["dispatch"].state.settings, "dispatcher")

        async def dispatched():
            r = await client["dispatch"].get(f"/api/v1/cases/{case_id}", headers=dispatcher)
            return r.json() if r.status_code == 200 else None

        case = await eventually(dispatched)
        assert case["status"] == "dispatched"
        assert case["department_code"] == "zhujian" and case["priority"] == "urgent"
        assert case["rule"] == "county:manhole->zhujian" and case["owner_code"] == "330727"
        assert [t["action"] for t in case["timeline"]] == ["submit", "dispatch"]

        async def wecom_received():
            r = httpx.get(f"{fake_wecom}/_fake/messages", params={"key": "demo-zhujian"})
            # The 派单 quotes the human case number, the one 我要查询 takes.
            return [m for m in r.json() if case_no in m["body"]["text"]["content"]]

        [message] = await eventually(wecom_received)
        assert "【派单】紧急" in message["body"]["text"]["content"]
        assert message["body"]["text"]["mentioned_mobile_list"]

        async def notification_sent():
            r = (await client["notify"].get(f"/api/v1/cases/{case_id}/notifications", headers=dispatcher)).json()
            return r["notifications"] and r["notifications"][0]["status"] == "sent"

        await eventually(notification_sent)

        async def timer_started():
            return (await client["sla"].get(f"/api/v1/cases/{case_id}/timers", headers=dispatcher)).json()["timers"]

        timers = await eventually(timer_started)
        assert {(t["stage"], t["fired_at"]) for t in timers} == {("acknowledge", None), ("resolve", None)}

        async def media_linked():
            return (await client["media"].get(f"/api/v1/media/{media_id}")).json()["case_id"] == case_id

        await eventually(media_linked)

        async def report_follows_case():
            return (await client["intake"].get(f"/api/v1/reports/{report_id}", headers=dispatcher)).json()[
                "status"
            ] == ("dispatched")

        await eventually(report_follows_case)

        settings = apps["intake"].state.settings
        reports = await read_topic(settings, REPORTS.name, until=lambda ms: any(m["key"] == case_id for m in ms))
        [submitted] = [m for m in reports if m["key"] == case_id]
        assert (
            submitted["type"] == "report.submitted" and submitted["payload"]["reporter_phone_masked"] == "138****1234"
        )
        assert "13812341234" not in str(submitted)
        cases = await read_topic(settings, CASES.name, until=lambda ms: any(m["key"] == case_id for m in ms))
        [dispatched_event] = [m for m in cases if m["key"] == case_id]
        assert dispatched_event["type"] == "case.dispatched"
        assert dispatched_event["correlation_id"] == report_id
        media_events = await read_topic(settings, MEDIA.name, until=lambda ms: len(ms) >= 1)
        assert media_events[0]["payload"]["media_id"] == media_id
