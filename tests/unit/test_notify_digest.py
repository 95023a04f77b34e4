"""派单 digests (派单汇总): when a group robot's minute is spent, queued 派单 for the group merge
into one message, spread over reserved slots so none waits for a whole minute."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from services.notify.app import load_directory, load_groups
from services.notify.domain import (
    DIGEST_HEADER,
    Group,
    RobotWindow,
    chunk_lines,
    digest_message,
    dispatched_messages,
    place_names,
    plan_robot_sends,
)
from services.notify.messages import TEXT_MAX_BYTES
from services.notify.settings import NotifySettings
from shared.events import CaseDispatched
from shared.sla_policy import load_sla_policy

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
SETTINGS = NotifySettings()
WINDOW = 61.0
PACE = timedelta(seconds=WINDOW / 11)  # a reserve of 10 slots: one digest every 61/11 s at most


def lines(n: int, robot: str = "r1") -> tuple[list, dict]:
    ids = [uuid4() for _ in range(n)]
    return [(i, robot) for i in ids], {
        i: f"2026112{k:04d}｜井盖缺失｜莲源社区第1网格｜10:10前接单" for k, i in enumerate(ids)
    }


def plan(candidates, digest_lines, windows=None, *, now=NOW, reserve=10):
    return plan_robot_sends(
        candidates,
        windows or {},
        now=now,
        per_minute=20,
        window_s=WINDOW,
        digest_lines=digest_lines,
        digest_reserve=reserve,
        digest_max_bytes=TEXT_MAX_BYTES,
    )


def test_a_quiet_group_gets_each_dispatch_as_its_own_message_and_the_rest_waits_for_a_digest():
    candidates, digest_lines = lines(25)
    first = plan(candidates, digest_lines)
    assert first.picked == [n for n, _ in candidates[:10]] and first.digests == []
    assert set(first.deferred) == {n for n, _ in candidates[10:]}
    assert set(first.deferred.values()) == {NOW + PACE}  # not the minute the plain limit would make it wait

    later = NOW + PACE
    window = {"r1": RobotWindow(first.windows["r1"])}
    second = plan(candidates[10:], digest_lines, window, now=later)
    assert second.picked == [] and second.deferred == {}
    assert second.digests == [("r1", [n for n, _ in candidates[10:]])]
    assert second.windows["r1"] == (*first.windows["r1"], later)


def test_other_messages_keep_their_turn_and_may_use_the_reserve():
    candidates, digest_lines = lines(3)
    warning = (uuid4(), "r1")
    full = {"r1": RobotWindow(tuple(NOW - timedelta(seconds=s) for s in range(1, 11)))}  # 10 free: the reserve
    result = plan([warning, *candidates], digest_lines, full)
    assert result.picked == [warning[0]]  # 催办 is not merged and is sent now
    assert set(result.deferred.values()) == {NOW + PACE}  # 派单 wait for the next digest, a pace after it


def test_a_spent_robot_waits_for_its_first_free_slot_and_a_digest_of_one_is_the_message_itself():
    sent = tuple(NOW - timedelta(seconds=s) for s in range(1, 21))  # 20 sends in the last 20 s
    candidates, digest_lines = lines(2)
    held = plan(candidates, digest_lines, {"r1": RobotWindow(sent)})
    assert held.picked == [] and set(held.deferred.values()) == {NOW - timedelta(seconds=20) + timedelta(seconds=61)}
    one, one_line = lines(1)
    quiet_since = {"r1": RobotWindow(tuple(NOW - timedelta(seconds=s) for s in range(10, 20)))}
    alone = plan(one, one_line, quiet_since, reserve=15)
    assert alone.picked == [one[0][0]] and alone.digests == []


def test_a_long_queue_splits_into_as_many_digests_as_fit_the_free_slots():
    candidates, _ = lines(100)
    long_lines = {n: "很长的地点描述" * 20 for n, _ in candidates}  # ~420 bytes: four to a message
    window = {"r1": RobotWindow(tuple(NOW - timedelta(seconds=s) for s in range(30, 47)))}  # 3 free
    result = plan(candidates, long_lines, window)
    assert len(result.digests) == 3 and all(len(ids) == 4 for _, ids in result.digests)
    assert len(result.deferred) == 88 and set(result.deferred.values()) == {NOW + PACE}


def test_without_digest_lines_the_plain_limit_applies():
    candidates, _ = lines(25)
    result = plan(candidates, {})
    assert len(result.picked) == 20 and result.digests == [] and len(result.deferred) == 5


def test_a_burst_of_four_a_second_never_waits_a_minute_nor_breaks_the_limit():
    """The planner driven as the delivery loop drives it: 4 派单 a second for two minutes to one group."""
    arrivals: dict = {}  # notification → arrival
    due: dict = {}  # notification → when it may be claimed
    digest_lines: dict = {}
    sent_at: tuple = ()
    sends: list[datetime] = []
    waits: list[float] = []
    for tick in range(0, 150 * 10):  # every 100 ms, the loop's poll interval
        now = NOW + timedelta(milliseconds=100 * tick)
        if tick < 1200 and tick % 10 in (0, 2, 5, 7):
            n = uuid4()
            arrivals[n], due[n], digest_lines[n] = (
                now,
                now,
                f"2026{tick:06d}｜暴露垃圾｜莲源社区第1网格｜2个工作小时内接单",
            )
        claimable = sorted((n for n, at in due.items() if at <= now), key=lambda n: due[n])
        if not claimable:
            continue
        result = plan([(n, "r1") for n in claimable], digest_lines, {"r1": RobotWindow(sent_at)}, now=now)
        sent_at = result.windows["r1"]
        delivered = result.picked + [n for _, ids in result.digests for n in ids]
        sends += [now] * (len(result.picked) + len(result.digests))
        for n in delivered:
            waits.append((now - arrivals.pop(n)).total_seconds())
            del due[n]
        due.update(result.deferred)
    assert not arrivals, "every 派单 went out"
    assert max(waits) < 15, max(waits)
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
