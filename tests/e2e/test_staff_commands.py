"""Staff act on cases from WeCom, through the fake WeCom speaking the wire formats, on the real
stack: a 接单 click on the 派单 card acknowledges the case as the directory's person (once, however
often the click arrives), stops the acknowledgement clock and greys the button with who and when;
a 办结 command with a photo to the AI bot resolves the case with that photo as "after" evidence
and replies in the group; an unknown sender and another department are refused in the group, and
nothing changes."""

import base64
import io
import time
from contextlib import AsyncExitStack
from datetime import datetime

import httpx
from PIL import Image

from services.dispatch.app import create_app as dispatch_app
from services.intake.app import create_app as intake_app
from services.media.app import create_app as media_app
from services.notify.app import create_app as notify_app
from services.sla.app import create_app as sla_app
from shared.wecom_cards import card_button_key, card_task_id
from tests.support import bearer, eventually, running, serving

REPORT = {
    "description": "东关街菜市场后门垃圾堆了三天没人清运，臭气熏天",
    "category": "exposed_garbage",  # 环卫 (huanwei)
    "lat": 29.0829,
    "lng": 120.0546,
    "channel": "api",
}


def jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


class Stack:
    """The five services (notify served on a real port, for the fake to call back) and the fake."""

    def __init__(self, make_settings, fake_wecom: str):
        self.apps = {
            name: factory(make_settings(name))
            for name, factory in [
                ("intake", intake_app),
                ("dispatch", dispatch_app),
                ("sla", sla_app),
                ("notify", notify_app),
                ("media", media_app),
            ]
        }
        self.settings = self.apps["dispatch"].state.settings
        self.dispatcher = bearer(self.settings, "dispatcher")
        self.admin = bearer(self.settings, "admin")
        self.fake = httpx.AsyncClient(base_url=fake_wecom, timeout=15.0)

    async def __aenter__(self):
        self.stack = AsyncExitStack()
        await self.stack.__aenter__()
        self.client = {
            name: await self.stack.enter_async_context(running(app))
            for name, app in self.apps.items()
            if name != "notify"
        }
        self.notify_url = await self.stack.enter_async_context(serving(self.apps["notify"]))
        self.stack.push_async_callback(self.fake.aclose)
        return self

    async def __aexit__(self, *exc):
        return await self.stack.__aexit__(*exc)

    async def person(self, person_id: str, name: str, wecom_user_id: str, department_code: str) -> None:
        role = {"role": "handler", "jurisdiction_code": "330727", "department_code": department_code}
        body = {"name": name, "wecom_user_id": wecom_user_id, "roles": [role]}
        r = await self.client["dispatch"].put(f"/api/v1/directory/people/{person_id}", json=body, headers=self.admin)
        assert r.status_code == 200, r.text

    async def report(self, *, wait_for_clocks: bool = True) -> tuple[str, str]:
        """A new case, dispatched to 环卫 (with its clocks running): (case id, case number)."""
        before = await self.client["media"].post(
            "/api/v1/media", files={"file": ("before.jpg", jpeg((90, 80, 20)), "image/jpeg")}
        )
        assert before.status_code == 201, before.text
        answer = await self.client["intake"].post(
            "/api/v1/reports", json=REPORT | {"media_ids": [before.json()["media_id"]]}
        )
        assert answer.status_code == 201, answer.text
        case_id, case_no = answer.json()["case_id"], answer.json()["case_no"]
        if wait_for_clocks:
            await eventually(lambda: self.case(case_id, "dispatched"))
            await eventually(lambda: self.timers(case_id))
        return case_id, case_no

    async def case(self, case_id: str, status: str | None = None) -> dict | None:
        r = await self.client["dispatch"].get(f"/api/v1/cases/{case_id}", headers=self.dispatcher)
        return r.json() if r.status_code == 200 and (status is None or r.json()["status"] == status) else None

    async def timers(self, case_id: str) -> dict | None:
        r = await self.client["sla"].get(f"/api/v1/cases/{case_id}/timers", headers=self.dispatcher)
        rows = r.json()["timers"] if r.status_code == 200 else []
        return {t["stage"]: t for t in rows} if len(rows) >= 2 else None

    async def click(self, userid: str, case_no: str, action: str = "accept", n: int = 0) -> dict:
        spec = {
            "userid": userid,
            "event_key": card_button_key(action, case_no),
            "task_id": card_task_id(case_no, n),
            "callback_url": f"{self.notify_url}/api/v1/callbacks/wecom",
        }
        r = await self.fake.post("/_fake/card-clicks", json=spec)
        assert r.status_code == 200 and r.json()["status_code"] == 200, r.text
        return r.json()

    async def say(self, userid: str, text: str, image: bytes | None = None) -> dict:
        spec = {"userid": userid, "text": text, "callback_url": f"{self.notify_url}/api/v1/callbacks/wecom-aibot"}
        if image:
            spec["image"] = base64.b64encode(image).decode()
        r = await self.fake.post("/_fake/aibot/messages", json=spec)
        assert r.status_code == 200 and r.json()["status_code"] == 200, r.text
        return r.json()


async def test_a_card_click_acknowledges_once_stops_the_clock_and_updates_the_card(make_settings, fake_wecom):
    async with Stack(make_settings, fake_wecom) as s:
        await s.person("p-wang", "王芳", "WangFang", "huanwei")
        case_id, case_no = await s.report(wait_for_clocks=False)

        async def announced():  # the 派单 reaches the department's group (the fake's robot webhook)
            sent = (await s.fake.get("/_fake/messages")).json()
            return [m for m in sent if case_no in str(m["body"])]

        await eventually(announced, interval=0.02)
        clicked_at = time.monotonic()
        click = await s.click("WangFang", case_no)  # 接单 at once

        acknowledged = await eventually(lambda: s.case(case_id, "acknowledged"), interval=0.02)
        measured_s = time.monotonic() - clicked_at
        timeline = {t["action"]: t for t in acknowledged["timeline"]}
        assert timeline["acknowledge"]["actor"] == "handler:p-wang"  # as the directory's person

        async def acknowledge_stopped():
            stages = await s.timers(case_id)
            return stages if stages and stages["acknowledge"]["stop_reason"] == "acknowledged" else None

        stages = await eventually(acknowledge_stopped)
        assert stages["resolve"]["stopped_at"] is None

        async def card_updated():
            updates = (await s.fake.get("/_fake/app/card-updates")).json()
            return [u for u in updates if u["body"]["response_code"] == click["response_code"]]

        [update] = await eventually(card_updated)
        assert update["body"]["userids"] == ["WangFang"]
        replace = update["body"]["button"]["replace_name"]
        assert replace.startswith("已接单 · 王芳 ")  # …and the Beijing time of the click
        assert datetime.strptime(replace.rsplit(" ", 1)[1], "%H:%M")

        # The same click delivered again (WeCom retries; a second callback with a new nonce) acts once.
        again = await s.fake.post(
            "/_fake/card-clicks",
            json={
                "userid": "WangFang",
                "event_key": card_button_key("accept", case_no),
                "task_id": card_task_id(case_no, 0),
                "callback_url": f"{s.notify_url}/api/v1/callbacks/wecom",
            },
        )
        assert again.json()["status_code"] == 200
        await s.click("WangFang", case_no, n=0)
        case = await s.case(case_id)
        assert [t["action"] for t in case["timeline"]].count("acknowledge") == 1
        assert case["seq"] == acknowledged["seq"]

        # Through the fake: 派单 (the case dispatched, its clocks running) to acknowledged, clicked at once.
        sla_ack = stages["acknowledge"]
        started = datetime.fromisoformat(sla_ack["started_at"])
        stopped = datetime.fromisoformat(sla_ack["stopped_at"])
        print(
            f"\n派单→接单 via a card click at once: {(stopped - started).total_seconds():.3f} s by sla's clock "
            f"(dispatched_at→acknowledged, the 派单 seen in the fake's group first); "
            f"{measured_s:.3f} s from the click to the case read as acknowledged"
        )


async def test_group_commands_resolve_with_the_photo_and_refuse_strangers(make_settings, fake_wecom):
    async with Stack(make_settings, fake_wecom) as s:
        await s.person("p-wang", "王芳", "WangFang", "huanwei")
        await s.person("p-li", "李强", "LiQiang", "zhujian")  # another department
        case_id, case_no = await s.report()

        # An unknown sender and another department's handler are refused in the group; nothing changes.
        await s.say("Stranger", f"接单 {case_no}")
        await s.say("LiQiang", f"接单 {case_no}")

        async def refusals():
            replies = (await s.fake.get("/_fake/aibot/replies")).json()
            texts = {r["to"]["userid"]: r["body"]["markdown"]["content"] for r in replies}
            return texts if {"Stranger", "LiQiang"} <= set(texts) else None

        texts = await eventually(refusals)
        assert "通讯录" in texts["Stranger"] and "不属于您所在的部门" in texts["LiQiang"]
        case = await s.case(case_id)
        assert case["status"] == "dispatched" and [t["action"] for t in case["timeline"]].count("acknowledge") == 0

        # 接单 and 办结 with the after photo, by the department's handler in the group.
        await s.say("WangFang", f"接单 {case_no}")
        await eventually(lambda: s.case(case_id, "acknowledged"))
        await s.say("WangFang", f"进展 {case_no} 已到现场，正在清运")

        async def progress():
            case = await s.case(case_id)
            return [t for t in case["timeline"] if t["action"] == "progress"]

        [reported] = await eventually(progress)
        assert reported["detail"]["result"] == "已到现场，正在清运" and reported["actor"] == "handler:p-wang"
        # 办结 without a photo is refused with the reason; with one it resolves.
        await s.say("WangFang", f"办结 {case_no} 垃圾已清运完毕")

        async def refused_without_photo():
            replies = (await s.fake.get("/_fake/aibot/replies")).json()
            return [r for r in replies if "需要整改后的现场照片" in r["body"]["markdown"]["content"]]

        await eventually(refused_without_photo)
        # A photo media refuses (not an image at all): reported back in the group with the reason.
        await s.say("WangFang", f"办结 {case_no} 垃圾已清运完毕", image=b"%PDF-1.4 not a photo at all")

        async def refused_photo():
            replies = (await s.fake.get("/_fake/aibot/replies")).json()
            return [r for r in replies if "照片未通过校验" in r["body"]["markdown"]["content"]]

        [refusal] = await eventually(refused_photo, timeout=30)
        assert "未办结" in refusal["body"]["markdown"]["content"]
        assert (await s.case(case_id))["status"] == "acknowledged"
        photo = jpeg((20, 140, 60))
        await s.say("WangFang", f"办结 {case_no} 垃圾已清运完毕", image=photo)
        resolved = await eventually(lambda: s.case(case_id, "resolved"), timeout=30)
        after = [e for e in resolved["evidence"] if e["role"] == "after"]
        assert len(after) == 1
        assert resolved["timeline"][-1]["detail"]["after_media_ids"] == [str(after[0]["media_id"])]
        assert resolved["timeline"][-1]["detail"]["result"] == "垃圾已清运完毕"

        async def done_reply():
            replies = (await s.fake.get("/_fake/aibot/replies")).json()
            return [r for r in replies if f"案件 {case_no} 已办结" in r["body"]["markdown"]["content"]]

        await eventually(done_reply)

        # 查: state, department and what is left; for an unknown number, a polite refusal.
        await s.say("WangFang", f"查 {case_no}")
        await s.say("WangFang", "查 20000101-999999")

        async def answers():
            contents = [r["body"]["markdown"]["content"] for r in (await s.fake.get("/_fake/aibot/replies")).json()]
            found = [c for c in contents if "已办结（待回访）" in c], [c for c in contents if "没有找到案件" in c]
            return found if all(found) else None

        [query], [unknown] = await eventually(answers)
        assert "承办部门" in query and "20000101-999999" in unknown
