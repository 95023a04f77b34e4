from datetime import datetime, timezone
from uuid import uuid4

from services.notify.domain import DepartmentContact, backoff_seconds, dispatched_message, load_directory
from services.notify.wecom import TEXT_MAX_BYTES, WeComError, text_message
from shared.events import CaseDispatched
from shared.settings import Settings
from shared.taxonomy import load_taxonomy


def test_dispatched_message_mentions_the_department_people_in_chinese():
    case = CaseDispatched(
        case_id=uuid4(), report_id=uuid4(), category="manhole", category_name="井盖缺失/破损/塌陷",
        priority="urgent", department_code="zhujian", department_name="住房和城乡建设局",
        description="幸福路井盖翻起来了", responsibility_list_version="v1", rule="r",
        dispatched_at=datetime(2026, 11, 24, 1, 5, tzinfo=timezone.utc),
    )
    message = dispatched_message(case, contact=DepartmentContact("k", ("13900000001",)), ack_minutes=10)
    assert message["msgtype"] == "text"
    content = message["text"]["content"]
    assert "【派单】紧急" in content and "住房和城乡建设局" in content and "10分钟内接单" in content
    assert "11-24 09:05" in content  # shown in China time
    assert message["text"]["mentioned_mobile_list"] == ["13900000001"]


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
    settings = Settings()
    assert set(load_directory(settings.directory_path)) == set(load_taxonomy(settings.responsibility_list_path).departments)
