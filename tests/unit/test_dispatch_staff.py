"""Dispatch's pure rules for staff acting from WeCom: who the sender is for this case, what the
state allows (refused in Chinese before anything changes), what they read back."""

from datetime import UTC, datetime

import pytest

from services.dispatch.domain import (
    CaseState,
    Context,
    StaffRefused,
    answers_unknown_numbers,
    deadline_words,
    decide,
    staff_actor,
    staff_arguments,
    staff_done_text,
    staff_precheck,
    staff_query_text,
)
from shared.settings import PROJECT_ROOT
from shared.sla_policy import load_sla_policy

PERSON = {"person_id": "p-wang", "name": "王芳", "active": True}
HANDLER = {"role": "handler", "jurisdiction_code": "330727", "department_code": "huanwei"}


def case(**overrides) -> CaseState:
    facts = {
        "case_id": "c1",
        "status": "dispatched",
        "jurisdiction_code": "330727001001",
        "department_code": "huanwei",
        "grid_code": "330727001001001",
        "level": "county",
        "priority": "normal",
        "category": "exposed_garbage",
    }
    return CaseState(**(facts | overrides))


def test_the_sender_acts_as_the_directorys_handler_of_the_cases_department():
    actor = staff_actor(person=PERSON, roles=[HANDLER], case=case())
    assert (actor.subject, actor.role, actor.department_code, actor.name) == ("p-wang", "handler", "huanwei", "王芳")
    assert actor.label == "handler:p-wang"  # as their token's subject would be through the HTTP routes
    # A co-handling department's handler acts as theirs; the lead's role wins for someone in both.
    co = {**HANDLER, "department_code": "zhujian"}
    assert (
        staff_actor(person=PERSON, roles=[co], case=case(co_department_codes=("zhujian",))).department_code == "zhujian"
    )
    both = staff_actor(person=PERSON, roles=[co, HANDLER], case=case(co_department_codes=("zhujian",)))
    assert both.department_code == "huanwei"


@pytest.mark.parametrize(
    ("person", "roles", "words"),
    [
        (None, [], "通讯录"),
        ({**PERSON, "active": False}, [HANDLER], "停用"),
        (PERSON, [{**HANDLER, "department_code": "zhujian"}], "不属于您所在的部门"),
        (PERSON, [{**HANDLER, "jurisdiction_code": "330727002"}], "不属于您所在的部门"),  # another town's
        (PERSON, [{"role": "dispatcher", "jurisdiction_code": "330727", "department_code": None}], "不属于"),
    ],
)
def test_strangers_and_other_departments_are_refused(person, roles, words):
    with pytest.raises(StaffRefused, match=words):
        staff_actor(person=person, roles=roles, case=case())


def test_the_state_must_allow_the_action_and_the_words_must_be_there():
    actor = staff_actor(person=PERSON, roles=[HANDLER], case=case())
    with pytest.raises(StaffRefused, match="当前状态为「已办结（待回访）」，不能接单"):
        staff_precheck(case=case(status="resolved"), actor=actor, action="acknowledge", arguments={})
    with pytest.raises(StaffRefused, match="已接过此单"):
        staff_precheck(
            case=case(status="acknowledged", acknowledged_departments=("huanwei",)),
            actor=actor,
            action="acknowledge",
            arguments={},
        )
    with pytest.raises(StaffRefused, match="进展 案件编号 进展内容"):
        staff_precheck(case=case(status="acknowledged"), actor=actor, action="progress", arguments={})
    with pytest.raises(StaffRefused, match="不能反馈进展"):
        staff_precheck(case=case(), actor=actor, action="progress", arguments={"result": "到场"})
    # 办结 is checked before its photos are taken in: all but the photos.
    staff_precheck(
        case=case(status="acknowledged"), actor=actor, action="resolve", arguments=staff_arguments("resolve", "已清运")
    )
    staff_precheck(case=case(), actor=actor, action="acknowledge", arguments={})
    staff_precheck(case=case(), actor=actor, action="return", arguments=staff_arguments("return", "不属本部门"))


def test_what_passes_the_precheck_is_what_the_http_routes_decide():
    actor = staff_actor(person=PERSON, roles=[HANDLER], case=case())
    transition = decide(case=case(), action="acknowledge", actor=actor, context=Context())
    assert transition.to_status == "acknowledged"
    assert staff_arguments("progress", "到场") == {"result": "到场"} and staff_arguments("progress", None) == {}


def test_answers_name_the_person_and_the_beijing_time():
    actor = staff_actor(person=PERSON, roles=[HANDLER], case=case())
    text, button = staff_done_text(
        action="acknowledge", case_no="20261202-000042", actor=actor, at=datetime(2026, 12, 2, 2, 3, tzinfo=UTC)
    )
    assert button == "已接单 · 王芳 10:03" and text == "案件 20261202-000042 已接单（王芳，10:03）。"
    _, returned = staff_done_text(
        action="return", case_no="x", actor=actor, at=datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    )
    assert returned == "已退回 · 王芳 23:00"


def test_query_says_state_department_and_deadline():
    policy = load_sla_policy(PROJECT_ROOT / "shared" / "data" / "sla_policies.yaml")
    words = deadline_words(policy, status="dispatched", priority="normal", level="county", department_code="huanwei")
    assert words.startswith("接单时限 ")
    assert deadline_words(policy, status="in_progress", priority="urgent", level="county", department_code="huanwei")
    assert deadline_words(policy, status="resolved", priority="normal", level="county", department_code="x") is None
    text = staff_query_text(
        case={
            "case_no": "20261202-000042",
            "status": "dispatched",
            "overdue": True,
            "department_name": "环境卫生管理处",
            "category_name": "暴露垃圾",
        },
        deadline=words,
    )
    assert "状态：待接单（已逾期）" in text and "承办部门：环境卫生管理处" in text and words in text


def test_the_county_centre_refuses_numbers_no_centre_holds():
    assert answers_unknown_numbers("330727", []) and answers_unknown_numbers("330727", ["330727"])
    both = ["330727", "330727001"]
    assert answers_unknown_numbers("330727", both)  # no report ever had the number
    assert not answers_unknown_numbers("330727", both, owner_code="330727001")  # the town centre's to answer
    assert answers_unknown_numbers("330727", both, owner_code="330727")  # its own number, but no case under it
    assert not answers_unknown_numbers("330727001", both)  # a town centre never answers for the others
