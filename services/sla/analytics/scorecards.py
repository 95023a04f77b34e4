"""Scorecards (三率) and the seeds' loop: the pure rules, no I/O.

A case's life is folded into *rounds*: one per department per dispatch (派单, 转派, 改类, 重新办理,
arrival after 上报). The lead department (主办) and each co-handling department (协办) of a dispatch
get a round each; every figure is counted on rounds, so who a figure belongs to is always the
department that held the stage.

Rules (what counts, and for whom):

* 及时签收率 — per round (lead and co): acknowledged (接单) without the acknowledgement deadline
  breaching, over rounds acknowledged or breached. A round transferred away before its deadline,
  unacknowledged, counts for nobody; one transferred after its deadline passed counts late for the
  department that had it.
* 按期办结率 — per lead round: resolved (办结) without its resolution deadline breaching, over lead rounds
  resolved or breached. Extensions and questions to the reporter move the deadline (sla pauses it),
  so a case resolved within an approved extension is on time.
* 督办 count — breached stages (acknowledge, joint plan, resolve) of the department's rounds: the
  sla.breached events, each belonging to the department it names.
* 群众满意率 — per rated lead round: rating 4 or 5 (满意/基本满意) over rated rounds; the rating (回访)
  belongs to the department whose resolution was rated. Automatic 回访 without a rating is not counted.
* 回潮率 — per resolved lead round: the case was reopened (重新办理) after this resolution, or a later
  case was flagged as the same problem at the same place (recurrence_of), over resolved rounds. It
  belongs to the department that resolved it, not to the one that gets it again.
* 退单率 — per lead round: returned (退回) over lead rounds received. A returned round waits for the
  dispatcher's ruling (退单仲裁): upheld, the case goes to another department and the round ends
  (`uphold_return`); overruled, it goes on with the same department and its clocks.
* 退单驳回率 — per returned lead round: its return was overruled (the department was wrong to
  return it) over returned rounds. Disputes and their outcomes are the department's.
* workload — lead rounds received and cases handled.
* stage times — minutes from the round's dispatch to acknowledgement, to the joint plan, to the
  resolution (wall clock, pauses included: what the resident waited), median and p90.

A period holds the rounds dispatched in it (Beijing time). A rate with no unit in it is None —
"无数据" — never 0 % or 100 %. Ranking uses the Wilson score lower bound (95 %), so three cases out of
three do not outrank 290 out of 300; the sample size is always shown next to the rate.
"""

import copy
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

NO_DATA = "无数据"
SATISFIED_FROM = 4  # ratings 4 (基本满意) and 5 (满意)
Z95 = 1.959963984540054

# The seeds' loop (延吉: report within 5 minutes, claim within 10, joint plan within half an hour,
# most closed within an hour), in minutes.
LOOP_TARGETS = {"discover_report": 5, "claim": 10, "joint_plan": 30, "close": 60}

# Events that start a round, by their action; the rest of a case's events act on running rounds.
BREACH_FLAG = {"acknowledge": "ack_late", "joint_plan": "plan_late", "resolve": "resolve_late"}


@dataclass
class Round:
    case_id: UUID
    department_code: str
    started_at: datetime
    lead: bool
    round_no: int
    action: str
    category: str
    priority: str
    case_no: str | None = None
    jurisdiction_code: str | None = None
    town_code: str | None = None
    village_code: str | None = None
    grid_code: str | None = None
    joint: bool = False  # the lead round of a case with co-handlers needs a joint plan
    acknowledged_at: datetime | None = None
    plan_at: datetime | None = None
    resolved_at: datetime | None = None
    returned_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    ack_late: bool = False
    plan_late: bool = False
    resolve_late: bool = False
    reopened: bool = False
    rating: int | None = None
    verified_at: datetime | None = None
    paused_at: datetime | None = None
    paused_minutes: float = 0.0
    extensions: int = 0
    returns_overruled: int = 0

    @property
    def key(self) -> tuple[UUID, str, datetime]:
        return (self.case_id, self.department_code, self.started_at)


@dataclass(frozen=True)
class Breach:
    """An sla.breached event: the stage of the round (case, department, started_at) passed its deadline."""

    case_id: UUID
    department_code: str
    started_at: datetime
    stage: str


def changed(r: Round, **fields: Any) -> Round:
    """A copy of a round with some fields changed (dataclasses.replace runs __init__ over all 30
    fields: the hot spot of a rebuild)."""
    new = copy.copy(r)
    new.__dict__.update(fields)
    return new


def place_of(jurisdiction_code: str | None) -> dict[str, str | None]:
    """Town (9 digits) and village (12 digits) from a division code, as far as it goes."""
    code = jurisdiction_code or ""
    return {
        "town_code": code[:9] if len(code) >= 9 else None,
        "village_code": code[:12] if len(code) >= 12 else None,
    }


def open_rounds(
    rounds: list[Round],
    *,
    case: dict[str, Any],
    started_at: datetime,
    action: str,
    breaches: list[Breach] = (),  # type: ignore[assignment]
) -> list[Round]:
    """A dispatch: running rounds end (the case moved on), new rounds start for lead and co-handlers.

    `case` holds the case facts of the dispatch event (CaseFacts fields). Returns every round of
    the case, changed ones included; a replayed dispatch (same round key) changes nothing."""
    lead, co = (
        case["department_code"],
        [c for c in case.get("co_department_codes") or [] if c != case["department_code"]],
    )
    if any(r.started_at == started_at and r.department_code == lead for r in rounds):
        return rounds
    rounds = [
        changed(r, ended_at=started_at, end_reason=_end_reason(r, action), paused_at=None) if r.ended_at is None else r
        for r in rounds
    ]
    if action == "reopen":  # 回潮: the last resolution did not hold; it counts for its department
        resolved = [r for r in rounds if r.lead and r.resolved_at is not None]
        if resolved:
            last = max(resolved, key=lambda r: r.resolved_at)  # type: ignore[arg-type, return-value]
            rounds = [changed(r, reopened=True) if r is last else r for r in rounds]
    number = max((r.round_no for r in rounds), default=0) + 1
    common = dict(
        case_id=case["case_id"],
        started_at=started_at,
        round_no=number,
        action=action,
        category=case["category"],
        priority=case["priority"],
        case_no=case.get("case_no"),
        jurisdiction_code=case.get("jurisdiction_code"),
        grid_code=case.get("grid_code"),
        **place_of(case.get("jurisdiction_code")),
    )
    new = [Round(department_code=lead, lead=True, joint=bool(co), **common)]
    new += [Round(department_code=d, lead=False, **common) for d in co]
    return mark_breaches(rounds + new, breaches)


def _end_reason(r: Round, action: str) -> str:
    """Why a running round ends at the next dispatch: that dispatch's action, or, for a round held
    by its department's return, the return (upheld by the dispatcher's ruling, or before rulings
    existed, followed by any dispatch elsewhere)."""
    if r.returned_at is None or r.returns_overruled or action == "uphold_return":
        return action
    return "returned"


def apply_step(rounds: list[Round], *, event_type: str, at: datetime, detail: dict[str, Any]) -> list[Round]:
    """A case step (case.acknowledged, case.resolved, …) applied to the case's running rounds."""
    running = [r for r in rounds if r.ended_at is None]
    lead = next((r for r in running if r.lead), None)
    changes: dict[int, dict[str, Any]] = {}  # id(round) -> changed fields

    def change(r: Round | None, **fields: Any) -> None:
        if r is not None:
            changes.setdefault(id(r), {}).update(fields)

    if event_type == "case.acknowledged":
        department = detail.get("department_code") or (lead.department_code if lead else None)
        target = next((r for r in running if r.department_code == department), None)
        if target is not None and target.acknowledged_at is None:
            change(target, acknowledged_at=at)
    elif event_type == "case.plan_submitted":
        if lead is not None and lead.plan_at is None:
            change(lead, plan_at=at)
    elif event_type == "case.resolved":
        change(lead, resolved_at=at)
        for r in running:
            change(r, ended_at=at, end_reason="resolved", paused_at=None)
        if lead is not None and lead.paused_at is not None:
            change(lead, paused_minutes=lead.paused_minutes + _minutes(lead.paused_at, at))
    elif event_type == "case.returned":
        # Held for the dispatcher's ruling: an upheld return ends the round (the next dispatch does),
        # an overruled one lets it go on.
        change(lead, returned_at=at)
    elif event_type == "case.return_overruled":
        if lead is not None:
            change(lead, returns_overruled=lead.returns_overruled + 1)
    elif event_type in ("case.extension_requested", "case.awaiting_reporter"):
        if lead is not None and lead.paused_at is None:
            change(lead, paused_at=at)
    elif event_type in ("case.extension_approved", "case.extension_refused", "case.reporter_replied"):
        if lead is not None and lead.paused_at is not None:
            change(lead, paused_at=None, paused_minutes=lead.paused_minutes + _minutes(lead.paused_at, at))
        if event_type == "case.extension_approved" and lead is not None:
            change(lead, extensions=lead.extensions + 1)
    elif event_type == "case.verified":
        rating = detail.get("rating")
        resolved = [r for r in rounds if r.lead and r.resolved_at is not None]
        if resolved and isinstance(rating, int) and not isinstance(rating, bool):
            last = max(resolved, key=lambda r: r.resolved_at)  # type: ignore[arg-type, return-value]
            change(last, rating=rating, verified_at=at)
    elif event_type in ("case.escalated", "case.merged", "case.cancelled", "case.closed"):
        for r in running:
            change(r, ended_at=at, end_reason=event_type.removeprefix("case."), paused_at=None)
    elif event_type == "case.checked" and detail.get("finding") == "unfounded":  # 不属实: the case is cancelled
        for r in running:
            change(r, ended_at=at, end_reason="unfounded", paused_at=None)
    return [changed(r, **changes[id(r)]) if id(r) in changes else r for r in rounds]


def mark_breaches(rounds: list[Round], breaches: list[Breach]) -> list[Round]:
    """Set each round's late flags from the breaches of its stages (whichever arrived first)."""
    late: dict[tuple[UUID, str, datetime], set[str]] = {}
    for b in breaches:
        if b.stage in BREACH_FLAG:
            late.setdefault((b.case_id, b.department_code, b.started_at), set()).add(BREACH_FLAG[b.stage])
    return [
        changed(
            r,
            ack_late=r.ack_late or "ack_late" in late[r.key],
            plan_late=r.plan_late or "plan_late" in late[r.key],
            resolve_late=r.resolve_late or "resolve_late" in late[r.key],
        )
        if r.key in late
        else r
        for r in rounds
    ]


def mark_recurrences(rounds: list[Round], times: list[datetime]) -> list[Round]:
    """Later cases were the same problem at the same place (回潮), dispatched at `times`: for each,
    the lead round resolved last before it did not hold."""
    marked: set[int] = set()
    for at in times:
        resolved = [r for r in rounds if r.lead and r.resolved_at is not None and r.resolved_at <= at]
        if resolved:
            marked.add(id(max(resolved, key=lambda r: r.resolved_at)))  # type: ignore[arg-type, return-value]
    return [changed(r, reopened=True) if id(r) in marked and not r.reopened else r for r in rounds]


def _minutes(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds() / 60, 0.0)


# --- rates ------------------------------------------------------------------------------------


def wilson_lower_bound(successes: int, n: int, *, z: float = Z95) -> float | None:
    """The lower end of the Wilson score interval: a rate's value for ranking on small samples."""
    if n <= 0:
        return None
    p = successes / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max((centre - margin) / (1 + z * z / n), 0.0)


@dataclass(frozen=True)
class Rate:
    """A share with its sample: `value` is None when nothing was counted (无数据)."""

    numerator: int
    n: int
    value: float | None = field(init=False)
    lower_bound: float | None = field(init=False)

    def __post_init__(self) -> None:
        if not 0 <= self.numerator <= self.n:
            raise ValueError(f"a rate needs 0 <= numerator <= n, got {self.numerator}/{self.n}")
        object.__setattr__(self, "value", self.numerator / self.n if self.n else None)
        object.__setattr__(self, "lower_bound", wilson_lower_bound(self.numerator, self.n))

    @property
    def display(self) -> str:
        """What a Chinese reader sees: '87.5%（7/8）' or '无数据'."""
        if self.value is None:
            return NO_DATA
        return f"{self.value * 100:.1f}%（{self.numerator}/{self.n}）"

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": None if self.value is None else round(self.value, 4),
            "numerator": self.numerator,
            "n": self.n,
            "lower_bound": None if self.lower_bound is None else round(self.lower_bound, 4),
            "display": self.display,
        }


def percent_or_no_data(value: float | None) -> str:
    return NO_DATA if value is None else f"{value * 100:.1f}%"


def minutes_or_no_data(value: float | None) -> str:
    return NO_DATA if value is None else f"{value:.0f} 分钟" if value < 120 else f"{value / 60:.1f} 小时"


def rank(rows: list[dict[str, Any]], *, by: str) -> list[dict[str, Any]]:
    """Rows ordered by the Wilson lower bound of rate `by`, best first; rows without data last,
    unranked. Ties keep the larger sample first."""
    ranked = sorted(
        (r for r in rows if r[by]["lower_bound"] is not None),
        key=lambda r: (-r[by]["lower_bound"], -r[by]["n"]),
    )
    for position, row in enumerate(ranked, 1):
        row["rank"] = position
    rest = [r | {"rank": None} for r in rows if r[by]["lower_bound"] is None]
    return ranked + rest


# --- scorecards from counts ------------------------------------------------------------------

COUNT_FIELDS = (
    "received",
    "cases",
    "ack_on_time",
    "ack_n",
    "resolve_on_time",
    "resolve_n",
    "satisfied",
    "rated",
    "reopened",
    "resolved",
    "returned",
    "returns_overruled",
    "returns_upheld",
    "supervised",
)
TIME_FIELDS = ("ack_median", "ack_p90", "plan_median", "plan_p90", "resolve_median", "resolve_p90")
RATES = {
    # name: (numerator, denominator, what a reader sees)
    "acknowledged_in_time": ("ack_on_time", "ack_n", "及时签收率"),
    "resolved_in_time": ("resolve_on_time", "resolve_n", "按期办结率"),
    "satisfied": ("satisfied", "rated", "群众满意率"),
    "reopened": ("reopened", "resolved", "回潮率"),
    "returned": ("returned", "received", "退单率"),
    "return_overruled": ("returns_overruled", "returned", "退单驳回率"),
}
# Higher is better for these; 回潮率 and 退单率 are better low.
HIGHER_IS_BETTER = {"acknowledged_in_time": True, "resolved_in_time": True, "satisfied": True}


def scorecard(counts: dict[str, Any]) -> dict[str, Any]:
    """One scorecard (a key and period) from its counts: every rate with its sample, the 督办
    count, workload and stage times (minutes, None without data)."""
    card: dict[str, Any] = {name: Rate(counts[num], counts[den]).as_dict() for name, (num, den, _) in RATES.items()}
    card["supervised"] = counts["supervised"]
    card["disputes"] = {
        "returned": counts["returned"],
        "upheld": counts["returns_upheld"],
        "overruled": counts["returns_overruled"],
    }
    card["received"] = counts["received"]
    card["cases"] = counts["cases"]
    card["stage_minutes"] = {
        stage: {
            "median": _round_or_none(counts.get(f"{stage}_median")),
            "p90": _round_or_none(counts.get(f"{stage}_p90")),
        }
        for stage in ("ack", "plan", "resolve")
    }
    return card


def _round_or_none(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def empty_counts() -> dict[str, Any]:
    return dict.fromkeys(COUNT_FIELDS, 0) | dict.fromkeys(TIME_FIELDS)


def period_starts(period: str, since: date, until: date) -> list[date]:
    """The first day of every period from `since` to `until` (weeks start on Monday)."""
    if period == "all":
        return [since]
    if period == "day":
        first = since
    elif period == "week":
        first = since - timedelta(days=since.weekday())
    else:
        first = since.replace(day=1)
    starts = []
    while first <= until:
        starts.append(first)
        if period == "day":
            first += timedelta(days=1)
        elif period == "week":
            first += timedelta(days=7)
        else:
            first = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return starts


def complete_grid(
    rows: list[dict[str, Any]], *, period: str, since: date, until: date, keys: list[str | None] | None = None
) -> list[dict[str, Any]]:
    """Every (key, period) in range, a period without cases as empty counts — so it shows 无数据,
    not a missing row a reader takes for a perfect score."""
    found = {(r["key"], r["period_start"]): r for r in rows}
    all_keys = keys if keys is not None else sorted({r["key"] for r in rows}, key=lambda k: (k is None, k or ""))
    return [
        found.get((key, start)) or {"key": key, "period_start": start, **empty_counts()}
        for key in all_keys
        for start in period_starts(period, since, until)
    ]
