"""The scorecards' pure rules: rounds from a case's events, who a breach belongs to, fair rates on
small samples, periods without cases, and the exports' rendering of them."""

import csv
import gzip
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY

from services.sla.analytics.exports import Names, load_names, scorecards_csv
from services.sla.analytics.scorecards import (
    NO_DATA,
    Breach,
    Rate,
    apply_step,
    complete_grid,
    empty_counts,
    mark_breaches,
    mark_recurrences,
    minutes_or_no_data,
    open_rounds,
    percent_or_no_data,
    period_starts,
    place_of,
    rank,
    scorecard,
    wilson_lower_bound,
)
from services.sla.settings import SlaSettings
from shared.settings import PROJECT_ROOT

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def m(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def case(department="zhujian", co=(), **facts):
    return (
        dict(
            case_id=facts.pop("case_id", None) or uuid4(),
            department_code=department,
            co_department_codes=list(co),
            category="manhole",
            priority="urgent",
            case_no="20261124-000001",
            jurisdiction_code="330727001002",
            grid_code="330727001002001",
        )
        | facts
    )


def test_a_dispatch_opens_a_round_per_department_and_a_replay_changes_nothing():
    facts = case(co=["eco_env", "zhujian"])
    rounds = open_rounds([], case=facts, started_at=m(0), action="dispatch")
    assert [(r.department_code, r.lead, r.joint, r.round_no) for r in rounds] == [
        ("zhujian", True, True, 1),
        ("eco_env", False, False, 1),
    ]
    assert (rounds[0].town_code, rounds[0].village_code) == ("330727001", "330727001002")
    assert open_rounds(rounds, case=facts, started_at=m(0), action="dispatch") == rounds


def test_a_transfer_ends_the_round_and_a_breach_before_it_stays_with_the_first_department():
    facts = case()
    rounds = open_rounds([], case=facts, started_at=m(0), action="dispatch")
    late = Breach(case_id=facts["case_id"], department_code="zhujian", started_at=m(0), stage="acknowledge")
    rounds = mark_breaches(rounds, [late])
    rounds = open_rounds(rounds, case=facts | {"department_code": "chengguan"}, started_at=m(15), action="transfer")
    first, second = rounds
    assert (first.department_code, first.ack_late, first.ended_at, first.end_reason) == (
        "zhujian",
        True,
        m(15),
        "transfer",
    )
    assert (second.department_code, second.ack_late, second.round_no, second.ended_at) == ("chengguan", False, 2, None)


def test_a_breach_arriving_before_its_dispatch_marks_the_round_when_it_opens():
    facts = case()
    early = Breach(case_id=facts["case_id"], department_code="zhujian", started_at=m(0), stage="resolve")
    [r] = open_rounds([], case=facts, started_at=m(0), action="dispatch", breaches=[early])
    assert (r.resolve_late, r.ack_late, r.plan_late) == (True, False, False)
    other = Breach(case_id=facts["case_id"], department_code="zhujian", started_at=m(0), stage="unknown-stage")
    assert mark_breaches([r], [other]) == [r]


def test_steps_acknowledge_plan_pause_extend_resolve_and_rate():
    facts = case(co=["eco_env"])
    rounds = open_rounds([], case=facts, started_at=m(0), action="dispatch")
    for event_type, at, detail in [
        ("case.acknowledged", m(4), {"department_code": "eco_env"}),
        ("case.acknowledged", m(5), {}),  # without a department: the lead's
        ("case.acknowledged", m(6), {}),  # again: the first acknowledgement counts
        ("case.plan_submitted", m(20), {}),
        ("case.plan_submitted", m(25), {}),
        ("case.extension_requested", m(30), {"minutes": 30}),
        ("case.extension_requested", m(31), {"minutes": 30}),  # already paused
        ("case.extension_approved", m(40), {"minutes": 30}),
        ("case.awaiting_reporter", m(50), {}),
        ("case.resolved", m(55), {}),  # resolving while paused ends the pause
        ("case.verified", m(60), {"rating": 4}),
        ("case.part_reported", m(61), {}),  # no effect on figures
    ]:
        rounds = apply_step(rounds, event_type=event_type, at=at, detail=detail)
    lead, co = rounds
    assert (lead.acknowledged_at, lead.plan_at, lead.resolved_at, lead.rating) == (m(5), m(20), m(55), 4)
    assert (lead.extensions, lead.paused_minutes, lead.paused_at) == (1, 15.0, None)
    assert (co.acknowledged_at, co.ended_at, co.end_reason) == (m(4), m(55), "resolved")


def test_an_automatic_verification_without_a_rating_counts_for_nothing():
    rounds = open_rounds([], case=case(), started_at=m(0), action="dispatch")
    rounds = apply_step(rounds, event_type="case.resolved", at=m(30), detail={})
    assert apply_step(rounds, event_type="case.verified", at=m(40), detail={"auto": True}) == rounds
    assert apply_step(rounds, event_type="case.verified", at=m(40), detail={"rating": True}) == rounds


def test_a_reopening_counts_against_the_department_that_resolved():
    facts = case()
    rounds = open_rounds([], case=facts, started_at=m(0), action="dispatch")
    rounds = apply_step(rounds, event_type="case.resolved", at=m(30), detail={})
    rounds = open_rounds(rounds, case=facts | {"department_code": "chengguan"}, started_at=m(100), action="reopen")
    first, second = rounds
    assert (first.department_code, first.reopened) == ("zhujian", True)
    assert (second.department_code, second.reopened, second.action) == ("chengguan", False, "reopen")


def test_return_cancel_and_a_step_without_rounds():
    rounds = open_rounds([], case=case(), started_at=m(0), action="dispatch")
    [returned] = apply_step(rounds, event_type="case.returned", at=m(5), detail={})
    # Held for the ruling, not ended: overruled, it goes on with the same department, counted.
    assert (returned.returned_at, returned.ended_at, returned.returns_overruled) == (m(5), None, 0)
    [overruled] = apply_step([returned], event_type="case.return_overruled", at=m(9), detail={})
    assert (overruled.ended_at, overruled.returns_overruled) == (None, 1)
    [resolved] = apply_step([overruled], event_type="case.resolved", at=m(30), detail={})
    assert (resolved.resolved_at, resolved.end_reason) == (m(30), "resolved")
    # Upheld: the next dispatch (to another department) ends it.
    upheld, gas = open_rounds(
        [returned], case=case("gas", case_id=returned.case_id), started_at=m(8), action="uphold_return"
    )
    assert (upheld.ended_at, upheld.end_reason, gas.department_code) == (m(8), "uphold_return", "gas")
    [cancelled] = apply_step(rounds, event_type="case.cancelled", at=m(3), detail={})
    assert (cancelled.ended_at, cancelled.end_reason, cancelled.returned_at) == (m(3), "cancelled", None)
    assert apply_step([], event_type="case.resolved", at=m(3), detail={}) == []


def test_a_report_found_unfounded_on_site_ends_its_rounds_and_a_real_one_does_not():
    rounds = open_rounds([], case=case(), started_at=m(0), action="dispatch")
    [real] = apply_step(rounds, event_type="case.checked", at=m(20), detail={"finding": "confirmed"})
    assert (real.ended_at, real.end_reason) == (None, None)  # the department's clocks run on
    [false] = apply_step(rounds, event_type="case.checked", at=m(20), detail={"finding": "unfounded"})
    assert (false.ended_at, false.end_reason, false.resolved_at) == (m(20), "unfounded", None)


def test_a_recurrence_marks_the_resolution_last_before_it():
    facts = case()
    rounds = open_rounds([], case=facts, started_at=m(0), action="dispatch")
    rounds = apply_step(rounds, event_type="case.resolved", at=m(30), detail={})
    rounds = open_rounds(rounds, case=facts, started_at=m(100), action="reopen")
    rounds = apply_step(rounds, event_type="case.resolved", at=m(130), detail={})
    assert [r.reopened for r in rounds] == [True, False]
    assert [r.reopened for r in mark_recurrences(rounds, [m(200)])] == [True, True]
    assert mark_recurrences(rounds, [m(10)]) == rounds  # nothing resolved before it
    assert mark_recurrences([], [m(10)]) == []


def test_wilson_lower_bound_ranks_three_of_three_below_290_of_300():
    assert wilson_lower_bound(0, 0) is None
    assert wilson_lower_bound(3, 3) == pytest.approx(0.4385, abs=1e-4)
    assert wilson_lower_bound(290, 300) == pytest.approx(0.9397, abs=1e-4)
    assert wilson_lower_bound(0, 10) == 0.0
    rows = [
        {"key": "small", "r": Rate(3, 3).as_dict()},
        {"key": "large", "r": Rate(290, 300).as_dict()},
        {"key": "none", "r": Rate(0, 0).as_dict()},
        {"key": "tie", "r": Rate(290, 300).as_dict()},
    ]
    assert [(r["key"], r["rank"]) for r in rank(rows, by="r")] == [
        ("large", 1),
        ("tie", 2),
        ("small", 3),
        ("none", None),
    ]


def test_a_rate_without_data_is_none_and_reads_no_data():
    assert Rate(0, 0).as_dict() == {"value": None, "numerator": 0, "n": 0, "lower_bound": None, "display": NO_DATA}
    assert Rate(7, 8).display == "87.5%（7/8）"
    assert Rate(0, 4).display == "0.0%（0/4）"
    with pytest.raises(ValueError):
        Rate(5, 4)
    assert (percent_or_no_data(None), percent_or_no_data(0.5)) == (NO_DATA, "50.0%")
    assert (minutes_or_no_data(None), minutes_or_no_data(12.4), minutes_or_no_data(180)) == (
        NO_DATA,
        "12 分钟",
        "3.0 小时",
    )


def test_a_scorecard_from_counts_and_an_empty_period():
    card = scorecard(empty_counts())
    assert all(card[r]["display"] == NO_DATA for r in ("acknowledged_in_time", "resolved_in_time", "satisfied"))
    assert card["stage_minutes"]["ack"] == {"median": None, "p90": None}
    full = scorecard(empty_counts() | {"resolve_on_time": 2, "resolve_n": 3, "received": 4, "ack_median": 3.456})
    assert full["resolved_in_time"]["value"] == 0.6667 and full["received"] == 4
    assert full["stage_minutes"]["ack"]["median"] == 3.5


def test_periods_and_the_complete_grid():
    assert period_starts("all", date(2026, 11, 5), date(2026, 11, 20)) == [date(2026, 11, 5)]
    assert period_starts("day", date(2026, 11, 29), date(2026, 12, 1)) == [
        date(2026, 11, 29),
        date(2026, 11, 30),
        date(2026, 12, 1),
    ]
    assert period_starts("week", date(2026, 11, 26), date(2026, 12, 1)) == [date(2026, 11, 23), date(2026, 11, 30)]
    assert period_starts("month", date(2026, 11, 26), date(2027, 1, 1)) == [
        date(2026, 11, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
    ]
    rows = [{"key": "a", "period_start": date(2026, 11, 1), **empty_counts(), "received": 3}]
    grid = complete_grid(rows, period="month", since=date(2026, 10, 1), until=date(2026, 11, 30))
    assert [(r["key"], r["period_start"], r["received"]) for r in grid] == [
        ("a", date(2026, 10, 1), 0),
        ("a", date(2026, 11, 1), 3),
    ]
    keyed = complete_grid([], period="all", since=date(2026, 11, 1), until=date(2026, 11, 30), keys=[None, "b"])
    assert [r["key"] for r in keyed] == [None, "b"]


def test_place_of_a_division_code():
    assert place_of(None) == {"town_code": None, "village_code": None}
    assert place_of("330727") == {"town_code": None, "village_code": None}
    assert place_of("330727001") == {"town_code": "330727001", "village_code": None}


def test_exports_name_divisions_from_the_map_sla_is_given(tmp_path, monkeypatch):
    """In a cluster the map arrives gzipped at GRIDLINK_COUNTY_MAP_PATH (deploy/k8s/county): sla's
    reports name the county's own towns, not the demo's shipped in the image."""
    document = json.loads((PROJECT_ROOT / "shared" / "data" / "county.geojson").read_text(encoding="utf-8"))
    town = next(f["properties"] for f in document["features"] if f["properties"]["level"] == "town")
    town["name"] = "新设镇"
    shipped = tmp_path / "county.geojson.gz"
    shipped.write_bytes(gzip.compress(json.dumps(document, ensure_ascii=False).encode("utf-8")))
    monkeypatch.setenv("GRIDLINK_COUNTY_MAP_PATH", str(shipped))
    names = load_names(SlaSettings(service_name="sla"))
    assert names.of("town", town["code"]) == "新设镇"


def test_names_and_the_csv_export():
    n = load_names(SlaSettings(service_name="sla"))  # the demo county's list and map, sla's defaults
    assert n.of("department", "zhujian") == "住房和城乡建设局"
    assert n.of("town", None) == "（未定位）" and n.of("department", None) == "（未知）"
    assert n.of("county", "county") == "全县" and n.of("category", "no-such") == "no-such"
    town = next(iter(k for k in n.divisions if len(k) == 9))
    assert n.of("town", town) == n.divisions[town]
    assert isinstance(Names({}, {}, {}).of("grid", "x"), str)
    cards = [
        {"key": "zhujian", "period_start": date(2026, 11, 1), "rank": 1, **scorecard(empty_counts() | {"received": 1})},
        {"key": None, "period_start": date(2026, 11, 1), "rank": None, **scorecard(empty_counts())},
    ]
    body = scorecards_csv(cards, names=n, by="department")
    assert body.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert (rows[0]["name"], rows[0]["satisfied 群众满意率"], rows[0]["satisfied_n"]) == (
        "住房和城乡建设局",
        NO_DATA,
        "0",
    )
    assert rows[1]["name"] == "（未知）"


def test_the_business_dashboard_queries_only_the_scorecard_metrics_sla_exports():
    import services.sla.app  # noqa: F401 - registers sla's metrics, the analytics ones among them

    exported = {name for names_ in REGISTRY._collector_to_names.values() for name in names_}
    dashboard = json.loads(
        (PROJECT_ROOT / "deploy" / "k8s" / "monitoring" / "gridlink-scorecards.json").read_text("utf-8")
    )
    used = {m for p in dashboard["panels"] for t in p["targets"] for m in re.findall(r"gridlink_\w+", t["expr"])}
    assert used == {"gridlink_scorecard_rate", "gridlink_scorecard_sample", "gridlink_scorecard_supervised"}
    assert used <= exported
