"""Notify's pure rules for staff acting from WeCom: what a click or a bot message asks, the bot's
encrypted photos, and how dispatch's answer is shown (card button, group reply)."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from services.notify import crypto
from services.notify.crypto import decrypt_aibot_file
from services.notify.staff_commands import (
    bot_command,
    card_click,
    parse_bot_command,
    staff_answer_messages,
    strip_mention,
)
from shared.events import StaffCommandAnswered
from tests.support import load_fake_wecom

fake_wecom = load_fake_wecom()
NOW = datetime(2026, 12, 2, 2, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@网格通 接单 20261202-000042", ("acknowledge", "20261202-000042", None)),
        (
            "@网格通 @张三  进展 20261202-000042 已到现场\n正在清运",
            ("progress", "20261202-000042", "已到现场\n正在清运"),
        ),
        ("办结 20261202-000042 垃圾已清运", ("resolve", "20261202-000042", "垃圾已清运")),
        ("@网格通 查：20261202-000042", ("query", "20261202-000042", None)),
        ("@网格通 幸福路路灯坏了", None),
        ("@网格通 接单", None),
        ("@网格通 请接单 20261202-000042", None),
    ],
)
def test_bot_commands_are_parsed_and_anything_else_stays_a_report(text, expected):
    assert parse_bot_command(text) == expected


def test_mentions_are_stripped():
    assert strip_mention("@网格通 @李四 hello") == "hello"
    assert strip_mention("  no mention ") == "no mention"


def click(**fields):
    base = {
        "ToUserName": "ww",
        "FromUserName": "WangFang",
        "CreateTime": "1764640980",
        "MsgType": "event",
        "Event": "template_card_event",
        "EventKey": "accept:20261202-000042",
        "TaskId": "case-20261202-000042-0",
        "ResponseCode": "rc-1",
    }
    return base | fields


def test_a_card_click_is_the_acknowledgement_or_return_of_its_case_as_its_clicker():
    staff = card_click(click())
    assert staff["command"]["action"] == "acknowledge" and staff["command"]["case_no"] == "20261202-000042"
    assert staff["command"]["wecom_user_id"] == "WangFang" and staff["response_code"] == "rc-1"
    returned = card_click(click(EventKey="return:20261202-000042"))
    assert returned["command"]["action"] == "return" and returned["command"]["text"] == "经办人在企业微信退回"
    # The same click delivered twice (another ResponseCode even) is one command; another person's is another.
    assert card_click(click(ResponseCode="rc-2"))["command"]["command_id"] == staff["command"]["command_id"]
    assert card_click(click(FromUserName="LiQiang"))["command"]["command_id"] != staff["command"]["command_id"]


@pytest.mark.parametrize(
    "fields",
    [
        {"Event": "template_card_menu_event"},
        {"MsgType": "text"},
        {"EventKey": "vote:1"},
        {"FromUserName": ""},
        {"CreateTime": "soon"},
    ],
)
def test_other_events_and_foreign_keys_are_no_command(fields):
    assert card_click(click(**fields)) is None


def test_the_fakes_click_xml_parses_into_the_same_command():
    xml = fake_wecom.template_card_event_xml(
        from_user="WangFang", event_key="accept:20261202-000042", task_id="case-20261202-000042-0", response_code="rc"
    )
    assert card_click(crypto.parse_xml(xml))["command"]["action"] == "acknowledge"


def test_a_mixed_bot_message_brings_its_photo_and_a_report_is_no_command():
    message = {
        "msgid": "m1",
        "chatid": "wrk-1",
        "chattype": "group",
        "from": {"userid": "WangFang"},
        "response_url": "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=x",
        "msgtype": "mixed",
        "mixed": {
            "msg_item": [
                {"msgtype": "text", "text": {"content": "@网格通 办结 20261202-000042 已清运"}},
                {"msgtype": "image", "image": {"url": "https://wework.example/file/1"}},
            ]
        },
    }
    staff = bot_command(message, received_at=NOW)
    assert staff["command"]["action"] == "resolve" and staff["command"]["text"] == "已清运"
    assert staff["photo_urls"] == ["https://wework.example/file/1"] and staff["command"]["group_id"] == "wrk-1"
    assert staff["response_url"].endswith("response_code=x")
    assert bot_command(message, received_at=NOW)["command"]["command_id"] == staff["command"]["command_id"]
    report = message | {"msgtype": "text", "text": {"content": "@网格通 垃圾没人清运"}}
    assert bot_command(report, received_at=NOW) is None
    assert bot_command(message | {"from": {}}, received_at=NOW) is None


def test_bot_files_are_decrypted_with_the_callback_key():
    key = crypto.aes_key(fake_wecom.WECOM_AES_KEY)
    data = b"\xff\xd8\xff" + bytes(range(256)) * 7
    assert decrypt_aibot_file(fake_wecom.encrypt_file(data), key=key) == data
    with pytest.raises(ValueError):
        decrypt_aibot_file(b"not whole blocks", key=key)
    other = crypto.aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
    with pytest.raises(ValueError):
        decrypt_aibot_file(fake_wecom.encrypt_file(data), key=other)


def answer(source: str, outcome: str = "done", **kw) -> StaffCommandAnswered:
    return StaffCommandAnswered(
        command_id=uuid4(),
        source=source,
        case_no="20261202-000042",
        action="acknowledge",
        outcome=outcome,
        text=kw.pop("text", "案件 20261202-000042 已接单（王芳，10:03）。"),
        answered_at=NOW,
        **kw,
    )


def test_answers_grey_the_card_or_reply_in_the_group():
    card = {"wecom_user_id": "WangFang", "response_code": "rc-1", "response_url": None}
    [update] = staff_answer_messages(answer("card", button_text="已接单 · 王芳 10:03"), command=card)
    assert update.channel == "wecom_card_update" and update.target == "WangFang"
    assert update.body == {"response_code": "rc-1", "button": {"replace_name": "已接单 · 王芳 10:03"}}
    refused = staff_answer_messages(answer("card", "refused", text="该案件不属于您所在的部门"), command=card)
    assert [m.channel for m in refused] == ["wecom_card_update", "wecom_app"]
    assert refused[0].body["button"]["replace_name"] == "未能处理" and "不属于" in str(refused[1].body)
    bot = {"wecom_user_id": "WangFang", "response_code": None, "response_url": "https://x/response?response_code=y"}
    [reply] = staff_answer_messages(answer("bot"), command=bot)
    assert reply.channel == "aibot_reply" and reply.target == bot["response_url"]
    assert reply.body == {
        "msgtype": "markdown",
        "markdown": {"content": "案件 20261202-000042 已接单（王芳，10:03）。"},
    }
