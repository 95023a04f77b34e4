"""The WeChat-group loop for a resident, across intake, dispatch, notify and media on the real stack
and the fake WeCom: a resident @-mentions the bot in their grid's group; the group's robot answers
them there with the case number (受理), then 接单, then 办结 with the 整改前后对比 image and the 回访
question, each quoting that number; the resident answers "3" in the group and the case is handled
again (重办)."""

import base64
import io
import re
from contextlib import AsyncExitStack
from uuid import uuid4

import httpx
import yaml
from PIL import Image

from services.dispatch.app import create_app as dispatch_app
from services.intake.app import create_app as intake_app
from services.media.app import create_app as media_app
from services.notify.app import create_app as notify_app
from shared.settings import PROJECT_ROOT
from tests.support import bearer, eventually, load_fake_wecom, running

fake = load_fake_wecom()
GROUP, ROBOT = "wr330727001001001", "grp-330727001001001-00"  # 莲源社区第1网格群 (shared/data/groups.csv)


def jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 90), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def said_in_group(resident: str, text: str) -> dict:
    """The 智能机器人 callback of a group message @-mentioning the bot."""
    return {
        "msgid": uuid4().hex,
        "aibotid": "aibot-gridlink",
        "chatid": GROUP,
        "chattype": "group",
        "from": {"userid": resident},
        "response_url": "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=x",
        "msgtype": "text",
        "text": {"content": f"@网格通 {text}"},
    }


def own_robots(tmp_path):
    """The shipped directory with robot keys of this test's own: the fake WeCom is shared by the
    session, and other tests' first cases have the same numbers (a fresh database each)."""
    directory = yaml.safe_load((PROJECT_ROOT / "shared" / "data" / "directory.yaml").read_text(encoding="utf-8"))
    tag = uuid4().hex[:8]
    for contact in [*directory["departments"].values(), directory.get("supervisor") or {}]:
        if "robot_key" in contact:
            contact["robot_key"] += f"-{tag}"
    path = tmp_path / "directory.yaml"
    path.write_text(yaml.safe_dump(directory, allow_unicode=True), encoding="utf-8")
    return path


async def test_a_resident_hears_back_in_their_group_and_a_3_reopens_the_case(make_settings, fake_wecom, tmp_path):
    settings = {
        "intake": make_settings("intake", intake_message_window_s=0.5, intake_message_tick_s=0.1),
        "dispatch": make_settings("dispatch"),
        "notify": make_settings("notify", directory_path=own_robots(tmp_path)),
        "media": make_settings("media"),
    }
    factories = {"intake": intake_app, "dispatch": dispatch_app, "notify": notify_app, "media": media_app}
    resident = f"wo-{uuid4().hex[:10]}"
    dispatcher = bearer(settings["dispatch"], "dispatcher")

    def group_messages() -> list[dict]:
        """What the group's robot said to this resident, in order."""
        said = httpx.get(f"{fake_wecom}/_fake/messages", params={"key": ROBOT}).json()
        return [m["body"] for m in said if resident in str(m["body"]) or m["body"]["msgtype"] == "image"]

    async with AsyncExitStack() as stack:
        client = {
            name: await stack.enter_async_context(running(factory(settings[name])))
            for name, factory in factories.items()
        }

        async def say(text: str) -> None:
            params, body = fake.aibot_callback_request(said_in_group(resident, text))
            answer = await client["notify"].post("/api/v1/callbacks/wecom-aibot", params=params, content=body.encode())
            assert answer.status_code == 200, answer.text

        await say("莲源社区3号楼门口的井盖翻起来了，晚上差点有人踩空掉下去")

        async def accepted():
            texts = [m["text"] for m in group_messages() if m["msgtype"] == "text" and "已受理" in m["text"]["content"]]
            return texts[0] if texts else None

        first = await eventually(accepted, timeout=30)
        assert first["mentioned_list"] == [resident]
        case_no = re.search(r"案件编号 (\d{8}-\d{6})", first["content"])[1]

        async def found():
            r = await client["dispatch"].get("/api/v1/cases", params={"q": case_no}, headers=dispatcher)
            cases = r.json()["cases"] if r.status_code == 200 else []
            return cases[0] if cases and cases[0]["status"] == "dispatched" else None

        case = await eventually(found)
        case_id, department = case["case_id"], case["department_code"]
        handler = bearer(settings["dispatch"], "handler", department_code=department)
        r = await client["dispatch"].post(f"/api/v1/cases/{case_id}/acknowledge", json={}, headers=handler)
        assert r.status_code == 200, r.text

        async def taken():
            return [m for m in group_messages() if m["msgtype"] == "text" and "接单" in m["text"]["content"]] or None

        [acknowledged] = await eventually(taken)
        assert case_no in acknowledged["text"]["content"]

        media_ids = {}
        for role, colour in (("before", (120, 90, 40)), ("after", (40, 160, 70))):
            up = await client["media"].post(
                "/api/v1/media", files={"file": (f"{role}.jpg", jpeg(colour), "image/jpeg")}
            )
            assert up.status_code == 201, up.text
            media_ids[role] = up.json()["media_id"]
            attached = await client["media"].post(
                f"/api/v1/cases/{case_id}/media", json={"media_id": media_ids[role], "role": role}, headers=handler
            )
            assert attached.status_code == 201, attached.text

        async def dispatch_knows_the_photo():
            r = await client["dispatch"].get(f"/api/v1/cases/{case_id}", headers=dispatcher)
            return [e for e in r.json()["evidence"] if e["media_id"] == media_ids["after"]]

        await eventually(dispatch_knows_the_photo)
        r = await client["dispatch"].post(
            f"/api/v1/cases/{case_id}/resolve",
            headers=handler,
            json={"result": "已更换井盖并加固", "after_media_ids": [media_ids["after"]]},
        )
        assert r.status_code == 200, r.text

        async def resolved_told():
            said = group_messages()
            texts = [m["text"]["content"] for m in said if m["msgtype"] == "text"]
            images = [m["image"] for m in said if m["msgtype"] == "image"]
            comparison = [t for t in texts if "整改前后对比" in t]
            question = [t for t in texts if "回复 1 满意" in t]
            return (comparison, question, images) if comparison and question and images else None

        comparison, question, images = await eventually(resolved_told, timeout=30)
        assert case_no in comparison[0] and case_no in question[0]
        # The robot sent the picture itself: the JPEG media made, side by side (wider than one photo).
        picture = Image.open(io.BytesIO(base64.b64decode(images[-1]["base64"])))
        assert picture.format == "JPEG" and picture.width > 120
        # Every message to the resident quotes the one case number; none an 8-character id.
        for m in group_messages():
            if m["msgtype"] == "text":
                assert case_no in m["text"]["content"] and case_id[:8] not in m["text"]["content"]

        await say("3")

        async def reopened():
            r = await client["dispatch"].get(f"/api/v1/cases/{case_id}", headers=dispatcher)
            body = r.json()
            return body if body["status"] == "dispatched" and body["timeline"][-1]["action"] == "reopen" else None

        case = await eventually(reopened, timeout=30)
        assert "不满意" in case["timeline"][-1]["reason"]
