"""Pure dispatch rules: which department handles a report, by the responsibility list."""

from dataclasses import dataclass

from shared.taxonomy import Taxonomy

# Reports nobody could classify go to the grid centre for manual triage instead of a guess.
MANUAL_TRIAGE_CATEGORY = "other"


@dataclass(frozen=True)
class RoutingDecision:
    category: str
    category_name: str
    priority: str
    department_code: str
    department_name: str
    list_version: str
    rule: str


def route_report(*, taxonomy: Taxonomy, category: str | None) -> RoutingDecision:
    """Choose the lead department (主办) for a report's category and record the deciding rule."""
    known = category in taxonomy.categories
    entry = taxonomy.categories[category if known else MANUAL_TRIAGE_CATEGORY]
    rule = f"category:{entry.code}->{entry.department_code}" if known else (
        f"unclassified({category or 'none'})->{entry.department_code}"
    )
    return RoutingDecision(
        category=entry.code,
        category_name=entry.name,
        priority=entry.priority,
        department_code=entry.department_code,
        department_name=taxonomy.department_name(entry.department_code),
        list_version=taxonomy.version,
        rule=rule,
    )
