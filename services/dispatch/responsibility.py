"""The responsibility list (责任清单) as pure rules: who leads and who co-handles a category,
at which level of the county → town → village hierarchy, under which list version.

A division code's length says its level: 6 digits county, 9 town (乡镇/街道), 12 village (村/社区).
Town and village rules are inherited by every town/village and can be overridden (or removed
with null) for one division code. The county's rule for a category is the taxonomy's default.
"""

from dataclasses import dataclass
from typing import Any

from shared.taxonomy import Taxonomy

LEVEL_OF_LENGTH = {6: "county", 9: "town", 12: "village"}
MANUAL_TRIAGE_CATEGORY = "other"


class InvalidResponsibilityList(ValueError):
    """A list document names an unknown category, department, level or division: every problem,
    each with where it is (`levels.town.manhole`, `overrides.330727001`, `version`)."""

    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__("；".join(f"{where}：{message}" for where, message in errors))
        self.errors = errors


def level_of(code: str) -> str:
    """county, town or village, from the length of a division code."""
    try:
        return LEVEL_OF_LENGTH[len(code)]
    except KeyError:
        raise ValueError(f"{code!r} is not a 6, 9 or 12 digit division code") from None


def ancestors(code: str) -> list[str]:
    """The code and its parents, deepest first: village, town, county."""
    return [code[:n] for n in (12, 9, 6) if len(code) >= n]


@dataclass(frozen=True)
class Rule:
    jurisdiction_code: str
    level: str
    lead: str
    co_handlers: tuple[str, ...]
    source: str  # which entry of the list decided, recorded with every dispatch

    def describe(self, category: str) -> str:
        return f"{self.source}:{category}->{self.lead}"


@dataclass(frozen=True)
class ResponsibilityList:
    version: str
    taxonomy: Taxonomy
    co_handlers: dict[str, tuple[str, ...]]
    levels: dict[str, dict[str, dict | None]]
    overrides: dict[str, dict[str, dict | None]]

    def rule_at(self, *, jurisdiction_code: str, category: str) -> Rule | None:
        """The rule for a category at exactly this division, if that division handles it."""
        level = level_of(jurisdiction_code)
        override = self.overrides.get(jurisdiction_code, {})
        if category in override:
            spec, source = override[category], f"override:{jurisdiction_code}"
        elif level == "county":
            entry = self.taxonomy.categories[category]
            spec, source = {"lead": entry.department_code}, "county"
        else:
            spec, source = self.levels.get(level, {}).get(category), level
        if spec is None:
            return None
        co = tuple(spec.get("co", self.co_handlers.get(category, ()) if level == "county" else ()))
        return Rule(jurisdiction_code, level, spec["lead"], co, source)

    def document(self) -> dict[str, Any]:
        """The editable part of the list, as stored for each version."""
        return {
            "version": self.version,
            "co_handlers": {k: list(v) for k, v in self.co_handlers.items()},
            "levels": self.levels,
            "overrides": self.overrides,
        }


def build_list(*, taxonomy: Taxonomy, document: dict[str, Any]) -> ResponsibilityList:
    """Validate a list document against the taxonomy; every error is reported, not only the first."""
    departments, categories = taxonomy.departments, taxonomy.categories
    errors: list[tuple[str, str]] = []

    def check_spec(where: str, category: str, spec: Any) -> None:
        if category not in categories:
            errors.append((f"{where}.{category}", f"没有「{category}」这个类别"))
            return
        if spec is None:
            return
        if not isinstance(spec, dict) or spec.get("lead") not in departments:
            lead = spec.get("lead") if isinstance(spec, dict) else spec
            message = "请选择主办部门" if lead in (None, "") else f"主办部门「{lead}」不是已知部门"
            errors.append((f"{where}.{category}", message))
            return
        unknown = [co for co in spec.get("co", []) if co not in departments]
        if unknown:
            errors.append((f"{where}.{category}", f"协办部门「{'、'.join(map(str, unknown))}」不是已知部门"))

    co_handlers = {}
    for category, codes in (document.get("co_handlers") or {}).items():
        unknown = [code for code in codes if code not in departments]
        if category not in categories:
            errors.append((f"co_handlers.{category}", f"没有「{category}」这个类别"))
        elif unknown:
            errors.append((f"co_handlers.{category}", f"协办部门「{'、'.join(map(str, unknown))}」不是已知部门"))
        else:
            co_handlers[category] = tuple(codes)
    levels = document.get("levels") or {}
    for level, rules in levels.items():
        if level not in ("town", "village"):
            errors.append((f"levels.{level}", f"没有「{level}」这个层级（只有 town 乡镇、village 村社区）"))
            continue
        for category, spec in (rules or {}).items():
            check_spec(f"levels.{level}", category, spec)
    overrides = {str(k): v or {} for k, v in (document.get("overrides") or {}).items()}
    for code, rules in overrides.items():
        if len(code) not in LEVEL_OF_LENGTH or not code.isdigit():
            errors.append((f"overrides.{code}", f"「{code}」不是 6、9 或 12 位的区划代码"))
            continue
        for category, spec in rules.items():
            check_spec(f"overrides.{code}", category, spec)
    version = str(document.get("version") or "").strip()
    if not version:
        errors.append(("version", "请填写版本号"))
    if errors:
        raise InvalidResponsibilityList(errors)
    return ResponsibilityList(version, taxonomy, co_handlers, {k: dict(v or {}) for k, v in levels.items()}, overrides)


@dataclass(frozen=True)
class OwnerDecision:
    jurisdiction_code: str  # the dispatch centre that owns the case
    level: str
    category: str
    rule: Rule
    list_version: str  # recorded with the dispatch it decides


def decide_owner(
    *,
    rlist: ResponsibilityList,
    centres: frozenset[str],
    case_jurisdiction: str,
    category: str | None,
    above: str | None = None,
) -> OwnerDecision:
    """The lowest dispatch centre over the case's division with a rule for its category.

    Only divisions that run a dispatch centre can own cases; the county always does and always
    has a rule, so every case has exactly one owner. `above` starts the search over that centre
    (escalation, 上报).
    """
    if category not in rlist.taxonomy.categories:
        category = MANUAL_TRIAGE_CATEGORY
    chain = [c for c in ancestors(case_jurisdiction) if c in centres or len(c) == 6]
    if above is not None:
        chain = [c for c in chain if len(c) < len(above)]
    for code in chain:
        rule = rlist.rule_at(jurisdiction_code=code, category=category)
        if rule is not None:
            return OwnerDecision(code, rule.level, category, rule, rlist.version)
    raise ValueError(f"no centre above {above} for {case_jurisdiction}")
