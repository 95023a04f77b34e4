"""The case lifecycle rules and the responsibility list, without I/O."""

import random
from dataclasses import replace

import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from services.dispatch.domain import (
    SYSTEM,
    CaseState,
    Context,
    Forbidden,
    IllegalTransition,
    apply,
    authorize,
    can_see,
    decide,
    replay,
)
from services.dispatch.responsibility import InvalidResponsibilityList, ancestors, build_list, decide_owner, level_of
from services.dispatch.settings import DispatchSettings
from shared.auth import Actor
from shared.case_actions import ACTIONS
from shared.taxonomy import load_taxonomy

PATH = DispatchSettings().responsibility_list_path
TAXONOMY = load_taxonomy(PATH)
RLIST = build_list(taxonomy=TAXONOMY, document=yaml.safe_load(PATH.read_text(encoding="utf-8")))
COUNTY, TOWN, VILLAGE = "330727", "330727001", "330727001002"

DISPATCHER = Actor("d1", "dispatcher", COUNTY)
ZHUJIAN = Actor("h1", "handler", COUNTY, "zhujian")
ECO = Actor("h2", "handler", COUNTY, "eco_env")
POLICE = Actor("h3", "handler", COUNTY, "police")


def case(**overrides) -> CaseState:
    values = dict(case_id="c1", status="dispatched", jurisdiction_code=VILLAGE, department_code="zhujian")
    return CaseState(**(values | overrides))


# The photos media holds for the case (media.attached), as 办结 names them.
EVIDENCE = {"m-after": ("after", ()), "m": ("after", ())}
CONTEXT = Context(rlist=RLIST, centres=frozenset({COUNTY, TOWN}), taxonomy=TAXONOMY, evidence=EVIDENCE)


def run(state: CaseState, action: str, actor: Actor, **arguments) -> CaseState:
    return apply(state, decide(case=state, action=action, actor=actor, arguments=arguments, context=CONTEXT))


def test_taxonomy_has_all_categories_and_departments():
    assert len(TAXONOMY.categories) == 33
    assert len(TAXONOMY.departments) == 20


def test_happy_path_from_dispatch_to_close():
    state = run(case(), "acknowledge", ZHUJIAN)
    assert state.status == "acknowledged" and state.acknowledged_departments == ("zhujian",)
    state = run(state, "start", ZHUJIAN)
    state = run(state, "resolve", ZHUJIAN, result="已更换井盖", after_media_ids=["m-after"])
    state = run(state, "verify", DISPATCHER, rating=5)
    assert run(state, "close", DISPATCHER).status == "closed"


@pytest.mark.parametrize(
    "status, action",
    [
        ("dispatched", "resolve"),
        ("dispatched", "start"),
        ("closed", "acknowledge"),
        ("cancelled", "reopen"),
        ("resolved", "cancel"),
        ("verified", "acknowledge"),
        ("merged", "transfer"),
    ],
)
def test_illegal_transitions_are_refused(status, action):
    actor = ZHUJIAN if action in ("resolve", "start", "acknowledge") else DISPATCHER
    with pytest.raises((IllegalTransition, Forbidden)):
        decide(
            case=case(status=status),
            action=action,
            actor=actor,
            arguments={"reason": "x", "department_code": "police", "result": "r", "after_media_ids": ["m"]},
        )


def test_resolve_needs_an_after_photo_and_a_result():
    state = case(status="in_progress", acknowledged_departments=("zhujian",))
    with pytest.raises(IllegalTransition, match="after_media_ids"):
        decide(case=state, action="resolve", actor=ZHUJIAN, arguments={"result": "已处理"})
    with pytest.raises(IllegalTransition, match="result"):
        decide(case=state, action="resolve", actor=ZHUJIAN, arguments={"after_media_ids": ["m"]})


@pytest.mark.parametrize("action", ["return", "cancel", "reopen", "request_extension"])
def test_actions_that_need_a_reason(action):
    actor = ZHUJIAN if action in ("return", "request_extension") else DISPATCHER
    status = {"reopen": "closed", "request_extension": "acknowledged"}.get(action, "dispatched")
    with pytest.raises(IllegalTransition, match="reason"):
        decide(case=case(status=status), action=action, actor=actor, arguments={"minutes": 30})


def test_joint_case_co_handlers_acknowledge_separately_and_the_lead_needs_a_plan():
    state = case(department_code="zhujian", co_department_codes=("eco_env",))
    state = run(state, "acknowledge", ECO)
    assert state.status == "dispatched" and state.acknowledged_departments == ("eco_env",)
    with pytest.raises(IllegalTransition):
        decide(case=state, action="acknowledge", actor=ECO)
    state = run(state, "acknowledge", ZHUJIAN)
    assert state.status == "acknowledged"
    with pytest.raises(Forbidden):
        decide(case=state, action="submit_plan", actor=ECO, arguments={"plan": "x"})
    with pytest.raises(IllegalTransition, match="joint plan"):
        decide(case=state, action="resolve", actor=ZHUJIAN, arguments={"result": "r", "after_media_ids": ["m"]})
    state = run(state, "submit_plan", ZHUJIAN, plan="住建牵头修复，环保监测")
    state = run(state, "report_part", ECO, result="水质监测正常")
    assert run(state, "resolve", ZHUJIAN, result="完成", after_media_ids=["m"]).status == "resolved"


def test_handlers_act_only_for_their_department_and_jurisdiction():
    with pytest.raises(Forbidden):
        decide(case=case(), action="acknowledge", actor=POLICE)
    with pytest.raises(Forbidden):
        decide(case=case(), action="transfer", actor=ZHUJIAN, arguments={"department_code": "police"})
    other_town = Actor("d2", "dispatcher", "330727002")
    assert not can_see(actor=other_town, case=case())
    with pytest.raises(Forbidden):
        authorize(actor=other_town, action="cancel", case=case())
    assert can_see(actor=Actor("d3", "dispatcher", TOWN), case=case())


def test_transfer_changes_the_department_and_resets_acknowledgements():
    state = run(
        case(status="dispatched", acknowledged_departments=("zhujian",)),
        "transfer",
        DISPATCHER,
        department_code="chengguan",
    )
    assert (state.status, state.department_code, state.acknowledged_departments) == ("dispatched", "chengguan", ())


def test_a_return_says_why_and_waits_for_the_dispatchers_ruling():
    with pytest.raises(IllegalTransition, match="reason"):
        decide(case=case(), action="return", actor=ZHUJIAN, arguments={})
    evidence = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
    returned = decide(
        case=case(),
        action="return",
        actor=ZHUJIAN,
        arguments={"reason": "属燃气公司", "evidence_media_ids": [evidence]},
    )
    assert (returned.to_status, returned.reason) == ("returned", "属燃气公司")
    assert returned.detail == {"department_code": "zhujian", "evidence_media_ids": [evidence]}
    # Only the dispatcher rules, and only on a returned case (the 409 says which status it needs).
    state = apply(case(), returned)
    with pytest.raises(Forbidden):
        decide(case=state, action="overrule_return", actor=ZHUJIAN, arguments={"reason": "x"})
    with pytest.raises(IllegalTransition, match="only a case that is returned"):
        decide(case=case(), action="overrule_return", actor=DISPATCHER, arguments={"reason": "x"})
    with pytest.raises(IllegalTransition, match="only a case that is returned"):
        decide(
            case=case(), action="uphold_return", actor=DISPATCHER, arguments={"reason": "x", "department_code": "gas"}
        )
    # A ruling always says why.
    with pytest.raises(IllegalTransition, match="reason"):
        decide(case=state, action="overrule_return", actor=DISPATCHER, arguments={})
    # Nor can the dispatcher go around the ruling with a plain transfer.
    with pytest.raises(IllegalTransition, match="returned"):
        decide(case=state, action="transfer", actor=DISPATCHER, arguments={"department_code": "gas"})


def test_an_overruled_return_goes_back_as_it_was_and_an_upheld_one_elsewhere():
    # Returned before acknowledging: back to dispatched; after: back to acknowledged.
    for acknowledged, back in (((), "dispatched"), (("zhujian",), "acknowledged")):
        state = run(case(acknowledged_departments=acknowledged), "return", ZHUJIAN, reason="不归我局")
        ruling = decide(case=state, action="overrule_return", actor=DISPATCHER, arguments={"reason": "市政道路井盖"})
        assert (ruling.to_status, ruling.detail, ruling.event_type) == (
            back,
            {"department_code": "zhujian", "ruling": "overruled"},
            "case.return_overruled",
        )
        assert apply(state, ruling).acknowledged_departments == acknowledged
    state = run(case(), "return", ZHUJIAN, reason="属燃气公司")
    with pytest.raises(IllegalTransition, match="overrule the return"):
        decide(
            case=state,
            action="uphold_return",
            actor=DISPATCHER,
            arguments={"reason": "x", "department_code": "zhujian"},
        )
    upheld = decide(
        case=state, action="uphold_return", actor=DISPATCHER, arguments={"reason": "燃气井", "department_code": "gas"}
    )
    assert (upheld.to_status, upheld.event_type) == ("dispatched", "case.dispatched")
    assert upheld.detail == {"department_code": "gas", "ruling": "upheld", "returned_by": "zhujian"}
    assert apply(state, upheld).department_code == "gas"


def test_resolve_needs_after_photos_media_holds_for_the_case_and_shows_what_media_flagged():
    state = case(status="in_progress", acknowledged_departments=("zhujian",))
    evidence = {
        "before-1": ("before", ()),
        "after-ok": ("after", ()),
        "after-reused": ("after", ("reused_photo", "far_from_report")),
    }
    context = replace(CONTEXT, evidence=evidence)

    def resolve(*media_ids):
        arguments = {"result": "已更换", "after_media_ids": list(media_ids)}
        return decide(case=state, action="resolve", actor=ZHUJIAN, arguments=arguments, context=context)

    # Not this case's (another case's photo, or one never attached): refused, saying what to do.
    with pytest.raises(IllegalTransition, match="不是本案件的整改后照片.*请先上传"):
        resolve("after-ok", "of-another-case")
    with pytest.raises(IllegalTransition, match="整改前照片"):
        resolve("before-1")
    assert "flagged_media" not in resolve("after-ok").detail
    flagged = resolve("after-ok", "after-reused")
    assert flagged.to_status == "resolved"
    assert flagged.detail["flagged_media"] == {"after-reused": ["reused_photo", "far_from_report"]}


def test_extension_request_then_approve_or_refuse():
    state = run(case(status="acknowledged"), "request_extension", ZHUJIAN, reason="需要采购配件", minutes=120)
    assert state.extension_pending
    with pytest.raises(IllegalTransition):
        decide(case=state, action="request_extension", actor=ZHUJIAN, arguments={"reason": "x", "minutes": 1})
    assert not run(state, "approve_extension", DISPATCHER, minutes=120).extension_pending
    assert not run(state, "refuse_extension", DISPATCHER, reason="情况紧急").extension_pending


def test_system_verifies_without_a_rating_but_people_must_rate():
    state = case(status="resolved")
    assert run(state, "verify", SYSTEM).status == "verified"
    for rating in (0, 6, None, "5", True):
        with pytest.raises(IllegalTransition):
            decide(case=state, action="verify", actor=DISPATCHER, arguments={"rating": rating})


def test_every_action_is_reachable_from_some_status():
    assert all(spec.from_statuses for spec in ACTIONS.values())


# --- responsibility list -------------------------------------------------------------------


def test_levels_and_ancestors_from_division_codes():
    assert [level_of(c) for c in (COUNTY, TOWN, VILLAGE)] == ["county", "town", "village"]
    assert ancestors(VILLAGE) == [VILLAGE, TOWN, COUNTY]
    with pytest.raises(ValueError):
        level_of("3307")


ALL_CENTRES = frozenset({COUNTY, TOWN, VILLAGE})


def test_lowest_centre_with_a_rule_owns_the_case():
    village = decide_owner(rlist=RLIST, centres=ALL_CENTRES, case_jurisdiction=VILLAGE, category="exposed_garbage")
    assert (village.jurisdiction_code, village.rule.lead) == (VILLAGE, "village_committee")
    town = decide_owner(rlist=RLIST, centres=ALL_CENTRES, case_jurisdiction=VILLAGE, category="street_vendor")
    assert (town.jurisdiction_code, town.rule.lead) == (TOWN, "town_office")
    county = decide_owner(rlist=RLIST, centres=ALL_CENTRES, case_jurisdiction=VILLAGE, category="manhole")
    assert (county.jurisdiction_code, county.rule.lead, county.rule.source) == (COUNTY, "zhujian", "county")


def test_a_division_without_its_own_centre_is_served_by_the_next_one_up():
    decision = decide_owner(
        rlist=RLIST, centres=frozenset({COUNTY}), case_jurisdiction=VILLAGE, category="exposed_garbage"
    )
    assert (decision.jurisdiction_code, decision.rule.lead) == (COUNTY, "huanwei")


def test_escalation_goes_to_the_next_centre_with_a_rule():
    up = decide_owner(
        rlist=RLIST, centres=ALL_CENTRES, case_jurisdiction=VILLAGE, category="exposed_garbage", above=VILLAGE
    )
    assert up.jurisdiction_code == TOWN
    top = decide_owner(
        rlist=RLIST, centres=ALL_CENTRES, case_jurisdiction=VILLAGE, category="exposed_garbage", above=TOWN
    )
    assert top.jurisdiction_code == COUNTY


def test_co_handlers_and_overrides_and_unknown_categories():
    joint = RLIST.rule_at(jurisdiction_code=COUNTY, category="construction_site")
    assert joint.lead == "zhujian" and joint.co_handlers == ("eco_env", "chengguan")
    override = RLIST.rule_at(jurisdiction_code=TOWN, category="parking_lock")
    assert override.source == f"override:{TOWN}" and override.describe("parking_lock").startswith("override:")
    assert RLIST.rule_at(jurisdiction_code="330727002", category="parking_lock") is None
    manual = decide_owner(rlist=RLIST, centres=ALL_CENTRES, case_jurisdiction=VILLAGE, category="no_such")
    assert (manual.category, manual.rule.lead) == ("other", "grid_center")


@pytest.mark.parametrize(
    "document, message",
    [
        ({"version": "v2", "levels": {"town": {"manhole": {"lead": "nobody"}}}}, "主办部门「nobody」"),
        ({"version": "v2", "levels": {"town": {"manhole": {"lead": "zhujian", "co": ["x"]}}}}, "协办部门「x」"),
        ({"version": "v2", "levels": {"town": {"nothing": None}}}, "没有「nothing」这个类别"),
        ({"version": "v2", "levels": {"province": {}}}, "层级"),
        ({"version": "v2", "overrides": {"3307": {}}}, "区划代码"),
        ({"version": "v2", "co_handlers": {"nothing": ["police"]}}, "类别"),
        ({"version": "v2", "co_handlers": {"manhole": ["nobody"]}}, "协办部门「nobody」"),
        ({"levels": {}}, "版本号"),
    ],
)
def test_invalid_list_documents_are_refused(document, message):
    with pytest.raises(InvalidResponsibilityList, match=message):
        build_list(taxonomy=TAXONOMY, document=document)


def test_every_error_of_a_list_is_reported_with_where_it_is():
    document = {
        "levels": {"town": {"manhole": {"lead": "nobody"}, "road_damage": {"lead": "zhujian"}}},
        "overrides": {"330727001": {"noise": {"lead": "ghost"}}},
    }
    with pytest.raises(InvalidResponsibilityList) as refused:
        build_list(taxonomy=TAXONOMY, document=document)
    assert [where for where, _ in refused.value.errors] == [
        "levels.town.manhole",
        "overrides.330727001.noise",
        "version",
    ]


def test_document_round_trips():
    assert build_list(taxonomy=TAXONOMY, document=RLIST.document()) == RLIST


# --- rebuilding a case from its events ------------------------------------------------------


def case_events(n: int) -> list[dict]:
    statuses = ["dispatched", "acknowledged", "in_progress", "resolved", "verified", "closed"]
    return [
        {
            "event_id": f"e{seq}",
            "payload": {"seq": seq, "status": statuses[(seq - 1) % len(statuses)], "department_code": "zhujian"},
        }
        for seq in range(1, n + 1)
    ]


@hsettings(max_examples=200, deadline=None)
@given(n=st.integers(1, 12), seed=st.integers(0, 2**32), duplicates=st.integers(0, 10))
def test_replay_with_duplicates_and_delays_reaches_the_same_state(n, seed, duplicates):
    events = case_events(n)
    rng = random.Random(seed)
    delivered = events + [rng.choice(events) for _ in range(duplicates)]
    rng.shuffle(delivered)  # a late event arrives after later ones
    assert replay(delivered) == replay(events) == events[-1]["payload"]


ROLE_ACTORS = {
    "dispatcher": DISPATCHER,
    "handler": ZHUJIAN,
    "grid_worker": Actor("g1", "grid_worker", VILLAGE),
    "supervisor": Actor("s1", "supervisor", COUNTY),
    "admin": Actor("a1", "admin", COUNTY),
}


@pytest.mark.parametrize("role", ROLE_ACTORS)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_role_may_do_exactly_its_actions(role, action):
    actor = ROLE_ACTORS[role]
    if ACTIONS[action].allows(role):
        authorize(actor=actor, action=action, case=case())
    else:
        with pytest.raises(Forbidden):
            authorize(actor=actor, action=action, case=case())


def test_grid_workers_see_the_cases_of_their_grid():
    grid = VILLAGE + "001"
    worker = Actor("g2", "grid_worker", grid)
    assert can_see(actor=worker, case=case(grid_code=grid))
    assert not can_see(actor=worker, case=case(grid_code=VILLAGE + "002"))
    assert not can_see(actor=worker, case=case())  # a case not placed in a grid: the village's staff see it
    assert can_see(actor=Actor("g3", "grid_worker", VILLAGE), case=case(grid_code=grid))


def test_waiting_for_the_reporter_pauses_until_they_reply():
    state = run(case(status="in_progress"), "await_reporter", ZHUJIAN, reason="请补充具体位置")
    assert state.awaiting_reporter
    with pytest.raises(IllegalTransition):
        decide(case=state, action="await_reporter", actor=ZHUJIAN, arguments={"reason": "again"})
    assert not run(state, "reporter_replied", DISPATCHER, result="3号楼东侧").awaiting_reporter
    with pytest.raises(IllegalTransition):
        decide(case=case(status="in_progress"), action="reporter_replied", actor=ZHUJIAN)


def test_reclassify_sends_the_case_to_the_new_category_department():
    sewage = RLIST.rule_at(jurisdiction_code=COUNTY, category="sewage")
    state = run(
        case(status="acknowledged", acknowledged_departments=("zhujian",), owner_code=COUNTY, category="manhole"),
        "reclassify",
        DISPATCHER,
        category="sewage",
    )
    assert (state.status, state.department_code, state.acknowledged_departments) == ("dispatched", sewage.lead, ())
    assert state.co_department_codes == sewage.co_handlers and sewage.lead != "zhujian"
    with pytest.raises(Forbidden):
        decide(case=case(), action="reclassify", actor=ZHUJIAN, arguments={"category": "sewage"})
