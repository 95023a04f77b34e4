"""The application, official-account and SMS clients against the fake's versions of those APIs:
tokens are fetched once, reused, and fetched again only when the platform says they expired."""

import asyncio

import httpx
import pytest

from services.notify.channels import DeliveryError, Senders, as_delivery_error
from services.notify.messages import subscribe_message, template_message, text_message
from services.notify.settings import NotifySettings
from services.notify.sms import HttpSmsGateway, SmsError
from services.notify.wechat import WeChatError, WeChatOfficialAccountClient
from services.notify.wecom import AccessTokenCache, WeComAppClient, WeComError, WeComRobotClient
from shared.phones import phone_token
from tests.support import FakeClock, load_fake_wecom

fake_wecom = load_fake_wecom()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
async def http(clock):
    app = fake_wecom.create_app(clock=clock, token_ttl_s=7200)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wecom") as client:
        yield client


def app_client(http, clock, **overrides) -> WeComAppClient:
    s = NotifySettings()
    values = dict(corp_id=s.wecom_corp_id, corp_secret=s.wecom_corp_secret, agent_id=s.wecom_agent_id) | overrides
    return WeComAppClient("http://wecom", http, clock=clock, **values)


async def fetches(http, kind: str) -> int:
    return (await http.get("/_fake/stats")).json()["token_fetches"].get(kind, 0)


async def test_app_token_is_cached_and_refreshed_before_it_expires(http, clock):
    client = app_client(http, clock)
    for i in range(3):
        await client.send(touser="zhangsan", message={"msgtype": "text", "text": {"content": f"第{i}条"}})
    assert await fetches(http, "wecom") == 1
    clock.now += 7200 - 200  # inside the refresh margin: fetched again before WeCom would refuse it
    await client.send(touser="zhangsan", message={"msgtype": "text", "text": {"content": "续期"}})
    assert await fetches(http, "wecom") == 2
    sent = (await http.get("/_fake/app/messages")).json()
    assert [m["body"]["touser"] for m in sent] == ["zhangsan"] * 4 and sent[0]["body"]["agentid"] == 1000002


async def test_app_refetches_the_token_on_42001_and_40014(http, clock):
    client = app_client(http, clock)
    await client.send(touser="lisi", message={"msgtype": "text", "text": {"content": "一"}})
    await http.post("/_fake/tokens/expire")  # WeCom expired it early (42001)
    await client.send(touser="lisi", message={"msgtype": "text", "text": {"content": "二"}})
    assert await fetches(http, "wecom") == 2
    client.tokens.token = "revoked-token"  # a token WeCom does not know (40014)
    await client.send(touser="lisi", message={"msgtype": "text", "text": {"content": "三"}})
    assert await fetches(http, "wecom") == 3
    assert len((await http.get("/_fake/app/messages")).json()) == 3


async def test_app_errors_are_permanent_when_nobody_can_receive_or_the_secret_is_wrong(http, clock):
    with pytest.raises(WeComError) as nobody:
        await app_client(http, clock).send(
            touser="unknown-1|unknown-2", message={"msgtype": "text", "text": {"content": "x"}}
        )
    assert nobody.value.errcode == 81013 and not nobody.value.retryable
    with pytest.raises(WeComError) as bad_secret:
        await app_client(http, clock, corp_secret="wrong").send(
            touser="a", message={"msgtype": "text", "text": {"content": "x"}}
        )
    assert bad_secret.value.errcode == 40001 and not bad_secret.value.retryable


async def test_concurrent_senders_share_one_token_fetch(clock):
    calls = []

    async def fetch():
        calls.append(1)
        return "t", 7200.0

    cache = AccessTokenCache(fetch, clock=clock)
    assert await asyncio.gather(*(cache.get() for _ in range(10))) == ["t"] * 10
    assert len(calls) == 1
    cache.invalidate("someone-elses-token")
    assert await cache.get() == "t" and len(calls) == 1
    cache.invalidate("t")
    await cache.get()
    assert len(calls) == 2


async def test_official_account_template_message(http, clock):
    s = NotifySettings()
    client = WeChatOfficialAccountClient(
        "http://wecom", http, app_id=s.wechat_app_id, app_secret=s.wechat_app_secret, clock=clock
    )
    message = template_message(
        template_id="T1", url="https://h5.example/c/1", data={"first": "已接单", "keyword1": "abc"}
    )
    answer = await client.send_template(openid="oReporter1", message=message)
    assert answer["errcode"] == 0
    [sent] = (await http.get("/_fake/mp/messages")).json()
    assert sent["body"]["touser"] == "oReporter1" and sent["body"]["data"]["first"] == {"value": "已接单"}
    with pytest.raises(WeChatError) as unfollowed:
        await client.send_template(openid="o-unsubscribed-1", message=message)
    assert unfollowed.value.errcode == 43004 and not unfollowed.value.retryable
    await http.post("/_fake/tokens/expire")
    await client.send_template(openid="oReporter1", message=message)
    assert await fetches(http, "mp") == 2


async def test_official_account_subscribe_message(http, clock):
    s = NotifySettings()
    client = WeChatOfficialAccountClient(
        "http://wecom", http, app_id=s.wechat_app_id, app_secret=s.wechat_app_secret, clock=clock
    )
    message = subscribe_message(
        template_id="S1",
        page="pages/case?id=1",
        data={
            "character_string1": "6f1c2a34",
            "phrase2": "已接单",
            "thing3": "您反映的幸福路井盖问题已由住房和城乡建设局接单处理",
        },
    )
    await client.send_subscribe(openid="oReporter2", message=message)
    [sent] = [m for m in (await http.get("/_fake/mp/messages")).json() if m.get("kind") == "subscribe"]
    assert sent["body"]["touser"] == "oReporter2" and len(sent["body"]["data"]["thing3"]["value"]) == 20
    with pytest.raises(WeChatError) as no_consent:
        await client.send_subscribe(openid="o-noconsent-1", message=message)
    assert no_consent.value.errcode == 43101 and not no_consent.value.retryable
    too_long = {**message, "data": {"thing3": {"value": "长" * 21}}}  # not cut by subscribe_message
    with pytest.raises(WeChatError) as invalid:
        await client.send_subscribe(openid="oReporter2", message=too_long)
    assert invalid.value.errcode == 47003


async def test_sms_gateway_codes(http, clock):
    sms = HttpSmsGateway("http://wecom", http, sign_name="网格通")
    await sms.send(phone="13800001111", template="case.acknowledged", params={"case": "abc", "status": "已接单"})
    [sent] = (await http.get("/_fake/sms/messages")).json()
    assert sent["phone"] == "13800001111" and sent["params"]["status"] == "已接单"
    with pytest.raises(SmsError) as illegal:
        await sms.send(phone="12345", template="t", params={})
    assert not illegal.value.retryable
    for _ in range(4):
        await sms.send(phone="13800001111", template="t", params={})
    with pytest.raises(SmsError) as limited:
        await sms.send(phone="13800001111", template="t", params={})
    assert limited.value.code == "isv.BUSINESS_LIMIT_CONTROL" and limited.value.retryable


async def test_senders_route_by_channel_and_classify_transport_errors(http, clock):
    s = NotifySettings()
    senders = Senders(
        robot=WeComRobotClient("http://wecom", http),
        app=app_client(http, clock),
        official_account=WeChatOfficialAccountClient(
            "http://wecom", http, app_id=s.wechat_app_id, app_secret=s.wechat_app_secret, clock=clock
        ),
        sms=HttpSmsGateway("http://wecom", http, sign_name="网格通"),
        phone_keys=s.phone_keys(),
    )
    await senders.send(channel="wecom_robot", target="robot-x", body=text_message("派单"))
    await senders.send(
        channel="sms", target=phone_token("13800002222", s.phone_keys()), body={"template": "t", "params": {}}
    )
    assert len((await http.get("/_fake/messages", params={"key": "robot-x"})).json()) == 1
    with pytest.raises(DeliveryError) as unknown:
        await senders.send(channel="pigeon", target="x", body={})
    assert not unknown.value.retryable
    request = httpx.Request("POST", "http://wecom")
    assert as_delivery_error(httpx.ConnectError("refused", request=request)).retryable
    server_error = httpx.HTTPStatusError("x", request=request, response=httpx.Response(502, request=request))
    assert as_delivery_error(server_error).retryable
    not_found = httpx.HTTPStatusError("x", request=request, response=httpx.Response(404, request=request))
    assert not as_delivery_error(not_found).retryable
