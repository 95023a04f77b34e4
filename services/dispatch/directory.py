"""The directory (通讯录) and duty rosters (值班表): pure rules — who a person may be, what a shift
is, who may manage whom, and reading a CSV of people with every error located by line."""

import csv
import io
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from shared.auth import Actor

# The token roles (shared/auth.py) and the directory's own: 网格长 leads a village's grid workers,
# 网长 (as in 璧山's 网长制) runs a grid's residents' WeChat group.
DIRECTORY_ROLES = ("dispatcher", "handler", "grid_worker", "supervisor", "admin", "grid_leader", "group_owner")
Role = Literal["dispatcher", "handler", "grid_worker", "supervisor", "admin", "grid_leader", "group_owner"]
ROLE_LABELS = {
    "dispatcher": "调度员",
    "handler": "处置人员",
    "grid_worker": "网格员",
    "supervisor": "督查员",
    "admin": "管理员",
    "grid_leader": "网格长",
    "group_owner": "网长",
}
DIVISION_CODE = r"^\d{6}(\d{3}){0,2}(\d{3})?$"  # county, town, village or grid
MOBILE = r"^1[3-9]\d{9}$"  # mainland mobile numbers, as intake accepts reporters'
CSV_COLUMNS = ("person_id", "name", "wecom_user_id", "mobile", "role", "jurisdiction_code", "department_code")


class PersonRole(BaseModel):
    role: Role
    jurisdiction_code: str = Field(pattern=DIVISION_CODE, description="division (or grid) the role is in")
    department_code: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{1,40}$")

    @model_validator(mode="after")
    def _handlers_name_their_department(self) -> "PersonRole":
        if self.role == "handler" and not self.department_code:
            raise ValueError("a handler names their department (department_code)")
        return self


class PersonIn(BaseModel):
    """A person as an admin enters them; the mobile is encrypted as soon as it arrives."""

    name: str = Field(min_length=1, max_length=50)
    wecom_user_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    mobile: str | None = Field(default=None, pattern=MOBILE)
    roles: list[PersonRole] = Field(min_length=1)
    active: bool = True


class ShiftIn(BaseModel):
    """One shift of a department's duty roster (值班): on duty and backup, from .. to."""

    department_code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,40}$")
    jurisdiction_code: str = Field(pattern=DIVISION_CODE)
    starts_at: datetime
    ends_at: datetime
    on_duty: str = Field(min_length=1, max_length=128)
    backup: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _a_real_time_range(self) -> "ShiftIn":
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("times carry their offset (e.g. 2026-12-02T08:30:00+08:00)")
        if self.ends_at <= self.starts_at:
            raise ValueError("a shift ends after it starts")
        if self.backup == self.on_duty:
            raise ValueError("the backup is someone other than the person on duty")
        return self


# Which of a person's roles a WeCom session (the mobile work page) acts in, first found first: the
# roles that work on site before those that work at a desk. The directory-only roles (网格长, 网长)
# have no token role yet.
SESSION_ROLE_ORDER = ("handler", "grid_worker", "dispatcher", "supervisor", "admin")
NOT_IN_DIRECTORY = "您的企业微信账号（{userid}）不在通讯录中或已停用，请联系管理员在通讯录中添加您的企业微信账号。"


def session_role(roles: list[dict]) -> dict | None:
    """The role a WeCom session of someone with these directory roles acts in, or None."""
    for wanted in SESSION_ROLE_ORDER:
        for role in roles:
            if role["role"] == wanted:
                return role
    return None


def holds(roles: list[dict], actor: Actor) -> bool:
    """Whether the directory still gives the person the role their session acts in."""
    return any(
        r["role"] == actor.role
        and r["jurisdiction_code"] == actor.jurisdiction_code
        and (r["department_code"] or None) == (actor.department_code or None)
        for r in roles
    )


def manages(*, admin: Actor, jurisdiction_code: str) -> bool:
    """An admin manages the people and rosters of their division and below."""
    return admin.role == "admin" and jurisdiction_code.startswith(admin.jurisdiction_code)


def serves_department(roles: list[dict], *, department_code: str, jurisdiction_code: str) -> bool:
    """Whether someone with these roles may stand a duty shift of this department here: a handler of
    the department in this division or above, or a dispatcher of this division or above."""
    return any(
        jurisdiction_code.startswith(r["jurisdiction_code"])
        and (r["role"] == "dispatcher" or (r["role"] == "handler" and r["department_code"] == department_code))
        for r in roles
    )


class CsvError(BaseModel):
    line: int
    error: str


def read_people_csv(text: str, *, admin: Actor) -> tuple[dict[str, PersonIn], list[CsvError]]:
    """People from a CSV (UTF-8, a header line, one row per role of a person: the person's own
    columns repeat and must agree), each role within the admin's division. All rows are read;
    every error comes with its line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))  # Excel's UTF-8 starts with a BOM
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return {}, [CsvError(line=1, error=f"the header lacks the columns: {', '.join(missing)}")]
    people: dict[str, PersonIn] = {}
    errors: list[CsvError] = []
    for row in reader:
        line = reader.line_num
        values = {k: (row.get(k) or "").strip() or None for k in CSV_COLUMNS}
        person_id = values["person_id"]
        if not person_id:
            errors.append(CsvError(line=line, error="person_id is empty"))
            continue
        try:
            # The person's own columns and the role's are checked together, so a row's every
            # mistake is reported at once.
            person = PersonIn.model_validate(
                {
                    "name": values["name"] or "",
                    "wecom_user_id": values["wecom_user_id"],
                    "mobile": values["mobile"],
                    "roles": [
                        {
                            "role": values["role"],
                            "jurisdiction_code": values["jurisdiction_code"] or "",
                            "department_code": values["department_code"],
                        }
                    ],
                }
            )
        except ValidationError as error:
            fields = "; ".join(f"{str(e['loc'][-1]) if e['loc'] else 'row'}: {e['msg']}" for e in error.errors())
            errors.append(CsvError(line=line, error=fields))
            continue
        role = person.roles[0]
        if not manages(admin=admin, jurisdiction_code=role.jurisdiction_code):
            errors.append(CsvError(line=line, error=f"{role.jurisdiction_code} is outside your jurisdiction"))
            continue
        earlier = people.get(person_id)
        if earlier is None:
            people[person_id] = person
        elif (earlier.name, earlier.wecom_user_id, earlier.mobile) != (
            person.name,
            person.wecom_user_id,
            person.mobile,
        ):
            errors.append(CsvError(line=line, error=f"{person_id}'s name, wecom_user_id or mobile differ from above"))
        elif role not in earlier.roles:
            earlier.roles.append(role)
    if not people and not errors:
        errors.append(CsvError(line=1, error="the file lists nobody"))
    return people, errors
