"""The directory's pure rules: roles, shifts, who manages whom, and the CSV of people with every
error located by its line."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.dispatch.directory import PersonIn, PersonRole, ShiftIn, manages, read_people_csv, serves_department
from shared.auth import Actor

ADMIN = Actor("a1", "admin", "330727")
HEADER = "person_id,name,wecom_user_id,mobile,role,jurisdiction_code,department_code\n"


def test_roles_include_grid_leaders_and_group_owners_and_handlers_name_their_department():
    assert PersonRole(role="grid_leader", jurisdiction_code="330727001001").role == "grid_leader"
    assert PersonRole(role="group_owner", jurisdiction_code="330727001001001").role == "group_owner"
    with pytest.raises(ValidationError, match="department"):
        PersonRole(role="handler", jurisdiction_code="330727")
    with pytest.raises(ValidationError):
        PersonRole(role="mayor", jurisdiction_code="330727")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        PersonIn(name="李强", mobile="12345", roles=[PersonRole(role="admin", jurisdiction_code="330727")])


def test_a_shift_is_a_real_time_range_with_two_different_people():
    start, end = datetime(2026, 12, 2, 0, tzinfo=UTC), datetime(2026, 12, 2, 8, tzinfo=UTC)
    shift = dict(department_code="zhujian", jurisdiction_code="330727", on_duty="p1", backup="p2")
    assert ShiftIn(starts_at=start, ends_at=end, **shift).backup == "p2"
    for starts_at, ends_at, changes, reason in [
        (end, start, {}, "ends after"),
        (start, end, {"backup": "p1"}, "someone other"),
        (start.replace(tzinfo=None), end, {}, "offset"),
    ]:
        with pytest.raises(ValidationError, match=reason):
            ShiftIn(starts_at=starts_at, ends_at=ends_at, **(shift | changes))


def test_admins_manage_their_division_and_below_and_duty_needs_the_department():
    assert manages(admin=ADMIN, jurisdiction_code="330727001")
    assert not manages(admin=ADMIN, jurisdiction_code="330781")
    assert not manages(admin=Actor("d", "dispatcher", "330727"), jurisdiction_code="330727")
    handler = [{"role": "handler", "jurisdiction_code": "330727", "department_code": "zhujian"}]
    assert serves_department(handler, department_code="zhujian", jurisdiction_code="330727001")
    assert not serves_department(handler, department_code="chengguan", jurisdiction_code="330727")
    dispatcher = [{"role": "dispatcher", "jurisdiction_code": "330727001", "department_code": None}]
    assert serves_department(dispatcher, department_code="chengguan", jurisdiction_code="330727001")
    assert not serves_department(dispatcher, department_code="chengguan", jurisdiction_code="330727")


def test_a_people_file_merges_a_persons_roles():
    text = (
        "\ufeff"
        + HEADER
        + (
            "p1,李强,liqiang,13800001234,handler,330727,zhujian\n"
            "p1,李强,liqiang,13800001234,dispatcher,330727001,\n"
            "p2,何飞,hefei,,grid_leader,330727001001,\n"
        )
    )
    people, errors = read_people_csv(text, admin=ADMIN)
    assert errors == []
    assert [r.role for r in people["p1"].roles] == ["handler", "dispatcher"] and people["p2"].mobile is None


def test_every_error_of_a_people_file_is_reported_with_its_line():
    text = HEADER + (
        "p1,李强,liqiang,13800001234,handler,330727,zhujian\n"  # 2: fine
        ",无名,,,admin,330727,\n"  # 3: no person_id
        "p2,张伟,zw,123,handler,33072,\n"  # 4: bad mobile, bad division code
        "p1,李强,other,13800001234,admin,330727,\n"  # 5: disagrees with line 2
        "p3,陈静,cj,,supervisor,330781,\n"  # 6: another county
        "p4,赵磊,zl,,chief,330727,\n"  # 7: unknown role
    )
    people, errors = read_people_csv(text, admin=ADMIN)
    assert [e.line for e in errors] == [3, 4, 5, 6, 7]
    assert "mobile" in errors[1].error and "jurisdiction_code" in errors[1].error
    assert "outside your jurisdiction" in errors[3].error
    missing = read_people_csv("person_id,name\np1,李强\n", admin=ADMIN)[1]
    assert missing[0].line == 1 and "wecom_user_id" in missing[0].error
    assert read_people_csv(HEADER, admin=ADMIN)[1][0].error == "the file lists nobody"
