"""派单 digests (派单汇总): when a group robot's minute is spent, queued 派单 for the group merge
into one message, spread over reserved slots so none waits for a whole minute."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.notify.app import load_directory, load_groups
from services.notify.domain import Group
from services.notify.messages import TEXT_MAX_BYTES
from services.notify.robot_budget import DIGEST_HEADER, RobotWindow, chunk_lines, digest_message, plan_robot_sends
from services.notify.settings import NotifySettings
from services.notify.staff_messages import dispatched_messages, place_names
from shared.events import CaseDispatched
from shared.sla_policy import load_sla_policy

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
SETTINGS = NotifySettings()
WAIT = timedelta(seconds=5)


def lines(n: int, robot: str = "r1", *, length: int = 1) -> tuple[list, dict]:
    ids = [uuid4() for _ in range(n)]
    line = "｜井盖缺失｜莲源社区第1网格｜10:10前接单" * length
    return [(i, robot) for i in ids], {i: f"2026112{k:04d}{line}" for k, i in enumerate(ids)}


def plan(candidates, digest_lines, windows=None, *, now=NOW, queued_at=None, reserve=15):
    return plan_robot_sends(
        candidates,
        windows or {},
        now=now,
        per_minute=20,
        window_s=61,
        digest_lines=digest_lines,
        queued_at=queued_at or dict.fromkeys(digest_lines, now),
        digest_reserve=reserve,
        digest_max_wait_s=5,
        digest_max_bytes=TEXT_MAX_BYTES,
    )


def sent_in_last(seconds: int, count: int) -> RobotWindow:
    return RobotWindow(tuple(NOW - timedelta(seconds=seconds * (k + 1) / count) for k in range(count)))


def test_a_quiet_group_gets_each_dispatch_as_its_own_message():
    candidates, digest_lines = lines(5)
    result = plan(candidates, digest_lines)
    assert result.picked == [n for n, _ in candidates] and result.digests == [] and result.deferred == {}


def test_past_the_reserve_dispatches_wait_briefly_for_a_digest_of_the_whole_queue():
    candidates, digest_lines = lines(6)  # six do not fit in the five slots beyond the reserve
    first = plan(candidates, digest_lines)
    assert first.picked == [] and set(first.deferred.values()) == {NOW + WAIT}
    later = NOW + WAIT
    second = plan(candidates, digest_lines, now=later, queued_at=dict.fromkeys(digest_lines, NOW))
    assert second.picked == [] and second.deferred == {}
    assert second.digests == [("r1", [n for n, _ in candidates])]
    assert second.windows["r1"] == (later,)


def test_a_full_digest_goes_at_once_and_the_partial_rest_waits_for_its_oldest():
    candidates, digest_lines = lines(30)
    queued = {n: NOW - timedelta(seconds=1) for n, _ in candidates}
    result = plan(candidates, digest_lines, {"r1": sent_in_last(30, 10)}, queued_at=queued)
    [(robot, full)] = result.digests
    assert robot == "r1" and full == [n for n, _ in candidates[: len(full)]] and 20 < len(full) < 30
    assert set(result.deferred) == {n for n, _ in candidates[len(full) :]}
    assert set(result.deferred.values()) == {NOW - timedelta(seconds=1) + WAIT}


def test_other_messages_are_never_merged_and_keep_their_turn():
    candidates, digest_lines = lines(8)
    warning = (uuid4(), "r1")
    result = plan([warning, *candidates], digest_lines, {"r1": sent_in_last(30, 10)})
    assert result.picked == [warning[0]]  # 催办 is sent now, on a reserved slot
    assert set(result.deferred.values()) == {NOW + WAIT}


def test_a_spent_robot_waits_for_its_first_free_slot_and_a_digest_of_one_is_the_message_itself():
    candidates, digest_lines = lines(2)
    old = dict.fromkeys(digest_lines, NOW - timedelta(seconds=30))
    held = plan(candidates, digest_lines, {"r1": sent_in_last(20, 20)}, queued_at=old)
    assert held.picked == [] and set(held.deferred.values()) == {NOW - timedelta(seconds=20) + timedelta(seconds=61)}
    one, one_line = lines(1)
    waited = plan(one, one_line, {"r1": sent_in_last(30, 19)}, queued_at=dict.fromkeys(one_line, NOW - WAIT))
    assert waited.picked == [one[0][0]] and waited.digests == []


def test_a_long_queue_is_split_over_the_free_slots():
    candidates, digest_lines = lines(100, length=5)  # ~300 bytes a line: six to a message
    old = dict.fromkeys(digest_lines, NOW - timedelta(seconds=10))
    result = plan(candidates, digest_lines, {"r1": sent_in_last(40, 17)}, queued_at=old)  # 3 free
    assert len(result.digests) == 3 and all(len(ids) == 6 for _, ids in result.digests)
    assert len(result.deferred) == 82 and set(result.deferred.values()) == {
        NOW - timedelta(seconds=40) + timedelta(seconds=61)
    }


def test_without_digest_lines_the_plain_limit_applies():
    candidates, _ = lines(25)
    result = plan(candidates, {})
    assert len(result.picked) == 20 and result.digests == [] and len(result.deferred) == 5


@pytest.mark.parametrize("per_second", [1, 5, 7])
def test_a_burst_never_waits_a_minute_nor_breaks_the_limit(per_second):
    """The planner driven as the delivery loop drives it (every 100 ms, taking the group's whole
    queue along), with a minute of 派单 at `per_second` to one group."""
    arrivals: dict = {}  # notification → arrival
    due: dict = {}  # notification → when it may be claimed
    digest_lines: dict = {}
    sent_at: tuple = ()
    sends: list[datetime] = []
    waits: list[float] = []
    every = 10 / per_second  # ticks between arrivals
    for tick in range(0, 120 * 10):
        now = NOW + timedelta(milliseconds=100 * tick)
        if tick < 600 and int(tick / every) != int((tick - 1) / every):
            n = uuid4()
            arrivals[n], due[n] = now, now
            digest_lines[n] = f"20261124-{tick:06d}｜暴露垃圾｜莲源社区第1网格｜2个工作小时内接单"
        if not any(at <= now for at in due.values()):
            continue
        queue = sorted(due, key=lambda n: due[n])
        queued = {n: arrivals[n] for n in queue}
        result = plan([(n, "r1") for n in queue], digest_lines, {"r1": RobotWindow(sent_at)}, now=now, queued_at=queued)
        sent_at = result.windows["r1"]
        delivered = result.picked + [n for _, ids in result.digests for n in ids]
        sends += [now] * (len(result.picked) + len(result.digests))
        for n in delivered:
            waits.append((now - arrivals.pop(n)).total_seconds())
            del due[n]
        due.update(result.deferred)
    assert not arrivals, "every 派单 went out"
    assert max(waits) < 30, max(waits)
    for i, at in enumerate(sends):  # WeCom's own count: never more than 20 within any 60 s
        assert sum(1 for t in sends[i:] if t - at < timedelta(seconds=60)) <= 20


def test_a_digest_lists_each_case_and_mentions_the_group_once():
    body = digest_message(
        ["A｜井盖缺失｜莲源社区第1网格｜10:10前接单", "B｜暴露垃圾｜东关街｜2个工作小时内接单"],
        mentioned_mobiles=["139"],
    )
    content = body["text"]["content"]
    assert content.startswith(DIGEST_HEADER.format(n=2))
    assert "1. A｜井盖缺失｜莲源社区第1网格｜10:10前接单\n2. B｜暴露垃圾" in content
    assert body["text"]["mentioned_mobile_list"] == ["139"]
    many = [(uuid4(), "X" * 90) for _ in range(60)]
    chunks = chunk_lines(many, max_bytes=TEXT_MAX_BYTES)
    assert [n for chunk in chunks for n in chunk] == [n for n, _ in many] and len(chunks) == 3
    texts = {n: line for n, line in many}
    assert all(
        len(digest_message([texts[n] for n in chunk], mentioned_mobiles=[])["text"]["content"].encode())
        <= TEXT_MAX_BYTES
        for chunk in chunks
    )


def test_each_dispatch_carries_its_digest_line_with_number_category_place_and_deadline():
    directory = load_directory(SETTINGS.directory_path)
    policy = load_sla_policy(SETTINGS.sla_policy_path)
    places = place_names(load_groups(SETTINGS.notify_groups_path))
    assert places["330727001001001"] == "城关街道莲源社区第1网格"
    urgent = CaseDispatched(
        case_id=uuid4(),
        report_id=uuid4(),
        category="manhole",
        category_name="井盖缺失",
        priority="urgent",
        department_code="zhujian",
        department_name="住房和城乡建设局",
        co_department_codes=["chengguan"],
        description="幸福路井盖翻起来了，很危险",
        responsibility_list_version="v",
        rule="r",
        dispatched_at=NOW,
        grid_code="330727001001001",
        case_no="20261124-000123",
    )
    lead, co = dispatched_messages(urgent, directory=directory, sla_policy=policy, places=places)
    assert lead.digest_line == "20261124-000123｜井盖缺失｜城关街道莲源社区第1网格｜10:10前接单"
    assert co.digest_line == "【协办】" + lead.digest_line
    normal = urgent.model_copy(update={"priority": "normal", "grid_code": None, "co_department_codes": []})
    [message] = dispatched_messages(normal, directory=directory, sla_policy=policy)
    assert (
        message.digest_line == "20261124-000123｜井盖缺失｜幸福路井盖翻起来了，很危｜2个工作小时内接单"
    )  # its first 12 characters
    assert place_names([Group("g", "某村第2网格1号楼栋群", "1", "k"), Group("h", "某村第2网格群", "1", "j")]) == {
        "1": "某村第2网格"
    }
