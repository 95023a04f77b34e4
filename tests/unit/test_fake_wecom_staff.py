"""The fake WeCom's template-card and AI-bot endpoints answer as WeCom documents: each click's
response_code updates its card once (72 h), each bot response_url takes one markdown reply (1 h),
bot photos are served encrypted with the callback key; and notify's clients read those answers."""

import base64

import httpx
import pytest

from services.notify import crypto
from services.notify.crypto import decrypt_aibot_file
from services.notify.wecom import WeComAiBotClient, WeComAppClient, WeComError
from tests.support import FakeClock, load_fake_wecom

fake_wecom = load_fake_wecom()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
async def http(clock):
    app = fake_wecom.create_app(clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wecom") as client:
        yield client


def app_client(http) -> WeComAppClient:
    return WeComAppClient(
        "http://wecom",
        http,
        corp_id=fake_wecom.CORP_ID,
        corp_secret=fake_wecom.CORP_SECRET,
        agent_id=fake_wecom.AGENT_ID,
    )


async def test_a_clicks_code_updates_its_card_once_and_expires(http, clock):
    click = (
        await http.post("/_fake/card-clicks", json={"userid": "u1", "event_key": "accept:1", "task_id": "t"})
    ).json()
    assert click["status_code"] is None and "Encrypt" in click["body"]  # built, signed and encrypted, not sent
    client = app_client(http)
    update = {"response_code": click["response_code"], "button": {"replace_name": "已接单 · 王芳 10:03"}}
    assert (await client.update_template_card(userid="u1", update=update))["errcode"] == 0
    with pytest.raises(WeComError) as used:
        await client.update_template_card(userid="u1", update=update)
    assert used.value.errcode == 40058 and not used.value.retryable
    [recorded] = (await http.get("/_fake/app/card-updates")).json()
    assert recorded["body"]["userids"] == ["u1"] and recorded["body"]["agentid"] == fake_wecom.AGENT_ID
    late = (
        await http.post("/_fake/card-clicks", json={"userid": "u1", "event_key": "accept:1", "task_id": "t"})
    ).json()
    clock.now += 72 * 3600 + 1
    with pytest.raises(WeComError):
        await client.update_template_card(
            userid="u1", update={"response_code": late["response_code"], "button": {"replace_name": "x"}}
        )
    with pytest.raises(WeComError) as empty:
        await client.update_template_card(userid="u1", update={"response_code": "whatever"})
    assert empty.value.errcode == 40058  # neither button.replace_name nor template_card


async def test_a_bot_response_url_takes_one_markdown_reply_within_an_hour(http, clock):
    sent = (await http.post("/_fake/aibot/messages", json={"userid": "u1", "text": "查 1"})).json()
    url = sent["message"]["response_url"]
    assert sent["message"]["text"]["content"] == "@网格通 查 1" and sent["message"]["chattype"] == "group"
    bot = WeComAiBotClient(http)
    with pytest.raises(WeComError):  # only markdown answers a group's message
        await bot.reply(response_url=url, message={"msgtype": "text", "text": {"content": "x"}})
    await bot.reply(response_url=url, message={"msgtype": "markdown", "markdown": {"content": "**已办结**"}})
    with pytest.raises(WeComError):  # one call per URL
        await bot.reply(response_url=url, message={"msgtype": "markdown", "markdown": {"content": "again"}})
    later = (await http.post("/_fake/aibot/messages", json={"userid": "u1", "text": "查 2"})).json()
    clock.now += 3601
    with pytest.raises(WeComError):
        await bot.reply(
            response_url=later["message"]["response_url"], message={"msgtype": "markdown", "markdown": {"content": "x"}}
        )
    [reply] = (await http.get("/_fake/aibot/replies")).json()
    assert reply["body"]["markdown"]["content"] == "**已办结**" and reply["to"]["userid"] == "u1"


async def test_bot_photos_are_served_encrypted_for_five_minutes(http, clock):
    photo = b"\xff\xd8\xff\xe0" + b"jpeg-bytes" * 100
    sent = (
        await http.post(
            "/_fake/aibot/messages",
            json={"userid": "u1", "text": "办结 1 已清运", "image": base64.b64encode(photo).decode()},
        )
    ).json()
    text_item, image_item = sent["message"]["mixed"]["msg_item"]
    assert sent["message"]["msgtype"] == "mixed" and text_item["text"]["content"] == "@网格通 办结 1 已清运"
    served = await http.get(image_item["image"]["url"])
    assert served.status_code == 200 and served.content != photo
    assert decrypt_aibot_file(served.content, key=crypto.aes_key(fake_wecom.WECOM_AES_KEY)) == photo
    clock.now += 301
    assert (await http.get(image_item["image"]["url"])).status_code == 404
