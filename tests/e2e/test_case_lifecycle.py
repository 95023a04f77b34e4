"""A case's whole life across the five services on real Kafka, PostgreSQL and MinIO: dispatched
and announced, acknowledged (its clock stops), resolved with an 整改后 photo (the command centre
hears of it with the result), verified and closed; the services agree through events alone."""

import io
from contextlib import AsyncExitStack

import httpx
from PIL import Image

from services.dispatch.app import create_app as dispatch_app
from services.intake.app import create_app as intake_app
from services.media.app import create_app as media_app
from services.notify.app import create_app as notify_app
from services.sla.app import create_app as sla_app
from tests.support import bearer, eventually, running


def jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


async def test_a_case_from_report_to_close(make_settings, fake_wecom):
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
    settings = apps["dispatch"].state.settings
    dispatcher = bearer(settings, "dispatcher")
    handler = bearer(settings, "handler", department_code="huanwei")
    async with AsyncExitStack() as stack:
        client = {name: await stack.enter_async_context(running(app)) for name, app in apps.items()}
        before = await client["media"].post(
            "/api/v1/media", files={"file": ("before.jpg", jpeg((90, 80, 20)), "image/jpeg")}
        )
        assert before.status_code == 201, before.text
        answer = await client["intake"].post(
            "/api/v1/reports",
            json={
                "description": "东关街菜市场后门垃圾堆了三天没人清运，臭气熏天",
                "category": "exposed_garbage",
                "lat": 29.0829,
                "lng": 120.0546,
                "channel": "api",
                "media_ids": [before.json()["media_id"]],
            },
        )
        assert answer.status_code == 201, answer.text
        case_id, case_no = answer.json()["case_id"], answer.json()["case_no"]

        async def case(status):
            r = await client["dispatch"].get(f"/api/v1/cases/{case_id}", headers=dispatcher)
            return r.json() if r.status_code == 200 and r.json()["status"] == status else None

        dispatched = await eventually(lambda: case("dispatched"))
        assert dispatched["department_code"] == "huanwei" and dispatched["grid_code"]

        async def timers():
            rows = (await client["sla"].get(f"/api/v1/cases/{case_id}/timers", headers=handler)).json()["timers"]
            return {t["stage"]: t for t in rows} if len(rows) == 2 else None

        await eventually(timers)
        r = await client["dispatch"].post(f"/api/v1/cases/{case_id}/acknowledge", json={}, headers=handler)
        assert r.status_code == 200, r.text

        async def acknowledge_stopped():
            stages = await timers()
            return stages if stages and stages["acknowledge"]["stop_reason"] == "acknowledged" else None

        stages = await eventually(acknowledge_stopped)
        assert stages["resolve"]["stopped_at"] is None

        after = await client["media"].post(
            "/api/v1/media", files={"file": ("after.jpg", jpeg((30, 160, 60)), "image/jpeg")}
        )
        after_id = after.json()["media_id"]
        attached = await client["media"].post(
            f"/api/v1/cases/{case_id}/media", json={"media_id": after_id, "role": "after"}, headers=handler
        )
        assert attached.status_code == 201, attached.text

        async def dispatch_knows_the_photo():
            # 办结 is verified: dispatch accepts only photos media told it (media.attached) are this case's.
            r = await client["dispatch"].get(f"/api/v1/cases/{case_id}", headers=dispatcher)
            return [e for e in r.json()["evidence"] if e["media_id"] == after_id and e["role"] == "after"]

        await eventually(dispatch_knows_the_photo)
        r = await client["dispatch"].post(
            f"/api/v1/cases/{case_id}/resolve",
            headers=handler,
            json={"result": "已清运并消杀，增设垃圾桶两个", "after_media_ids": [after_id]},
        )
        assert r.status_code == 200, r.text

        async def command_centre_heard():
            messages = httpx.get(f"{fake_wecom}/_fake/messages", params={"key": "demo-grid_center"}).json()
            # Messages quote the human case number, the one 我要查询 takes (another test's stack, with
            # its own database, may have given the same number to its case: the result tells them apart).
            return [m for m in messages if f"案件 {case_no} " in str(m["body"]) and "已清运并消杀" in str(m["body"])]

        [message] = await eventually(command_centre_heard)
        assert "【办结】" in str(message["body"])
        assert all(
            t["stopped_at"]
            for t in (await client["sla"].get(f"/api/v1/cases/{case_id}/timers", headers=handler)).json()["timers"]
        )

        evidence = (await client["media"].get(f"/api/v1/cases/{case_id}/evidence", headers=dispatcher)).json()
        assert evidence["has_after_photo"]
        for action, body in (("verify", {"rating": 5, "comment": "清理得很干净"}), ("close", {})):
            r = await client["dispatch"].post(f"/api/v1/cases/{case_id}/{action}", json=body, headers=dispatcher)
            assert r.status_code == 200, r.text
        closed = await case("closed")
        assert [t["action"] for t in closed["timeline"]] == [
            "submit",
            "dispatch",
            "acknowledge",
            "resolve",
            "verify",
            "close",
        ]
