"""Staff commands reaching notify from WeCom, built by the fake exactly as WeCom signs and encrypts
them: a card click and a bot command become one staff.command each (a second delivery adds none),
and a forged, stale, replayed or malformed callback is refused without effect; a bot's other
@-mentions stay reports; a photo that cannot be fetched is answered in the group."""

import json
import time
from uuid import uuid4

import asyncpg

from services.notify.app import create_app
from shared.topics import MESSAGES, STAFF_COMMANDS, ensure_topics
from shared.wecom_cards import card_button_key, card_task_id
from tests.support import load_fake_wecom, read_topic, running

fake_wecom = load_fake_wecom()
CASE_NO = "20261202-000042"


def click_xml(user="WangFang", action="accept", n=0, code="rc-1", create_time=None) -> str:
    return fake_wecom.template_card_event_xml(
        from_user=user,
        event_key=card_button_key(action, CASE_NO),
        task_id=card_task_id(CASE_NO, n),
        response_code=code,
        create_time=create_time,
    )


def bot_message(words: str, *, msgid: str | None = None, user="WangFang", **extra) -> dict:
    return {
        "msgid": msgid or uuid4().hex,
        "aibotid": "aib-1",
        "chatid": "wrk-1",
        "chattype": "group",
        "from": {"userid": user},
        "response_url": "http://127.0.0.1:9/cgi-bin/aibot/response?response_code=x",
        "msgtype": "text",
        "text": {"content": f"@网格通 {words}"},
    } | extra


async def post_card(client, xml: str, **kw):
    params, body = fake_wecom.callback_request(xml, source="wecom_app", **kw)
    return await client.post("/api/v1/callbacks/wecom", params=params, content=body.encode()), params, body


async def post_bot(client, message: dict, **kw):
    params, body = fake_wecom.aibot_callback_request(message, **kw)
    return await client.post("/api/v1/callbacks/wecom-aibot", params=params, content=body.encode()), params, body


async def staff_rows(settings) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetch("SELECT * FROM notify.staff_commands ORDER BY received_at")
    finally:
        await conn.close()


async def test_clicks_and_commands_become_one_staff_command_each(make_settings):
    settings = make_settings("notify")
    await ensure_topics(settings)
    async with running(create_app(settings)) as client:
        first, params, body = await post_card(client, click_xml(code="rc-1"))
        assert first.status_code == 200 and first.text == ""
        # The same delivery again (same nonce): refused as a replay.
        replay = await client.post("/api/v1/callbacks/wecom", params=params, content=body.encode())
        assert replay.status_code == 403 and replay.json()["detail"] == "replayed"
        # The same click delivered again with a new nonce (and another code): taken once.
        again, _, _ = await post_card(client, click_xml(code="rc-2"))
        assert again.status_code == 200
        await post_card(client, click_xml(action="return", n=1, code="rc-3"))
        msgid = uuid4().hex
        for _ in range(2):  # the bot's message twice (same msgid)
            answer, _, _ = await post_bot(client, bot_message(f"进展 {CASE_NO} 已到现场，正在清运", msgid=msgid))
            assert answer.status_code == 200
        report, _, _ = await post_bot(client, bot_message("幸福路路灯坏了"))  # not a command: a report
        assert report.status_code == 200
        events = await read_topic(settings, STAFF_COMMANDS.name, until=lambda ms: len(ms) >= 3)
        reports = await read_topic(settings, MESSAGES.name, until=lambda ms: len(ms) >= 1)
    commands = {(e["payload"]["source"], e["payload"]["action"]): e["payload"] for e in events}
    assert len(events) == 3 and set(commands) == {("card", "acknowledge"), ("card", "return"), ("bot", "progress")}
    assert commands["card", "return"]["text"] == "经办人在企业微信退回"
    assert commands["bot", "progress"]["text"] == "已到现场，正在清运"
    assert all(c["case_no"] == CASE_NO and c["wecom_user_id"] == "WangFang" for c in commands.values())
    assert "response_code" not in json.dumps(events) and "response_url" not in json.dumps(events)
    assert [r["payload"]["content"] for r in reports] == ["@网格通 幸福路路灯坏了"]
    rows = {r["action"]: r for r in await staff_rows(settings)}
    assert rows["acknowledge"]["response_code"] == "rc-1"  # the first click's code answers it
    assert rows["progress"]["response_url"].endswith("response_code=x")


async def test_forged_stale_and_malformed_staff_callbacks_change_nothing(make_settings):
    settings = make_settings("notify")
    await ensure_topics(settings)
    async with running(create_app(settings)) as client:
        params, body = fake_wecom.callback_request(click_xml(), source="wecom_app")
        forged = await client.post(
            "/api/v1/callbacks/wecom", params=params | {"msg_signature": "0" * 40}, content=body.encode()
        )
        assert forged.status_code == 403 and forged.json()["detail"] == "bad_signature"
        stale, _, _ = await post_card(client, click_xml(), timestamp=str(int(time.time()) - 3600))
        assert stale.status_code == 403 and stale.json()["detail"] == "stale"
        wrong_key, _, _ = await post_bot(
            client, bot_message(f"接单 {CASE_NO}"), encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
        )
        assert wrong_key.status_code == 403 and wrong_key.json()["detail"] == "undecryptable"
        params, _ = fake_wecom.aibot_callback_request(bot_message(f"接单 {CASE_NO}"))
        broken = await client.post("/api/v1/callbacks/wecom-aibot", params=params, content=b"{not json")
        assert broken.status_code == 400
        stale_bot, _, _ = await post_bot(client, bot_message(f"接单 {CASE_NO}"), timestamp="1")
        assert stale_bot.status_code == 403 and stale_bot.json()["detail"] == "stale"
        # A card click whose key is not one of ours is taken (200, no retries) and does nothing.
        other, _, _ = await post_card(
            client,
            fake_wecom.template_card_event_xml(
                from_user="WangFang", event_key="vote:1", task_id="t-1", response_code="rc-9"
            ),
        )
        assert other.status_code == 200
    assert await staff_rows(settings) == []


async def test_a_photo_that_cannot_be_fetched_is_answered_in_the_group(make_settings, fake_wecom):
    settings = make_settings("notify")
    await ensure_topics(settings)
    async with running(create_app(settings)) as client:
        gone = {"msgtype": "image", "image": {"url": f"{fake_wecom}/_fake/aibot/files/gone"}}
        message = bot_message("", msgtype="mixed", text=None) | {
            "mixed": {"msg_item": [{"msgtype": "text", "text": {"content": f"@网格通 办结 {CASE_NO} 已清运"}}, gone]}
        }
        answer, _, _ = await post_bot(client, message)
        assert answer.status_code == 200
        [row] = await staff_rows(settings)
        assert row["answered_at"] is not None  # answered here: no command went to dispatch
        conn = await asyncpg.connect(settings.database_url)
        try:
            reply = await conn.fetchrow("SELECT * FROM notify.notifications WHERE channel = 'aibot_reply'")
        finally:
            await conn.close()
    body = json.loads(reply["body"]) if isinstance(reply["body"], str) else reply["body"]
    content = body["markdown"]["content"]
    assert "未办结" in content and "下载失败" in content
