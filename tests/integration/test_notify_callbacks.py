"""Inbound WeCom application and official-account callbacks, encrypted by the fake exactly as the
platforms do: URL checks, messages published as message.received, forgeries and replays refused."""

import importlib.util
import time
from uuid import uuid4

from services.notify.app import create_app
from shared.settings import PROJECT_ROOT
from shared.topics import MESSAGES, ensure_topics
from tests.support import read_topic, running

_spec = importlib.util.spec_from_file_location("fake_wecom", PROJECT_ROOT / "deploy" / "local" / "fake_wecom.py")
fake_wecom = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_wecom)


def msg_id() -> str:
    return str(uuid4().int)[:19]


async def post_wecom(client, message_xml: str, **kw):
    params, body = fake_wecom.callback_request(message_xml, source="wecom_app", **kw)
    return await client.post("/api/v1/callbacks/wecom", params=params, content=body.encode()), params, body


async def test_url_checks_answer_the_bare_plaintext(make_settings):
    settings = make_settings("notify")
    await ensure_topics(settings)
    async with running(create_app(settings)) as client:
        params, expected = fake_wecom.url_check_request(source="wecom_app")
        response = await client.get("/api/v1/callbacks/wecom", params=params)
        assert response.status_code == 200 and response.text == expected
        params, expected = fake_wecom.url_check_request(source="wechat_mp")
        response = await client.get("/api/v1/callbacks/wechat", params=params)
        assert response.status_code == 200 and response.text == expected
        forged = params | {"signature": "0" * 40, "nonce": "1"}
        refused = await client.get("/api/v1/callbacks/wechat", params=forged)
        assert refused.status_code == 403 and refused.json()["detail"] == "bad_signature"


async def test_text_image_and_location_become_message_received_events(make_settings):
    settings = make_settings("notify")
    await ensure_topics(settings)
    ids = [msg_id() for _ in range(4)]
    async with running(create_app(settings)) as client:
        text = fake_wecom.message_xml(
            msg_type="text", from_user="zhangsan", msg_id=ids[0], Content="东关街垃圾堆了三天"
        )
        image = fake_wecom.message_xml(
            msg_type="image",
            from_user="zhangsan",
            msg_id=ids[1],
            PicUrl="http://wework.qpic.cn/x.jpg",
            MediaId="media-1",
        )
        location = fake_wecom.message_xml(
            msg_type="location",
            from_user="zhangsan",
            msg_id=ids[2],
            Location_X="29.0512",
            Location_Y="120.4467",
            Scale="15",
            Label="幸福路12号",
        )
        for xml in (text, image, location):
            response, _, _ = await post_wecom(client, xml)
            assert response.status_code == 200 and response.text == ""
        mp_text = fake_wecom.message_xml(
            msg_type="text", from_user="oResident1", to_user="gh_gridlink", msg_id=ids[3], Content="路灯不亮"
        )
        params, body = fake_wecom.callback_request(mp_text, source="wechat_mp")
        response = await client.post("/api/v1/callbacks/wechat", params=params, content=body.encode())
        assert response.status_code == 200 and response.text == "success"
        events = await read_topic(settings, MESSAGES.name, until=lambda ms: len(ms) >= 4)
    by_id = {e["payload"]["msg_id"]: e for e in events}
    assert by_id[ids[0]]["payload"]["content"] == "东关街垃圾堆了三天" and by_id[ids[0]]["key"] == "zhangsan"
    assert by_id[ids[1]]["payload"]["media_id"] == "media-1"
    loc = by_id[ids[2]]["payload"]
    assert (loc["lat"], loc["lng"], loc["datum"], loc["label"]) == (29.0512, 120.4467, "gcj02", "幸福路12号")
    assert by_id[ids[3]]["payload"]["source"] == "wechat_mp" and by_id[ids[3]]["payload"]["from_user"] == "oResident1"
    assert {e["type"] for e in events} == {"message.received"}


async def test_replays_forgeries_and_stale_callbacks_are_refused(make_settings):
    settings = make_settings("notify")
    await ensure_topics(settings)
    first_id, retried_id = msg_id(), msg_id()
    async with running(create_app(settings)) as client:
        xml = fake_wecom.message_xml(msg_type="text", from_user="lisi", msg_id=first_id, Content="井盖没了")
        response, params, body = await post_wecom(client, xml)
        assert response.status_code == 200
        replay = await client.post("/api/v1/callbacks/wecom", params=params, content=body.encode())
        assert replay.status_code == 403 and replay.json()["type"].endswith("callback-replayed")
        # WeCom retrying a message (new nonce, same MsgId) is answered but published once.
        retry, _, _ = await post_wecom(client, xml)
        assert retry.status_code == 200
        forged = await client.post("/api/v1/callbacks/wecom", params=params | {"nonce": "123"}, content=body.encode())
        assert forged.status_code == 403 and forged.json()["detail"] == "bad_signature"
        old = str(int(time.time()) - 3600)
        stale, _, _ = await post_wecom(client, xml, timestamp=old)
        assert stale.status_code == 403 and stale.json()["detail"] == "stale"
        wrong_key, _, _ = await post_wecom(client, xml, encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
        assert wrong_key.status_code == 403 and wrong_key.json()["detail"] == "undecryptable"
        other_corp, _, _ = await post_wecom(client, xml, receive_id="ww-another-corp")
        assert other_corp.status_code == 403 and other_corp.json()["detail"] == "undecryptable"
        bad_xml = await client.post("/api/v1/callbacks/wecom", params=params | {"nonce": "9"}, content=b"<xml><oops")
        assert bad_xml.status_code == 400
        later, _, _ = await post_wecom(
            client, fake_wecom.message_xml(msg_type="text", from_user="lisi", msg_id=retried_id, Content="补充：在路口")
        )
        assert later.status_code == 200
        events = await read_topic(
            settings, MESSAGES.name, until=lambda ms: retried_id in {m["payload"]["msg_id"] for m in ms}
        )
        metrics = (await client.get("/metrics")).text
    assert [e["payload"]["msg_id"] for e in events] == [first_id, retried_id]
    for outcome in ("replayed", "bad_signature", "stale", "undecryptable", "duplicate", "accepted"):
        assert f'gridlink_notify_callbacks_total{{outcome="{outcome}",source="wecom_app"}}' in metrics


async def test_official_account_plaintext_mode_is_signed_too(make_settings):
    settings = make_settings("notify", wechat_safe_mode=False)  # an account configured in 明文模式
    await ensure_topics(settings)
    async with running(create_app(settings)) as client:
        xml = fake_wecom.message_xml(
            msg_type="text", from_user="oResident2", to_user="gh_gridlink", msg_id=msg_id(), Content="小区门口积水"
        )
        params, _ = fake_wecom.url_check_request(source="wechat_mp")
        params.pop("echostr")
        response = await client.post("/api/v1/callbacks/wechat", params=params, content=xml.encode())
        assert response.status_code == 200
        unsigned = await client.post(
            "/api/v1/callbacks/wechat", params=params | {"signature": "x", "nonce": "2"}, content=xml.encode()
        )
        assert unsigned.status_code == 403
        [event] = await read_topic(settings, MESSAGES.name, until=lambda ms: len(ms) >= 1)
    assert event["payload"]["content"] == "小区门口积水" and event["payload"]["source"] == "wechat_mp"


async def test_ai_bot_mentions_in_a_group_reach_intake_with_the_group(make_settings):
    settings = make_settings("notify")
    await ensure_topics(settings)
    mention = {
        "msgid": msg_id(),
        "aibotid": "aibot-1",
        "chatid": "wrkGroup01",
        "chattype": "group",
        "from": {"userid": "wangwu"},
        "response_url": "https://qyapi.example/aibot/response?code=1",
        "msgtype": "text",
        "text": {"content": "@网格通 幸福路12号路灯不亮"},
    }
    async with running(create_app(settings)) as client:
        params, expected = fake_wecom.url_check_request(source="wecom_app", receive_id="")
        check = await client.get("/api/v1/callbacks/wecom-aibot", params=params)
        assert check.status_code == 200 and check.text == expected
        params, body = fake_wecom.aibot_callback_request(mention)
        response = await client.post("/api/v1/callbacks/wecom-aibot", params=params, content=body.encode())
        assert response.status_code == 200
        forged, body2 = fake_wecom.aibot_callback_request(mention | {"msgid": msg_id()}, token="not-our-token")
        assert (
            await client.post("/api/v1/callbacks/wecom-aibot", params=forged, content=body2.encode())
        ).status_code == 403
        garbage = await client.post("/api/v1/callbacks/wecom-aibot", params=params | {"nonce": "7"}, content=b"[1")
        assert garbage.status_code == 400
        [event] = await read_topic(settings, MESSAGES.name, until=lambda ms: len(ms) >= 1)
    payload = event["payload"]
    assert (payload["source"], payload["group_id"], payload["from_user"]) == ("wecom_group", "wrkGroup01", "wangwu")
    assert payload["content"] == "@网格通 幸福路12号路灯不亮" and payload["response_url"] == mention["response_url"]


async def test_a_retry_after_a_failed_publish_is_taken_and_plaintext_is_refused_in_safe_mode(
    make_settings, monkeypatch
):
    from services.notify import store

    settings = make_settings("notify")
    await ensure_topics(settings)
    the_id = msg_id()
    xml = fake_wecom.message_xml(msg_type="text", from_user="lisi", msg_id=the_id, Content="桥头路灯不亮")
    remember, calls = store.remember_inbound, []

    async def fails_once(conn, **kw):
        calls.append(kw)
        if len(calls) == 1:
            raise ConnectionError("database went away mid-request")
        return await remember(conn, **kw)

    monkeypatch.setattr(store, "remember_inbound", fails_once)
    async with running(create_app(settings), raise_app_exceptions=False) as client:
        first, params, body = await post_wecom(client, xml)
        assert first.status_code == 503  # the database went away: "try again", which the platform does
        # WeCom retries the same request (same timestamp and nonce): it is taken, not refused as a replay.
        retried = await client.post("/api/v1/callbacks/wecom", params=params, content=body.encode())
        assert retried.status_code == 200, retried.text
        replayed = await client.post("/api/v1/callbacks/wecom", params=params, content=body.encode())
        assert replayed.status_code == 403 and replayed.json()["detail"] == "replayed"

        plain = fake_wecom.message_xml(msg_type="text", from_user="oForger", msg_id=msg_id(), Content="假消息")
        params, _ = fake_wecom.callback_request(plain, source="wechat_mp")
        params = {k: v for k, v in params.items() if k not in ("encrypt_type", "msg_signature")}
        refused = await client.post("/api/v1/callbacks/wechat", params=params, content=plain.encode())
        assert refused.status_code == 403 and refused.json()["detail"] == "plaintext_refused"
        events = await read_topic(settings, MESSAGES.name, until=lambda ms: len(ms) >= 1)
    assert [e["payload"]["msg_id"] for e in events] == [the_id]
