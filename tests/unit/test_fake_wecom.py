"""The fake WeCom robot server answers as WeCom does, and the real client reads those answers."""

import base64
import hashlib
import io

import httpx
import pytest
from PIL import Image

from services.notify.messages import text_message
from services.notify.wecom import WeComError, WeComRobotClient
from tests.support import FakeClock, load_fake_wecom

fake_wecom = load_fake_wecom()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
async def http(clock):
    app = fake_wecom.create_app(rate_limit_per_minute=20, valid_keys={"robot-a", "robot-b"}, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wecom") as client:
        yield client


async def send(http, message, key="robot-a"):
    response = await http.post("/cgi-bin/webhook/send", params={"key": key}, json=message)
    assert response.status_code == 200  # WeCom keeps HTTP 200 for errors too
    return response.json()


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 128, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_text_with_mentions_is_accepted_and_recorded(http):
    message = text_message("【派单】井盖缺失", mentioned_mobiles=["13800001111"])
    assert await send(http, message) == {"errcode": 0, "errmsg": "ok"}
    [recorded] = (await http.get("/_fake/messages", params={"key": "robot-a"})).json()
    assert recorded["body"] == message
    assert (await http.get("/_fake/messages", params={"key": "robot-b"})).json() == []


@pytest.mark.parametrize("key", ["", "unknown-robot"])
async def test_invalid_key_is_93000(http, key):
    assert (await send(http, text_message("x"), key=key))["errcode"] == 93000


@pytest.mark.parametrize(
    "message, errcode",
    [
        ({"msgtype": "video", "video": {}}, 40008),
        ({"msgtype": "text", "text": {"content": ""}}, 44004),
        ({"msgtype": "text", "text": {"content": "长" * 700}}, 45002),  # 2100 bytes > 2048
        ({"msgtype": "text", "text": {"content": "x", "mentioned_mobile_list": "13800001111"}}, 40058),
        ({"msgtype": "markdown", "markdown": {"content": "a" * 4097}}, 45002),
        ({"msgtype": "news", "news": {"articles": []}}, 40058),
        ({"msgtype": "news", "news": {"articles": [{"title": "t", "url": "https://x"}] * 9}}, 40058),
        ({"msgtype": "image", "image": {"base64": "not base64!", "md5": "0"}}, 40058),
    ],
)
async def test_malformed_messages_are_refused_with_their_errcode(http, message, errcode):
    assert (await send(http, message))["errcode"] == errcode
    assert (await http.get("/_fake/messages")).json() == []


async def test_image_needs_matching_md5(http):
    raw = png()
    good = {
        "msgtype": "image",
        "image": {"base64": base64.b64encode(raw).decode(), "md5": hashlib.md5(raw).hexdigest()},
    }
    assert (await send(http, good))["errcode"] == 0
    bad = {"msgtype": "image", "image": {**good["image"], "md5": "0" * 32}}
    assert (await send(http, bad))["errcode"] == 40058


async def test_text_cut_by_the_client_fits_the_limit(http):
    message = text_message("网格" * 2000)
    assert len(message["text"]["content"].encode()) <= 2048
    assert (await send(http, message))["errcode"] == 0


async def test_twenty_messages_a_minute_per_robot(http, clock):
    for i in range(20):
        assert (await send(http, text_message(f"第{i}条")))["errcode"] == 0
    assert (await send(http, text_message("第21条")))["errcode"] == 45009
    assert (await http.get("/_fake/stats")).json()["robot_rate_limited"] == {"robot-a": 1}  # reported too
    assert (await send(http, text_message("另一个群"), key="robot-b"))["errcode"] == 0
    clock.now += 60
    assert (await send(http, text_message("一分钟后")))["errcode"] == 0


async def test_real_client_raises_retryable_and_permanent_errors(http):
    client = WeComRobotClient("http://wecom", http)
    await client.send(key="robot-a", message=text_message("ok"))
    await http.post("/_fake/failures", params={"key": "robot-a", "errcode": -1, "times": 1})
    with pytest.raises(WeComError) as busy:
        await client.send(key="robot-a", message=text_message("busy"))
    assert busy.value.retryable
    with pytest.raises(WeComError) as invalid:
        await client.send(key="no-such-robot", message=text_message("x"))
    assert invalid.value.errcode == 93000 and not invalid.value.retryable
    await client.send(key="robot-a", message=text_message("recovered"))
    assert len((await http.get("/_fake/messages", params={"key": "robot-a"})).json()) == 2
