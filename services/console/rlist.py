"""The responsibility list (责任清单) as the admin edits it: one row per (scope, category) with the
lead and co-handling departments, read from and written back to dispatch's list document; the
comparison of two versions; and the editor's page. Dispatch validates and publishes; this module
only turns the document into rows and back, and places dispatch's errors next to their rows.

Scopes: "county" rows name a category's co-handlers at the county (the lead there is the
taxonomy's department for the category); "town" and "village" rows are the rules every town or
village follows; a division code's row overrides them for that division. A row whose lead is
NOT_HERE says the category is not handled at that level (it goes up)."""

import re
from dataclasses import dataclass, field
from typing import Any

from shared.auth import Actor

NOT_HERE = "-"
LEVEL_SCOPES = {"county": "县级（协办部门）", "town": "各乡镇（街道）", "village": "各村（社区）"}
SEPARATORS = re.compile(r"[、,，;；\s]+")


@dataclass
class Row:
    scope: str
    category: str
    lead: str = ""
    co: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return self.scope, self.category

    def place(self) -> str:
        """Where the row is in dispatch's document, as dispatch's errors name it."""
        if self.scope == "county":
            return f"co_handlers.{self.category}"
        if self.scope in LEVEL_SCOPES:
            return f"levels.{self.scope}.{self.category}"
        return f"overrides.{self.scope}.{self.category}"


def rows_of(document: dict[str, Any]) -> list[Row]:
    """A list document as editor rows: county co-handlers, level rules, then division overrides."""
    rows = [Row("county", category, "", list(codes)) for category, codes in (document.get("co_handlers") or {}).items()]
    scoped = [(level, rules) for level, rules in (document.get("levels") or {}).items()]
    scoped += [(code, rules) for code, rules in sorted((document.get("overrides") or {}).items())]
    for scope, rules in scoped:
        for category, spec in (rules or {}).items():
            if spec is None:
                rows.append(Row(scope, category, NOT_HERE))
            else:
                rows.append(Row(scope, category, str(spec.get("lead") or ""), list(spec.get("co") or [])))
    return rows


def document_of(rows: list[Row], *, version: str) -> dict[str, Any]:
    """Editor rows as a list document (what dispatch validates and publishes)."""
    document: dict[str, Any] = {"version": version, "co_handlers": {}, "levels": {}, "overrides": {}}
    for row in rows:
        if row.scope == "county":
            document["co_handlers"][row.category] = row.co
            continue
        spec = None if row.lead == NOT_HERE else {"lead": row.lead} | ({"co": row.co} if row.co else {})
        part = document["levels"] if row.scope in LEVEL_SCOPES else document["overrides"]
        part.setdefault(row.scope, {})[row.category] = spec
    return document


def department_codes(text: str, departments: dict[str, str]) -> tuple[list[str], list[str]]:
    """Departments typed by name or code, separated by 、 or commas: (codes, what was not recognised)."""
    by_name = {name: code for code, name in departments.items()}
    codes, unknown = [], []
    for word in filter(None, SEPARATORS.split(text.strip())):
        code = word if word in departments else by_name.get(word)
        if code is None:
            unknown.append(word)
        elif code not in codes:
            codes.append(code)
    return codes, unknown


def scope_names(divisions: dict[str, str]) -> dict[str, str]:
    """What the editor shows in the scope column (a level's or a division's Chinese name) → scope."""
    return {label: level for level, label in LEVEL_SCOPES.items()} | {name: code for code, name in divisions.items()}


def scope_label(scope: str, divisions: dict[str, str]) -> str:
    return LEVEL_SCOPES.get(scope) or divisions.get(scope) or scope


def rows_from_form(form, departments: dict[str, str], named: dict[str, str] | None = None) -> list[Row]:
    """The editor's table as rows, each with the errors found before asking dispatch (an unknown
    department name, the same scope and category twice, a scope that is not a division). The scope
    is typed as a name (`named`: name → scope) or as a level or division code."""
    named = named or {}
    scopes, categories = form.getlist("scope"), form.getlist("category")
    leads, cos = form.getlist("lead"), form.getlist("co")
    rows: list[Row] = []
    seen: set[tuple[str, str]] = set()
    for scope, category, lead, co in zip(scopes, categories, leads, cos, strict=False):
        scope, category, lead = str(scope).strip(), str(category).strip(), str(lead).strip()
        scope = named.get(scope, scope)
        if not category:  # an empty row of the editor
            continue
        codes, unknown = department_codes(str(co), departments)
        row = Row(scope, category, lead, codes)
        if unknown:
            row.errors.append(f"不认识的部门：{'、'.join(unknown)}（请写部门全称，用顿号分隔）")
        if scope not in LEVEL_SCOPES and not (scope.isdigit() and len(scope) in (6, 9, 12)):
            row.errors.append("适用范围请从列表中选择，或填写 6、9、12 位的区划代码")
        if scope != "county" and not lead:
            row.errors.append("请选择主办部门（或选「不在本级办理」）")
        if row.key in seen:
            row.errors.append("与上面一行的适用范围和类别重复")
        seen.add(row.key)
        rows.append(row)
    return rows


def place_errors(rows: list[Row], errors: list[dict]) -> list[str]:
    """Put dispatch's errors on the rows they name; those that name no row (the version) are returned."""
    by_place = {row.place(): row for row in rows}
    left = []
    for error in errors:
        row = by_place.get(str(error.get("field")))
        if row is None:
            left.append(str(error.get("message")))
        else:
            row.errors.append(str(error.get("message")))
    return left


@dataclass(frozen=True)
class Change:
    scope: str
    category: str
    before: Row | None
    after: Row | None

    @property
    def kind(self) -> str:
        return "新增" if self.before is None else "删除" if self.after is None else "修改"


def compare(older: dict[str, Any], newer: dict[str, Any]) -> list[Change]:
    """What changed from one version to another, row by row."""
    before = {row.key: row for row in rows_of(older)}
    after = {row.key: row for row in rows_of(newer)}
    changes = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old is None or new is None or (old.lead, old.co) != (new.lead, new.co):
            changes.append(Change(key[0], key[1], old, new))
    return changes


def may_edit(actor: Actor) -> bool:
    """Dispatch decides (an admin of the centre's division or above); the page offers the form to admins."""
    return actor.role == "admin"
