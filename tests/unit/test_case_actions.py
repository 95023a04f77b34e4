"""Every case action spec, walked for every role and every status: a new spec is covered here
without a new test. The spec says who, from where, to where and what is required; `decide` must
agree with it exactly (403 for the role, 409 for the status or a missing argument)."""

from dataclasses import replace
from uuid import uuid4

import pytest
import yaml

from services.dispatch.domain import (
    RULES,
    CaseState,
    Context,
    Forbidden,
    IllegalTransition,
    apply,
    available_actions,
    decide,
)
from services.dispatch.responsibility import build_list
from services.dispatch.settings import DispatchSettings
from shared.auth import ROLES, Actor
from shared.case_actions import ACTIONS, CASE_TRANSITION_TYPES, STATUSES, clocks_of
from shared.events import PAYLOAD_TYPES
from shared.taxonomy import load_taxonomy

PATH = DispatchSettings().responsibility_list_path
TAXONOMY = load_taxonomy(PATH)
RLIST = build_list(taxonomy=TAXONOMY, document=yaml.safe_load(PATH.read_text(encoding="utf-8")))
COUNTY, TOWN, VILLAGE = "330727", "330727001", "330727001002"
CONTEXT = Context(rlist=RLIST, centres=frozenset({COUNTY, TOWN}), taxonomy=TAXONOMY)
LEAD, CO = "zhujian", "eco_env"

ACTORS = {
    "dispatcher": Actor("d1", "dispatcher", COUNTY),
    "handler": Actor("h1", "handler", COUNTY, LEAD),
    "grid_worker": Actor("g1", "grid_worker", VILLAGE),
    "supervisor": Actor("s1", "supervisor", COUNTY),
    "admin": Actor("a1", "admin", COUNTY),
    "system": Actor("dispatch", "system", ""),
}
# A value for every argument any action's request model can carry.
ARGUMENTS = {
    "reason": "理由",
    "department_code": "chengguan",
    "co_department_codes": [],
    "result": "已处理",
    "after_media_ids": [str(uuid4())],
    "rating": 5,
    "comment": "满意",
    "plan": "联合方案",
    "minutes": 60,
    "into_case_id": str(uuid4()),
    "category": "sewage",
    "priority": "normal",
    "evidence_media_ids": [str(uuid4())],
    "finding": "confirmed",
    "before_media_ids": [str(uuid4())],
    "device_location": {"lat": 29.08, "lng": 120.05, "accuracy_m": 10.0},
}


def ready_case(action: str, status: str, role: str) -> CaseState:
    """A case in `status` that meets the action's own preconditions besides the status."""
    joint = action in ("submit_plan", "report_part")
    # Escalation needs a centre above; the county's list has a department for every category.
    owner, level = (TOWN, "town") if action == "escalate" else (COUNTY, "county")
    return CaseState(
        case_id="c1",
        status=status,
        jurisdiction_code=VILLAGE,
        department_code=LEAD,
        owner_code=owner,
        level=level,
        category="manhole",
        co_department_codes=(CO,) if joint else (),
        acknowledged_departments=() if action == "acknowledge" else (LEAD,),
        extension_pending=action in ("approve_extension", "refuse_extension"),
        awaiting_reporter=action == "reporter_replied",
    )


# The open case a merge goes into.
TARGET = CaseState(
    case_id=ARGUMENTS["into_case_id"], status="dispatched", jurisdiction_code=VILLAGE, department_code=LEAD
)
# Media holds the 整改后 photo 办结 names and the 整改前 photo 核实 names, for this case.
CONTEXT = replace(
    CONTEXT,
    other=TARGET,
    evidence={ARGUMENTS["after_media_ids"][0]: ("after", ()), ARGUMENTS["before_media_ids"][0]: ("before", ())},
)


def actor_for(action: str, role: str) -> Actor:
    if role == "handler" and action == "report_part":
        return Actor("h2", "handler", COUNTY, CO)  # only a co-handler reports its part
    return ACTORS[role]


def test_the_table_covers_the_actions_staff_use():
    assert len(ACTIONS) == 25
    assert set(RULES) <= set(ACTIONS)


@pytest.mark.parametrize("name", sorted(ACTIONS))
@pytest.mark.parametrize("role", [*ROLES, "system"])
@pytest.mark.parametrize("status", STATUSES)
def test_decide_follows_the_spec(name, role, status):
    spec, actor = ACTIONS[name], actor_for(name, role)
    case = ready_case(name, status, role)
    arguments = {field: ARGUMENTS[field] for field in spec.request.model_fields if field in ARGUMENTS}
    if not spec.allows(role):
        with pytest.raises(Forbidden):
            decide(case=case, action=name, actor=actor, arguments=arguments, context=CONTEXT)
        return
    if status not in spec.from_statuses:
        with pytest.raises(IllegalTransition, match=f"cannot {name}"):
            decide(case=case, action=name, actor=actor, arguments=arguments, context=CONTEXT)
        return
    for required in spec.requires:
        with pytest.raises(IllegalTransition, match=required):
            decide(
                case=case,
                action=name,
                actor=actor,
                arguments={k: v for k, v in arguments.items() if k != required},
                context=CONTEXT,
            )
    if name == "report_part" and role == "admin":  # an admin has no department whose part it could be
        with pytest.raises(IllegalTransition, match="co-handling"):
            decide(case=case, action=name, actor=actor, arguments=arguments, context=CONTEXT)
        return
    transition = decide(case=case, action=name, actor=actor, arguments=arguments, context=CONTEXT)
    assert transition.event_type == spec.event_type and transition.from_status == status
    # An acknowledgement moves only the lead's case; an overruled return goes back where it came from.
    assert transition.to_status == (spec.to_status or status) or name in ("acknowledge", "overrule_return")
    assert apply(case, transition).status == transition.to_status
    assert name in available_actions(actor=actor, case=case)


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_every_action_is_a_registered_event_with_one_clock_effect(name):
    spec = ACTIONS[name]
    assert (spec.event_type, 1) in PAYLOAD_TYPES
    assert spec.event_type == "case.dispatched" or spec.event_type in CASE_TRANSITION_TYPES
    # sla reads clocks by event type: every action published as that type must agree.
    assert clocks_of(spec.event_type) == spec.clocks
    assert set(spec.requires) <= set(spec.request.model_fields)
    assert set(spec.from_statuses) <= set(STATUSES) and (spec.to_status is None or spec.to_status in STATUSES)


def test_available_actions_are_what_the_person_may_do_now():
    handler, dispatcher = ACTORS["handler"], ACTORS["dispatcher"]
    dispatched = CaseState(case_id="c1", status="dispatched", jurisdiction_code=VILLAGE, department_code=LEAD)
    assert available_actions(actor=handler, case=dispatched) == ["acknowledge", "return"]
    assert set(available_actions(actor=dispatcher, case=dispatched)) == {
        "transfer",
        "escalate",
        "reclassify",
        "merge",
        "cancel",
    }
    other = Actor("h9", "handler", COUNTY, "police")
    assert available_actions(actor=other, case=dispatched) == []
    # Working on a case of its own (no co-handlers): no joint plan, no part report, no answer to an
    # extension nobody asked for — only what can succeed is offered.
    working = replace(dispatched, status="in_progress", acknowledged_departments=(LEAD,))
    assert set(available_actions(actor=handler, case=working)) == {
        "progress",
        "resolve",
        "request_extension",
        "await_reporter",
    }
    # 反馈进展 records its text, as every action without a rule of its own records its request.
    progress = decide(case=working, action="progress", actor=handler, arguments={"result": "已联系施工方，明早更换"})
    assert (progress.to_status, progress.detail) == ("in_progress", {"result": "已联系施工方，明早更换"})
    assert "approve_extension" not in available_actions(actor=dispatcher, case=working)
    asked = replace(working, extension_pending=True)
    assert {"approve_extension", "refuse_extension"} <= set(available_actions(actor=dispatcher, case=asked))


def test_a_case_merges_only_into_an_open_case_this_centre_holds_and_the_dispatcher_sees():
    dispatcher, case = ACTORS["dispatcher"], ready_case("merge", "dispatched", "dispatcher")
    into = {"into_case_id": TARGET.case_id}
    transition = decide(case=case, action="merge", actor=dispatcher, arguments=into, context=CONTEXT)
    assert transition.changes["merged_into"] == TARGET.case_id
    with pytest.raises(IllegalTransition, match="no case"):
        decide(case=case, action="merge", actor=dispatcher, arguments=into, context=replace(CONTEXT, other=None))
    closed = replace(CONTEXT, other=replace(TARGET, status="closed"))
    with pytest.raises(IllegalTransition, match="closed"):
        decide(case=case, action="merge", actor=dispatcher, arguments=into, context=closed)
    elsewhere = replace(CONTEXT, other=replace(TARGET, jurisdiction_code="330727002001"))
    with pytest.raises(Forbidden):
        decide(case=case, action="merge", actor=Actor("d2", "dispatcher", TOWN), arguments=into, context=elsewhere)
    with pytest.raises(IllegalTransition, match="itself"):
        decide(case=case, action="merge", actor=dispatcher, arguments={"into_case_id": "c1"}, context=CONTEXT)


def test_a_grid_worker_settles_a_small_problem_of_their_grid_on_the_spot():
    grid = VILLAGE + "001"
    case = CaseState(case_id="c1", status="dispatched", jurisdiction_code=VILLAGE, department_code=LEAD, grid_code=grid)
    worker, neighbour = Actor("gw", "grid_worker", grid), Actor("gw2", "grid_worker", VILLAGE + "002")
    assert "settle" in available_actions(actor=worker, case=case)
    assert "settle" not in available_actions(actor=neighbour, case=case)
    assert "settle" not in available_actions(actor=ACTORS["handler"], case=case)
    photo = str(uuid4())
    held = replace(CONTEXT, evidence={photo: ("after", ())})  # media holds it for this case, as 整改后
    arguments = {"result": "已扶正", "after_media_ids": [photo]}
    settled = decide(case=case, action="settle", actor=worker, arguments=arguments, context=held)
    assert (settled.to_status, settled.event_type) == ("resolved", "case.settled")
    assert settled.detail == {"result": "已扶正", "after_media_ids": [photo], "handled_by": "grid"}
    with pytest.raises(IllegalTransition, match="after_media_ids"):
        decide(case=case, action="settle", actor=worker, arguments={"result": "已扶正"}, context=held)
    with pytest.raises(IllegalTransition, match="整改后照片"):  # a photo media does not hold for the case
        decide(case=case, action="settle", actor=worker, arguments=arguments, context=CONTEXT)
    # No department did the work: its clocks stop, none is counted as met.
    assert ACTIONS["settle"].clocks.completes is None and ACTIONS["settle"].clocks.stop_all


def test_a_grid_worker_checks_a_new_report_of_their_grid_on_site():
    grid = VILLAGE + "001"
    case = CaseState(case_id="c1", status="dispatched", jurisdiction_code=VILLAGE, department_code=LEAD, grid_code=grid)
    worker, neighbour = Actor("gw", "grid_worker", grid), Actor("gw2", "grid_worker", VILLAGE + "002")
    assert "check" in available_actions(actor=worker, case=case)
    assert "check" not in available_actions(actor=neighbour, case=case)
    assert "check" not in available_actions(actor=ACTORS["handler"], case=case)
    assert "check" not in available_actions(actor=ACTORS["dispatcher"], case=case)  # 撤销 is theirs
    photo, where = str(uuid4()), {"lat": 29.08, "lng": 120.05, "accuracy_m": 8.0}
    held = replace(CONTEXT, evidence={photo: ("before", ())})  # media holds it for this case, as 整改前

    # 属实: the case stays where it is, with the evidence; its clocks run on; once per case.
    real = decide(
        case=case,
        action="check",
        actor=worker,
        arguments={"finding": "confirmed", "before_media_ids": [photo], "device_location": where},
        context=held,
    )
    assert (real.to_status, real.event_type) == ("dispatched", "case.checked")
    assert real.detail == {"finding": "confirmed", "before_media_ids": [photo], "device_location": where}
    checked = apply(case, real)
    assert checked.checked_at is not None and "check" not in available_actions(actor=worker, case=checked)
    with pytest.raises(IllegalTransition, match="已现场核实"):
        decide(case=checked, action="check", actor=worker, arguments={"finding": "confirmed"})

    # 不属实: only with what was found; the case is cancelled as 撤销 cancels it, every clock ends.
    with pytest.raises(IllegalTransition, match="核实情况"):
        decide(case=case, action="check", actor=worker, arguments={"finding": "unfounded"})
    unfounded = {"finding": "unfounded", "reason": "现场无此井盖"}
    false = decide(case=case, action="check", actor=worker, arguments=unfounded)
    assert (false.to_status, false.reason, false.detail) == ("cancelled", "现场无此井盖", {"finding": "unfounded"})
    clocks = ACTIONS["check"].clocks
    assert not clocks.stop_all and clocks.stop_all_if == (ACTIONS["cancel"].to_status,)

    with pytest.raises(IllegalTransition, match="finding"):
        decide(case=case, action="check", actor=worker, arguments={"finding": "maybe"})
    with pytest.raises(IllegalTransition, match="现场照片"):  # a photo media does not hold as this case's 整改前
        decide(case=case, action="check", actor=worker, arguments={"finding": "confirmed", "before_media_ids": [photo]})
    with pytest.raises(IllegalTransition, match="cannot check"):
        decide(case=replace(case, status="resolved"), action="check", actor=worker, arguments={"finding": "confirmed"})
