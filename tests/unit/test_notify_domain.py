"""Notify's pure rules: templates for every event, robot budgets, broadcast targets, inbound messages."""

import ast
import csv
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.dispatch.settings import DispatchSettings
from services.notify.app import load_directory, load_groups
from services.notify.broadcasts import authorize_broadcast, select_groups
from services.notify.domain import (
    DepartmentContact,
    Directory,
    Forbidden,
    Group,
    ReporterContact,
    ReporterTemplates,
    authorize_delivery_reading,
    backoff_seconds,
    notification_id,
    recipient,
    robot_names,
)
from services.notify.inbound import aibot_message, inbound_message, is_fresh
from services.notify.messages import TEXT_MAX_BYTES, text_message
from services.notify.reporter_messages import acknowledged_messages, verification_messages
from services.notify.robot_budget import RobotWindow, plan_robot_sends
from services.notify.settings import NotifySettings
from services.notify.staff_messages import (
    acknowledge_time,
    breached_messages,
    dispatched_message,
    dispatched_messages,
    resolved_messages,
    warning_messages,
)
from services.notify.wecom import WeComError
from shared.auth import Actor
from shared.events import CaseDispatched, CaseTransitioned, SlaBreached, SlaWarning
from shared.settings import PROJECT_ROOT
from shared.sla_policy import load_sla_policy
from shared.taxonomy import load_taxonomy


def test_dispatched_message_mentions_the_department_people_in_chinese():
    case = CaseDispatched(
        case_id=uuid4(),
        report_id=uuid4(),
        category="manhole",
        category_name="井盖缺失/破损/塌陷",
        priority="urgent",
        department_code="zhujian",
        department_name="住房和城乡建设局",
        description="幸福路井盖翻起来了",
        responsibility_list_version="v1",
        rule="r",
        dispatched_at=datetime(2026, 11, 24, 1, 5, tzinfo=UTC),
    )
    message = dispatched_message(case, contact=DepartmentContact("k", ("13900000001",)), ack_time="10分钟")
    assert message["msgtype"] == "text"
    content = message["text"]["content"]
    assert "【派单】紧急" in content and "住房和城乡建设局" in content and "10分钟内接单" in content
    assert "11-24 09:05" in content  # shown in China time
    assert message["text"]["mentioned_mobile_list"] == ["13900000001"]
    assert f"案件 {str(case.case_id)[:8]}" in content  # a case from before case numbers
    numbered = case.model_copy(update={"case_no": "20261124-000007"})
    content = dispatched_message(numbered, contact=DepartmentContact("k", ()), ack_time="10分钟")["text"]["content"]
    assert "案件 20261124-000007" in content and str(case.case_id)[:8] not in content  # the number 我要查询 takes


def test_text_is_cut_to_the_robot_byte_limit_on_a_character_boundary():
    content = text_message("井" * 2000)["text"]["content"]
    assert len(content.encode()) <= TEXT_MAX_BYTES
    assert content.endswith("…")


def test_backoff_grows_and_is_capped():
    assert [backoff_seconds(n, 1.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert backoff_seconds(30, 1.0) == 600.0


def test_rate_limit_is_retryable_but_invalid_key_is_not():
    assert WeComError(45009, "api freq out of limit").retryable
    assert not WeComError(93000, "invalid webhook url").retryable


def test_every_department_has_a_robot_in_the_directory():
    # Notify's directory against the responsibility list dispatch routes cases by.
    departments = load_taxonomy(DispatchSettings().responsibility_list_path).departments
    assert set(load_directory(NotifySettings().directory_path).departments) == set(departments)


# --- templates for every event --------------------------------------------------------------

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
DIRECTORY = Directory(
    departments={
        "zhujian": DepartmentContact("robot-zj", ("13900000301",)),
        "grid_center": DepartmentContact("robot-gc", ("13900000001",)),
    },
    supervisor=DepartmentContact("robot-sup", ("13900009901",)),
    command_center="grid_center",
)


def transition(event_action: str, **detail) -> CaseTransitioned:
    return CaseTransitioned(
        case_id=uuid4(),
        report_id=uuid4(),
        category="manhole",
        category_name="井盖",
        priority="urgent",
        department_code="zhujian",
        department_name="住房和城乡建设局",
        description="井盖翻起",
        action=event_action,
        from_status="dispatched",
        actor="user:zj01",
        detail=detail,
        at=NOW,
    )


def test_transfer_and_co_handling_are_labelled():
    case = CaseDispatched(
        case_id=uuid4(),
        report_id=uuid4(),
        category="manhole",
        category_name="井盖",
        priority="normal",
        department_code="zhujian",
        department_name="住房和城乡建设局",
        description="井盖",
        responsibility_list_version="v1",
        rule="r",
        dispatched_at=NOW,
        action="transfer",
        reason="非本单位职责",
    )
    transfer = dispatched_message(case, contact=DepartmentContact("k", ()), ack_time="2个工作小时")["text"]["content"]
    assert transfer.startswith("【转派】一般") and "原因：非本单位职责" in transfer
    co = dispatched_message(case, contact=DepartmentContact("k", ("139",)), ack_time="2个工作小时", co_handling=True)
    assert co["text"]["content"].startswith("【协办】") and "请配合主办单位处置" in co["text"]["content"]


def test_dispatch_tells_the_department_its_acknowledgement_time_and_co_handlers_once():
    directory = Directory(
        departments={
            "zhujian": DepartmentContact("robot-zj", ("139",)),
            "eco_env": DepartmentContact("robot-eco", ()),
            "shared_desk": DepartmentContact("robot-zj", ()),
        }
    )
    case = CaseDispatched(
        case_id=uuid4(),
        report_id=uuid4(),
        category="manhole",
        category_name="井盖",
        priority="urgent",
        department_code="zhujian",
        department_name="住房和城乡建设局",
        description="井盖",
        responsibility_list_version="v1",
        rule="r",
        dispatched_at=NOW,
        co_department_codes=["eco_env", "shared_desk", "unknown"],
    )
    lead, co = dispatched_messages(
        case, directory=directory, sla_policy=load_sla_policy(NotifySettings().sla_policy_path)
    )
    assert (lead.target, co.target) == ("robot-zj", "robot-eco")  # one message per robot; unknown ones skipped
    assert "请在10分钟内接单" in lead.body["text"]["content"] and co.body["text"]["content"].startswith("【协办】")


def test_repeated_warnings_are_counted():
    payload = SlaWarning(
        case_id=uuid4(),
        stage="resolve",
        department_code="zhujian",
        started_at=NOW,
        due_at=NOW + timedelta(hours=2),
        reminder=2,
        priority="urgent",
        fired_at=NOW,
    )
    [out] = warning_messages(payload, directory=DIRECTORY, now=NOW)
    assert (
        out.body["text"]["content"].startswith("【催办】第2次 紧急 案件")
        and "环节：办结" in out.body["text"]["content"]
    )


def test_warning_reminds_the_department_with_the_time_left():
    payload = SlaBreached(
        case_id=uuid4(),
        stage="acknowledge",
        department_code="zhujian",
        started_at=NOW,
        due_at=NOW + timedelta(minutes=10),
    )
    [out] = warning_messages(payload, directory=DIRECTORY, now=NOW + timedelta(minutes=7))
    content = out.body["text"]["content"]
    assert out.target == "robot-zj" and out.template == "sla.warning"
    assert (
        content.startswith("【催接单】")
        and "环节：接单" in content
        and "还剩3分钟" in content
        and "11-24 10:10" in content
    )
    assert "请尽快接单" in content  # no roster: nobody on duty to name
    assert out.body["text"]["mentioned_mobile_list"] == ["13900000301"]


def test_breach_goes_to_the_department_and_the_supervisor():
    payload = SlaBreached(
        case_id=uuid4(),
        stage="acknowledge",
        department_code="zhujian",
        started_at=NOW,
        due_at=NOW + timedelta(minutes=10),
    )
    department, supervisor = breached_messages(payload, directory=DIRECTORY)
    assert (department.target, supervisor.target) == ("robot-zj", "robot-sup")
    assert "【督办】" in supervisor.body["text"]["content"] and "督查室" in supervisor.body["text"]["content"]
    assert supervisor.body["text"]["mentioned_mobile_list"] == ["13900009901"]
    assert "接单已超时" in department.body["text"]["content"]


def test_breach_for_an_unknown_department_is_an_error():
    payload = SlaBreached(case_id=uuid4(), stage="acknowledge", department_code="nobody", started_at=NOW, due_at=NOW)
    try:
        breached_messages(payload, directory=DIRECTORY)
    except LookupError as exc:
        assert "nobody" in str(exc)
    else:
        raise AssertionError("expected LookupError")


def test_reporter_is_reached_on_the_best_channel_or_not_at_all():
    payload = transition("acknowledge")
    templates = ReporterTemplates(wechat_template_id="T")
    [mp] = acknowledged_messages(
        payload, reporter=ReporterContact(openid="o1", phone="13800001111"), templates=templates
    )
    assert (mp.channel, mp.target, mp.body["template_id"]) == ("wechat_template", "o1", "T")
    assert (
        "已由住房和城乡建设局接单" in mp.body["data"]["first"]["value"]
        and mp.body["data"]["keyword2"]["value"] == "已接单"
    )
    [app] = acknowledged_messages(payload, reporter=ReporterContact(wecom_userid="zhangsan"), templates=templates)
    assert app.channel == "wecom_app" and app.body == {
        "msgtype": "text",
        "text": {"content": app.body["text"]["content"]},
    }
    proved = ReporterContact(phone="13800001111", phone_verified=True)
    [sms] = acknowledged_messages(payload, reporter=proved, templates=templates)
    assert sms.channel == "sms" and sms.body["params"] == {"case": str(payload.case_id)[:8], "status": "已接单"}
    assert sms.body["template"] == "SMS_CASE_UPDATE"
    assert acknowledged_messages(payload, reporter=None, templates=templates) == []


def test_case_updates_are_never_texted_to_a_phone_its_owner_has_not_proved():
    """Anyone can type a stranger's number into a report; until its owner enters a code texted to
    it (reporter.verified), no 接单/办结/回访 update goes to it. WeChat reporters are unaffected."""
    templates = ReporterTemplates()
    claimed = ReporterContact(phone="13800001111")
    for step, messages in (("acknowledge", acknowledged_messages), ("resolve", verification_messages)):
        assert messages(transition(step), reporter=claimed, templates=templates) == []
        [sms] = messages(
            transition(step), reporter=ReporterContact(phone="13800001111", phone_verified=True), templates=templates
        )
        assert sms.channel == "sms"
    [mp] = acknowledged_messages(
        transition("acknowledge"), reporter=ReporterContact(openid="o1", phone="13800001111"), templates=templates
    )
    assert mp.channel == "wechat_template"


def test_subscribe_messages_keep_each_field_within_its_limit():
    payload = transition("resolve")
    [out] = verification_messages(
        payload,
        reporter=ReporterContact(openid="o1"),
        templates=ReporterTemplates(wechat_template_id="S", wechat_kind="subscribe"),
    )
    data = out.body["data"]
    assert out.channel == "wechat_subscribe" and out.body["template_id"] == "S"
    assert data["character_string1"]["value"] == str(payload.case_id)[:8]
    assert len(data["thing3"]["value"]) == 20 and data["thing3"]["value"].endswith("…")
    assert len(data["phrase2"]["value"]) <= 5


def test_resolved_shows_the_before_after_comparison_to_the_command_centre():
    with_picture = transition(
        "resolve",
        before_media_ids=["a"],
        after_media_ids=["b", "c"],
        comparison_url="https://media.example/cmp.jpg",
        result="已更换井盖",
    )
    [news] = resolved_messages(with_picture, directory=DIRECTORY)
    article = news.body["news"]["articles"][0]
    assert news.target == "robot-gc" and article["picurl"] == "https://media.example/cmp.jpg"
    assert "【办结】" in article["title"] and "整改前1张，整改后2张" in article["description"]
    assert "已更换井盖" in article["description"]
    [text] = resolved_messages(transition("resolve"), directory=DIRECTORY)
    assert text.body["msgtype"] == "text" and "整改前0张" in text.body["text"]["content"]
    assert resolved_messages(transition("resolve"), directory=Directory(departments={})) == []
    [counted] = resolved_messages(transition("resolve"), directory=DIRECTORY, evidence={"before": 2, "after": 3})
    assert "整改前2张，整改后3张" in counted.body["text"]["content"]


def test_verification_asks_the_reporter_to_rate_the_result():
    [out] = verification_messages(
        transition("resolve", verification_url="https://h5.example/v/1"),
        reporter=ReporterContact(openid="o1"),
        templates=ReporterTemplates(),
    )
    assert out.template == "case.verification" and out.body["url"] == "https://h5.example/v/1"
    assert "回复 1 满意" in out.body["data"]["first"]["value"]


def test_notification_ids_are_stable_per_source_template_and_target():
    source = uuid4()
    one = notification_id(source_id=source, template="case.dispatched", channel="wecom_robot", target="k")
    assert one == notification_id(source_id=source, template="case.dispatched", channel="wecom_robot", target="k")
    assert one != notification_id(source_id=source, template="case.dispatched", channel="wecom_robot", target="k2")
    assert one != notification_id(source_id=uuid4(), template="case.dispatched", channel="wecom_robot", target="k")


def test_directory_names_a_supervisor_and_a_command_centre_that_exists():
    directory = load_directory(NotifySettings().directory_path)
    assert directory.supervisor is not None and directory.supervisor.robot_key
    assert directory.command_center in directory.departments


# --- each robot's budget --------------------------------------------------------------------


def test_a_robot_gets_twenty_a_minute_and_the_rest_waits_for_the_first_slot():
    candidates = [(uuid4(), "r1") for _ in range(25)] + [(uuid4(), "r2")]
    plan = plan_robot_sends(candidates, {}, now=NOW, per_minute=20, window_s=61)
    assert plan.picked == [n for n, _ in candidates[:20]] + [candidates[25][0]]
    assert set(plan.deferred) == {n for n, _ in candidates[20:25]}
    assert set(plan.deferred.values()) == {NOW + timedelta(seconds=61)}
    assert len(plan.windows["r1"]) == 20 and len(plan.windows["r2"]) == 1


def test_sends_remembered_from_before_a_restart_still_count():
    earlier = tuple(NOW - timedelta(seconds=s) for s in (50, 40, 30))
    old = (NOW - timedelta(seconds=120),)
    candidates = [(uuid4(), "r1") for _ in range(3)]
    plan = plan_robot_sends(candidates, {"r1": RobotWindow(old + earlier)}, now=NOW, per_minute=4, window_s=60)
    assert plan.picked == [candidates[0][0]]
    # the slot frees when the oldest send still in the window leaves it
    assert set(plan.deferred.values()) == {NOW - timedelta(seconds=50) + timedelta(seconds=60)}
    assert plan.windows["r1"] == (*earlier, NOW)


def test_a_throttled_robot_waits_until_wecom_releases_it():
    until = NOW + timedelta(seconds=30)
    candidates = [(uuid4(), "r1")]
    plan = plan_robot_sends(candidates, {"r1": RobotWindow((), blocked_until=until)}, now=NOW, per_minute=20)
    assert plan.picked == [] and plan.deferred == {candidates[0][0]: until}
    released = plan_robot_sends(candidates, {"r1": RobotWindow((), blocked_until=until)}, now=until, per_minute=20)
    assert released.picked == [candidates[0][0]]


# --- broadcasts -----------------------------------------------------------------------------


def test_demo_county_has_2413_groups_each_with_its_own_robot(county):
    groups = load_groups(NotifySettings().notify_groups_path)
    assert len(groups) == 2413
    assert len({g.robot_key for g in groups}) == 2413 and len({g.group_id for g in groups}) == 2413
    # The shipped list is the demo county's (tests/unit/test_demo_county.py keeps it so): every group
    # sits in one of its grids, every grid has its residents' group.
    assert {g.jurisdiction_code for g in groups} == set(county.grids)
    assert {grid.group.group_id for grid in county.grids.values()} <= {g.group_id for g in groups}


def test_broadcast_targets_all_or_a_jurisdiction_prefix(tmp_path):
    groups = [
        Group("a", "甲", "330727001001", "k1"),
        Group("b", "乙", "330727001002", "k2"),
        Group("c", "丙", "330727101001", "k3"),
    ]
    assert select_groups(groups, "all") == groups
    assert [g.group_id for g in select_groups(groups, "330727001")] == ["a", "b"]
    assert select_groups(groups, "330727999") == []
    path = tmp_path / "groups.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["group_id", "name", "jurisdiction_code", "robot_key"])
        writer.writerows([(g.group_id, g.name, g.jurisdiction_code, g.robot_key) for g in groups])
    assert load_groups(path) == groups


# --- inbound --------------------------------------------------------------------------------


def test_callback_timestamps_must_be_recent():
    assert is_fresh("1000", now=1200, max_age_s=300) and is_fresh("1500", now=1200, max_age_s=300)
    assert not is_fresh("800", now=1200, max_age_s=300)
    assert not is_fresh("soon", now=1200, max_age_s=300)


def test_inbound_text_image_and_location_become_messages():
    common = {"FromUserName": "zhangsan", "ToUserName": "ww1", "CreateTime": "1764000000", "AgentID": "1000002"}
    text = inbound_message(common | {"MsgType": "text", "Content": "路灯坏了", "MsgId": "1"}, source="wecom_app")
    assert text["content"] == "路灯坏了" and text["from_user"] == "zhangsan" and text["agent_id"] == "1000002"
    assert text["sent_at"] == datetime.fromtimestamp(1764000000, UTC)
    image = inbound_message(
        common | {"MsgType": "image", "PicUrl": "http://p/1.jpg", "MediaId": "m1", "MsgId": "2"}, source="wecom_app"
    )
    assert (image["pic_url"], image["media_id"]) == ("http://p/1.jpg", "m1")
    location = inbound_message(
        common
        | {
            "MsgType": "location",
            "Location_X": "29.05",
            "Location_Y": "120.45",
            "Scale": "15",
            "Label": "幸福路",
            "MsgId": "3",
        },
        source="wechat_mp",
    )
    assert (location["lat"], location["lng"], location["datum"], location["label"]) == (
        29.05,
        120.45,
        "gcj02",
        "幸福路",
    )
    assert text["message_id"] != image["message_id"]
    assert (
        text["message_id"]
        == inbound_message(common | {"MsgType": "text", "Content": "x", "MsgId": "1"}, source="wecom_app")["message_id"]
    )


def test_events_and_unsupported_messages_are_not_for_intake():
    assert inbound_message({"MsgType": "event", "Event": "subscribe", "FromUserName": "o1"}, source="wechat_mp") is None
    assert (
        inbound_message({"MsgType": "voice", "MsgId": "1", "FromUserName": "o1", "CreateTime": "1"}, source="wechat_mp")
        is None
    )
    assert (
        inbound_message(
            {"MsgType": "location", "MsgId": "1", "FromUserName": "o1", "CreateTime": "1", "Location_X": "north"},
            source="wechat_mp",
        )
        is None
    )


def test_ai_bot_group_mentions_become_group_messages():
    data = {
        "msgid": "m1",
        "aibotid": "bot1",
        "chatid": "wrkSFfCgAA",
        "chattype": "group",
        "from": {"userid": "wangwu"},
        "response_url": "https://qyapi.example/reply/x",
        "msgtype": "text",
        "text": {"content": "@网格通 幸福路路灯坏了"},
    }
    message = aibot_message(data, received_at=NOW)
    assert (message["source"], message["group_id"], message["from_user"]) == ("wecom_group", "wrkSFfCgAA", "wangwu")
    assert message["content"] == "@网格通 幸福路路灯坏了" and message["response_url"].endswith("/x")
    assert message["sent_at"] == NOW
    single = aibot_message(
        data | {"chattype": "single", "msgtype": "image", "image": {"url": "https://p/1"}}, received_at=NOW
    )
    assert single["source"] == "wecom_aibot" and single["group_id"] is None and single["pic_url"] == "https://p/1"
    assert aibot_message(data | {"msgtype": "stream"}, received_at=NOW) is None
    assert aibot_message({k: v for k, v in data.items() if k != "from"}, received_at=NOW) is None


def test_acknowledge_time_is_the_sla_policy_in_words():
    policy = load_sla_policy(NotifySettings().sla_policy_path)
    assert acknowledge_time(policy, priority="urgent", level="county", department_code="zhujian") == "10分钟"
    assert acknowledge_time(policy, priority="normal", level="county", department_code="zhujian") == "2个工作小时"
    assert acknowledge_time(policy, priority="normal", level="village", department_code="police") == "2小时"


# --- who may do what ------------------------------------------------------------------------


def actor(role: str, jurisdiction: str = "330727") -> Actor:
    return Actor(
        subject=f"{role}-1",
        role=role,
        jurisdiction_code=jurisdiction,
        department_code="zhujian" if role == "handler" else None,
    )


@pytest.mark.parametrize("role", ["supervisor", "admin"])
def test_supervisors_and_admins_broadcast_within_their_jurisdiction(role):
    authorize_broadcast(actor(role), target="all", county_code="330727")
    authorize_broadcast(actor(role, "330727203"), target="330727203200", county_code="330727")
    with pytest.raises(Forbidden, match="330727203 辖区"):
        authorize_broadcast(actor(role, "330727203"), target="all", county_code="330727")
    with pytest.raises(Forbidden, match="330727203 辖区"):
        authorize_broadcast(actor(role, "330727203"), target="330727101", county_code="330727")


@pytest.mark.parametrize("role", ["dispatcher", "handler", "grid_worker"])
def test_other_roles_may_not_broadcast(role):
    with pytest.raises(Forbidden, match="督查员或管理员"):
        authorize_broadcast(actor(role), target="330727203", county_code="330727")


def test_the_command_centre_reads_a_case_deliveries_and_others_are_told_where_to_look():
    for role in ("dispatcher", "supervisor", "admin"):
        authorize_delivery_reading(actor(role))
    for role in ("handler", "grid_worker"):
        with pytest.raises(Forbidden, match="案件详情"):
            authorize_delivery_reading(actor(role))


PURE_MODULES = [
    "domain",
    "staff_messages",
    "reporter_messages",
    "robot_budget",
    "broadcasts",
    "inbound",
    "staff_commands",
]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_the_rules_import_no_channel_client_and_read_no_file(module):
    """The rules stay pure: the message bodies come from messages.py, the files from app.py, the
    rows from store.py."""
    tree = ast.parse((PROJECT_ROOT / "services" / "notify" / f"{module}.py").read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {
        "asyncpg",
        "httpx",
        "yaml",
        "csv",
        "pathlib",
        "services.notify.wecom",
        "services.notify.wechat",
        "services.notify.sms",
        "services.notify.channels",
        "services.notify.store",
    }
    assert "open(" not in ast.unparse(tree) and "read_text" not in ast.unparse(tree)


def test_recipients_are_named_without_their_keys_or_ids():
    directory = Directory(
        departments={"zhujian": DepartmentContact("key-zhujian", ("13900000000",))},
        supervisor=DepartmentContact("key-supervisor", ()),
    )
    robots = robot_names(directory, [Group("g1", "幸福社区1网格居民群", "330727001001001", "key-group")])
    assert recipient(channel="wecom_robot", target="key-zhujian", robots=robots) == "部门群（zhujian）"
    assert recipient(channel="wecom_robot", target="key-supervisor", robots=robots) == "督查室群"
    assert recipient(channel="wecom_robot", target="key-group", robots=robots) == "幸福社区1网格居民群"
    assert recipient(channel="wecom_robot", target="key-unknown", robots=robots) == "企业微信群"
    for channel, target in [("wecom_app", "zhangsan"), ("wechat_template", "oABC"), ("sms", "ciphertext")]:
        assert target not in recipient(channel=channel, target=target, robots=robots)


# --- issue 19: fallbacks, receipts, merged reporters, one-tap confirmation, 通报 ---------------------


def test_a_reporter_message_is_taken_over_by_each_next_channel_in_turn():
    from services.notify.domain import fallback_rows

    everything = ReporterContact(openid="o1", wecom_userid="zs", phone="k1:cipher", phone_verified=True)
    [first] = acknowledged_messages(transition("acknowledge"), reporter=everything)
    assert first.channel == "wechat_template"
    assert [[m.channel for m in step] for step in first.fallback] == [["wecom_app"], ["sms"]]
    stored = [[m.step() for m in step] for step in first.fallback]
    now, rest = fallback_rows(stored)
    assert [m["channel"] for m in now] == ["wecom_app"] and [[m["channel"] for m in s] for s in rest] == [["sms"]]
    assert fallback_rows([]) == ([], [])
    # A phone only claimed is no channel: the official account has nothing to fall back to.
    [alone] = acknowledged_messages(transition("acknowledge"), reporter=ReporterContact(openid="o1", phone="k1:x"))
    assert alone.fallback == ()


def test_a_group_message_falls_back_to_its_people_by_sms_and_a_grid_notice_to_the_command_centre():
    from services.notify.domain import GridWorker
    from services.notify.staff_messages import grid_worker_messages

    payload = SlaBreached(
        case_id=uuid4(), stage="resolve", department_code="zhujian", started_at=NOW, due_at=NOW, case_no="GL-7"
    )
    department, _ = breached_messages(payload, directory=DIRECTORY)
    [[sms]] = department.fallback
    assert (sms.channel, sms.target, sms.body["params"]) == (
        "sms_staff",
        "13900000301",
        {"case": "GL-7", "notice": "督办"},
    )
    case = CaseDispatched(
        case_id=uuid4(),
        report_id=uuid4(),
        category="manhole",
        category_name="井盖",
        priority="urgent",
        department_code="zhujian",
        department_name="住建局",
        description="井盖翻了",
        grid_code="330727001001001",
        responsibility_list_version="v",
        rule="r",
        dispatched_at=NOW,
    )
    workers = {"330727001001001": GridWorker("hefei", "莲源社区第1网格")}
    [notice] = grid_worker_messages(case, workers=workers, directory=DIRECTORY)
    assert notice.channel == "wecom_app"
    [[relay], [relay_sms]] = notice.fallback
    assert (relay.channel, relay.target) == ("wecom_robot", "robot-gc") and "请转告网格员" in relay.body["text"][
        "content"
    ]
    assert (relay_sms.channel, relay_sms.target) == ("sms_staff", "13900000001")
    [plain] = grid_worker_messages(case, workers=workers)  # no command centre known: the message alone
    assert plain.fallback == ()


def test_template_receipts_are_read_from_the_official_accounts_event():
    from services.notify.inbound import template_receipt

    event = {"MsgType": "event", "Event": "TEMPLATESENDJOBFINISH", "MsgID": "200163836", "Status": "success"}
    assert template_receipt(event) == ("200163836", True)
    assert template_receipt(event | {"Status": "failed:user block"}) == ("200163836", False)
    assert template_receipt(event | {"Status": "failed: system failed"}) == ("200163836", False)
    assert template_receipt({"MsgType": "text", "MsgId": "1", "Content": "1"}) is None
    assert template_receipt(event | {"MsgID": ""}) is None


def test_the_verification_carries_the_reporters_own_confirmation_link_and_merged_reporters_are_told():
    from services.notify.domain import confirmation_url
    from services.notify.reporter_messages import merged_messages

    url = confirmation_url("https://h5.example/", report_id=NOW_REPORT, token="s3cr3t")
    assert url == f"https://h5.example/h5/confirm?r={NOW_REPORT}&t=s3cr3t"
    assert confirmation_url("https://h5.example", report_id=NOW_REPORT, token=None) is None
    reporter = ReporterContact(openid="o1", confirm_url=url)
    [out] = verification_messages(transition("resolve"), reporter=reporter)
    assert out.body["url"] == url and "一键确认" in out.body["data"]["first"]["value"]
    into = uuid4()
    [told] = merged_messages(transition("merge", into_case_id=str(into)), reporter=ReporterContact(wecom_userid="zs"))
    assert told.template == "case.merged" and f"与案件 {str(into)[:8]} 是同一问题" in told.body["text"]["content"]


NOW_REPORT = uuid4()


def test_a_notice_reaches_the_leadership_group_and_the_departments_head():
    from services.notify.domain import DepartmentHead
    from services.notify.staff_messages import notice_messages
    from shared.events import SlaNoticeIssued

    directory = Directory(
        departments=DIRECTORY.departments,
        leadership=DepartmentContact("robot-lead", ("13900009801",)),
        heads={"zhujian": DepartmentHead("zj-head", "13900000300")},
    )
    notice = SlaNoticeIssued(
        notice_id=uuid4(),
        department_code="zhujian",
        breaches=3,
        days=30,
        since=NOW - timedelta(days=30),
        issued_at=NOW,
        case_ids=[uuid4() for _ in range(3)],
        case_nos=["A-1", "A-2", "A-3"],
    )
    lead, head = notice_messages(notice, directory=directory)
    assert (lead.channel, lead.target, lead.template) == ("wecom_robot", "robot-lead", "sla.notice_issued")
    assert "【通报】部门（zhujian）近30天内3次办理超时" in lead.body["text"]["content"]
    assert "A-1、A-2、A-3" in lead.body["text"]["content"]
    assert [[m.target for m in step] for step in lead.fallback] == [["13900009801"]]
    assert (head.channel, head.target) == ("wecom_app", "zj-head")
    assert [[m.target for m in step] for step in head.fallback] == [["robot-zj"], ["13900000300"]]
    # Without a head on file, the department's group hears it; without a leadership group, nobody there.
    [group] = notice_messages(notice, directory=Directory(departments=DIRECTORY.departments))
    assert group.target == "robot-zj" and [[m.target for m in s] for s in group.fallback] == [["13900000301"]]


def test_a_cancelled_case_tells_its_reporter_why_and_that_they_may_report_again():
    from services.notify.reporter_messages import cancelled_messages

    checked = transition("check", finding="unfounded").model_copy(
        update={"status": "cancelled", "reason": "现场井盖完好，已拍照留存。", "case_no": "20261202-000042"}
    )
    [told] = cancelled_messages(checked, reporter=ReporterContact(wecom_userid="zs"), found_on_site=True)
    text = told.body["text"]["content"]
    assert told.template == "case.cancelled"
    assert text.startswith(
        "您反映的问题（案件 20261202-000042）经网格员现场核实，情况不属实：现场井盖完好，已拍照留存。"
    )
    assert "请重新反映" in text and "。。" not in text
    refused = transition("cancel").model_copy(update={"status": "cancelled", "reason": None})
    [told] = cancelled_messages(refused, reporter=ReporterContact(openid="o1"), found_on_site=False)
    assert "经指挥中心审核，不予办理。案件已撤销" in told.body["data"]["first"]["value"]
    assert cancelled_messages(refused, reporter=None, found_on_site=False) == []
