"""Duty (值班) in notify's messages: 派单 @-mentions the person on duty and links the mobile work page,
the person on duty gets the 接单/退回 card, the backup is @-mentioned at half the acknowledgement
time; residents are answered in the group they reported in, with the case number. Also the fake's
template cards and the application client's answer to a repeated task id."""

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest

from services.notify.channels import DeliveryError
from services.notify.delivery import _mentions
from services.notify.domain import DepartmentContact, Directory, OnDuty, ReporterContact, ReporterTemplates
from services.notify.messages import robot_image_link
from services.notify.reporter_messages import (
    accepted_messages,
    acknowledged_messages,
    comparison_messages,
    verification_messages,
)
from services.notify.robot_budget import digest_message
from services.notify.settings import NotifySettings
from services.notify.staff_messages import dispatched_messages, warning_messages, work_page_url
from services.notify.wecom import WeComAppClient, WeComError, WeComRobotClient
from shared.events import CaseDispatched, CaseTransitioned, SlaWarning
from shared.settings import PROJECT_ROOT
from shared.sla_policy import load_sla_policy
from tests.support import FakeClock, load_fake_wecom

POLICY = load_sla_policy(PROJECT_ROOT / "shared" / "data" / "sla_policies.yaml")
DIRECTORY = Directory(
    departments={
        "zhujian": DepartmentContact("robot-zhujian", ("13800000001",)),
        "chengguan": DepartmentContact("robot-chengguan", ()),
    }
)
AT = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # 10:00 Beijing time
DUTY = {
    "zhujian": OnDuty("li.qiang", "李强", "wang.fang", "王芳"),
    "chengguan": OnDuty("zhang.wei", "张伟"),
}
TASK_ID = re.compile(r"^[A-Za-z0-9_@-]{1,128}$")


def case(**facts) -> CaseDispatched:
    values = dict(
        case_id=uuid4(),
        report_id=uuid4(),
        seq=1,
        category="manhole",
        category_name="井盖缺失",
        priority="urgent",
        department_code="zhujian",
        department_name="住房和城乡建设局",
        description="幸福路井盖翻起来了",
        responsibility_list_version="v1",
        rule="r",
        dispatched_at=AT,
        case_no="20261202-000042",
    )
    return CaseDispatched(**values | facts)


def test_dispatch_mentions_the_person_on_duty_and_links_the_work_page():
    [group, card] = dispatched_messages(
        case(), directory=DIRECTORY, sla_policy=POLICY, duty=DUTY, console_url="https://gw.example.gov.cn/"
    )
    text = group.body["text"]
    assert group.target == "robot-zhujian" and text["mentioned_list"] == ["li.qiang"]
    assert text["mentioned_mobile_list"] == ["13800000001"]  # the group's handlers, as before
    assert "值班：李强" in text["content"] and "案件 20261202-000042" in text["content"]
    assert "处置页面：https://gw.example.gov.cn/m/cases/20261202-000042" in text["content"]
    assert group.digest_line.endswith(" https://gw.example.gov.cn/m/cases/20261202-000042")
    assert card.channel == "wecom_app" and card.target == "li.qiang" and card.template == "case.dispatched.card"


def test_the_card_has_accept_and_return_buttons_with_the_agreed_keys():
    [_, out] = dispatched_messages(
        case(seq=3), directory=DIRECTORY, sla_policy=POLICY, duty=DUTY, console_url="https://gw.example.gov.cn"
    )
    assert out.body["msgtype"] == "template_card"
    card = out.body["template_card"]
    assert card["card_type"] == "button_interaction"
    assert [(b["text"], b["key"]) for b in card["button_list"]] == [
        ("接单", "accept:20261202-000042"),
        ("退回", "return:20261202-000042"),
    ]
    assert card["task_id"] == "case-20261202-000042-30" and TASK_ID.match(card["task_id"])
    assert "20261202-000042" in card["main_title"]["desc"] and "井盖缺失" in card["main_title"]["title"]
    assert card["card_action"] == {"type": 1, "url": "https://gw.example.gov.cn/m/cases/20261202-000042"}
    assert {"keyname": "接单时限", "value": "10分钟"} in card["horizontal_content_list"]
    fake_wecom = load_fake_wecom()
    fake_wecom.validate_button_card(card)  # what WeCom requires of a button card


def test_co_handlers_on_duty_get_their_own_card_and_mention():
    joint = case(co_department_codes=["chengguan"])
    out = dispatched_messages(joint, directory=DIRECTORY, sla_policy=POLICY, duty=DUTY)
    robots = {o.target: o.body["text"] for o in out if o.channel == "wecom_robot"}
    assert (
        robots["robot-chengguan"]["mentioned_list"] == ["zhang.wei"]
        and "【协办】" in robots["robot-chengguan"]["content"]
    )
    cards = {o.target: o.body["template_card"] for o in out if o.channel == "wecom_app"}
    assert set(cards) == {"li.qiang", "zhang.wei"}
    assert cards["li.qiang"]["task_id"] != cards["zhang.wei"]["task_id"]  # unique per application
    assert cards["zhang.wei"]["main_title"]["title"].startswith("【协办】")
    assert "处置页面" not in robots["robot-zhujian"]["content"]  # no console address configured, no link


def test_without_a_roster_or_a_case_number_there_is_no_mention_and_no_card():
    [group] = dispatched_messages(case(), directory=DIRECTORY, sla_policy=POLICY)
    assert "mentioned_list" not in group.body["text"] and "值班" not in group.body["text"]["content"]
    nobody = {"zhujian": OnDuty(None, "李强")}  # on the roster, but no WeCom account in the directory
    [group] = dispatched_messages(case(), directory=DIRECTORY, sla_policy=POLICY, duty=nobody)
    assert "值班：李强" in group.body["text"]["content"] and "mentioned_list" not in group.body["text"]
    out = dispatched_messages(case(case_no=None), directory=DIRECTORY, sla_policy=POLICY, duty=DUTY)
    assert [o.channel for o in out] == ["wecom_robot"]
    assert work_page_url("https://x.cn", None) is None and work_page_url("", "1") is None


def test_a_warning_mentions_the_person_on_duty_and_the_backup():
    warning = SlaWarning(
        case_id=uuid4(),
        stage="acknowledge",
        department_code="zhujian",
        started_at=AT,
        due_at=AT + timedelta(hours=2),
        reminder=1,
        case_no="20261202-000042",
        fired_at=AT + timedelta(minutes=60),
    )
    [out] = warning_messages(
        warning, directory=DIRECTORY, now=warning.fired_at, duty=DUTY["zhujian"], console_url="https://gw"
    )
    assert out.body["text"]["mentioned_list"] == ["li.qiang", "wang.fang"]
    content = out.body["text"]["content"]
    assert "备班：王芳" in content and "https://gw/m/cases/20261202-000042" in content
    # The 接单 stage's first reminder (at half its time) asks the backup to help claim the 派单.
    assert content.startswith("【催接单】案件 20261202-000042，派单后仍未接单") and "协助接单" in content
    [resolve] = warning_messages(
        warning.model_copy(update={"stage": "resolve"}), directory=DIRECTORY, now=warning.fired_at, duty=DUTY["zhujian"]
    )
    assert resolve.body["text"]["content"].startswith("【催办】") and "协助接单" not in resolve.body["text"]["content"]


def test_digests_mention_everyone_on_duty_once():
    rows = [{"body": {"text": {"mentioned_mobile_list": ["1"], "mentioned_list": [u]}}} for u in ("a", "b", "a")]
    assert _mentions(rows, "mentioned_list") == ["a", "b"] and _mentions(rows) == ["1"]
    body = digest_message(["x", "y"], mentioned_mobiles=["1"], mentioned_users=["a", "b"])
    assert body["text"]["mentioned_list"] == ["a", "b"]


# --- residents hear back where they reported ---------------------------------------------------

GROUP_REPORTER = ReporterContact(wecom_userid="wo-resident-1", group_robot="grp-330727001001001-00")


def step(action: str, status: str, **detail) -> CaseTransitioned:
    return CaseTransitioned(
        case_id=uuid4(),
        report_id=uuid4(),
        category="manhole",
        category_name="井盖缺失",
        priority="urgent",
        department_code="zhujian",
        department_name="住房和城乡建设局",
        description="幸福路井盖翻起来了",
        action=action,
        from_status="dispatched",
        status=status,
        actor="li.qiang",
        detail=detail,
        at=AT,
        case_no="20261202-000042",
    )


def test_a_group_reporter_is_answered_in_the_group_with_the_case_number_every_time():
    messages = [
        *accepted_messages(case_no="20261202-000042", reporter=GROUP_REPORTER, at=AT),
        *acknowledged_messages(step("acknowledge", "acknowledged"), reporter=GROUP_REPORTER),
        *verification_messages(step("resolve", "resolved"), reporter=GROUP_REPORTER),
    ]
    assert [m.template for m in messages] == ["report.accepted", "case.acknowledged", "case.verification"]
    for m in messages:
        assert (m.channel, m.target) == ("wecom_robot", "grp-330727001001001-00")
        assert m.body["text"]["mentioned_list"] == ["wo-resident-1"]
        assert "20261202-000042" in m.body["text"]["content"]
    assert "已受理" in messages[0].body["text"]["content"] and "我要查询" in messages[0].body["text"]["content"]
    assert "回复 1 满意" in messages[2].body["text"]["content"]


def test_the_official_account_reporter_gets_the_number_when_the_report_is_taken():
    [out] = accepted_messages(
        case_no="20261202-000042", reporter=ReporterContact(openid="o-1"), at=AT, templates=ReporterTemplates()
    )
    assert out.channel == "wechat_template" and out.body["data"]["keyword1"]["value"] == "20261202-000042"


# --- the fake's template cards and the client's answer to a repeated task id ---------------------


@pytest.fixture
async def wecom():
    app = load_fake_wecom().create_app(clock=FakeClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wecom") as http:
        s = NotifySettings()
        client = WeComAppClient(
            "http://wecom", http, corp_id=s.wecom_corp_id, corp_secret=s.wecom_corp_secret, agent_id=s.wecom_agent_id
        )
        yield http, client


async def test_the_fake_records_a_card_and_refuses_its_task_id_twice(wecom):
    http, client = wecom
    [_, out] = dispatched_messages(case(), directory=DIRECTORY, sla_policy=POLICY, duty=DUTY)
    answer = await client.send(touser="li.qiang", message=out.body)
    assert answer["errcode"] == 0 and answer["response_code"]
    [recorded] = (await http.get("/_fake/app/messages")).json()
    assert (
        recorded["body"]["touser"] == "li.qiang"
        and recorded["body"]["template_card"]["task_id"] == "case-20261202-000042-10"
    )
    # The same task again (an attempt whose answer was lost): WeCom says 42014, the card is there.
    token = (
        await http.get("/cgi-bin/gettoken", params={"corpid": client.corp_id, "corpsecret": client.corp_secret})
    ).json()
    again = await http.post(
        "/cgi-bin/message/send",
        params={"access_token": token["access_token"]},
        json={**out.body, "touser": "li.qiang", "agentid": client.agent_id},
    )
    assert again.json()["errcode"] == 42014
    assert (await client.send(touser="li.qiang", message=out.body))["duplicate_task_id"] is True
    assert len((await http.get("/_fake/app/messages")).json()) == 1


async def test_the_fake_refuses_cards_wecom_would_refuse(wecom):
    _, client = wecom
    [_, out] = dispatched_messages(case(), directory=DIRECTORY, sla_policy=POLICY, duty=DUTY)
    card = out.body["template_card"]
    for broken, errcode in [
        ({**card, "task_id": "case 1"}, 42014),  # a space is not allowed
        ({**card, "task_id": "x" * 129}, 42014),
        ({**card, "button_list": []}, 40058),
        ({**card, "button_list": [{"text": "接单", "key": "a"}, {"text": "退回", "key": "a"}]}, 40058),
        ({**card, "card_type": "text_notice"}, 40058),
    ]:
        with pytest.raises(WeComError) as refused:
            await client.send(touser="li.qiang", message={"msgtype": "template_card", "template_card": broken})
        assert refused.value.errcode == errcode


def test_the_comparison_goes_to_the_group_as_a_line_and_the_picture_and_to_the_account_as_a_link():
    url = "https://minio.example/comparisons/c.jpg?X-Amz-Expires=604800"
    line, picture = comparison_messages(case_no="20261202-000042", reporter=GROUP_REPORTER, url=url)
    assert (line.target, picture.target) == ("grp-330727001001001-00",) * 2
    assert "20261202-000042" in line.body["text"]["content"] and line.body["text"]["mentioned_list"] == [
        "wo-resident-1"
    ]
    assert picture.body == {"msgtype": "image", "image": {"url": url}} and picture.part == "image"
    [oa] = comparison_messages(case_no="20261202-000042", reporter=ReporterContact(openid="o-1"), url=url)
    assert oa.channel == "wechat_template" and oa.body["url"] == url
    assert oa.body["data"]["keyword1"]["value"] == "20261202-000042"
    assert comparison_messages(case_no="1", reporter=ReporterContact(phone="x", phone_verified=True), url=url) == []


async def test_the_robot_sends_the_picture_fetched_from_its_link():
    jpeg = b"\xff\xd8\xff\xe0" + b"comparison" * 10
    fake = load_fake_wecom().create_app(clock=FakeClock())

    async def pictures(request: httpx.Request) -> httpx.Response:
        if request.url.host == "minio":
            return httpx.Response(200, content=jpeg) if request.url.path == "/ok.jpg" else httpx.Response(403)
        return await httpx.ASGITransport(app=fake).handle_async_request(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(pictures), base_url="http://wecom") as http:
        robot = WeComRobotClient("http://wecom", http)
        await robot.send(key="grp-1", message=robot_image_link("http://minio/ok.jpg"))
        [sent] = (await http.get("/_fake/messages", params={"key": "grp-1"})).json()
        assert base64.b64decode(sent["body"]["image"]["base64"]) == jpeg
        assert sent["body"]["image"]["md5"] == hashlib.md5(jpeg).hexdigest()
        with pytest.raises(DeliveryError) as expired:
            await robot.send(key="grp-1", message=robot_image_link("http://minio/expired.jpg"))
        assert expired.value.code == "image_http_403" and not expired.value.retryable
