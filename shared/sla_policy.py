"""The deadline policy (时限, shared/data/sla_policies.yaml) read into types, once for everyone:
sla enforces it, notify quotes it in 派单 messages, so the clock and the message cannot disagree.

A stage's time is one amount in one unit: `minutes` run on the wall clock; `working_hours` and
`working_days` on working time (the official calendar and the department's hours), except for
round-the-clock departments (`working_hours.always`), whose clock never stops.
"""

from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

import yaml

# A department's stages, and the dispatch centre's own: ruling on a returned case (退单仲裁).
STAGES = ("acknowledge", "joint_plan", "resolve", "arbitrate")
UNITS = ("minutes", "working_hours", "working_days")

# Working periods of a day, e.g. ((08:30, 12:00), (13:30, 17:30)), in the policy's time zone.
Periods = tuple[tuple[time, time], ...]


class InvalidPolicy(ValueError):
    pass


@dataclass(frozen=True)
class NoticePolicy:
    """通报: `breaches` missed deadlines (督办) of one department within `days` days produce a
    notice to the county leadership group and the department's head; one notice per department
    per `days` days."""

    breaches: int = 3
    days: int = 30


@dataclass(frozen=True)
class Duration:
    """How long a stage may take: `amount` of `unit` (one of UNITS)."""

    unit: str
    amount: float


@dataclass(frozen=True)
class SlaPolicy:
    version: str
    timezone: str
    warning_ratio: float  # 催办 when this share of a stage's time is used
    reminder_every_minutes: dict[str, float]  # priority → minutes between repeated 催办
    stages: dict[str, dict[str, Duration]]  # priority → stage → duration
    levels: dict[str, dict[str, dict[str, Duration]]]  # level → priority → stage → duration, over `stages`
    default_hours: Periods
    department_hours: dict[str, Periods]  # departments with hours of their own
    always: frozenset[str]  # round-the-clock departments
    # The department whose group the dispatch centre reads: its own deadlines (仲裁) count there.
    dispatcher_department: str = "grid_center"
    # 通报 for repeated breaches; None when the policy asks for none.
    notices: NoticePolicy | None = None
    # Stages reminded at a share of their own (接单 at half its time, when the backup on duty is
    # @-mentioned with the 催办); the others at `warning_ratio`.
    stage_warning_ratios: dict[str, float] = field(default_factory=dict)

    def duration(self, *, priority: str, level: str, stage: str) -> Duration:
        """A stage's time at a level: the level's own entry wins over the priority's default."""
        return self.levels.get(level, {}).get(priority, {}).get(stage) or self.stages[priority][stage]

    def warning_ratio_of(self, stage: str) -> float:
        """The share of a stage's time after which it is reminded (催办)."""
        return self.stage_warning_ratios.get(stage, self.warning_ratio)

    def round_the_clock(self, department_code: str) -> bool:
        return department_code in self.always


def _duration(where: str, spec: Any) -> Duration:
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in UNITS:
        raise InvalidPolicy(f"{where}: one of {list(UNITS)} expected")
    ((unit, amount),) = spec.items()
    if not isinstance(amount, (int, float)) or amount <= 0:
        raise InvalidPolicy(f"{where}: a positive amount expected")
    return Duration(unit, amount)


def _stages(where: str, by_priority: dict) -> dict[str, dict[str, Duration]]:
    result = {}
    for priority, stages in by_priority.items():
        unknown = set(stages) - set(STAGES)
        if unknown:
            raise InvalidPolicy(f"{where}.{priority}: unknown stages {sorted(unknown)}")
        result[priority] = {stage: _duration(f"{where}.{priority}.{stage}", spec) for stage, spec in stages.items()}
    return result


def _periods(where: str, spec: list) -> Periods:
    try:
        periods = tuple((time.fromisoformat(begin), time.fromisoformat(end)) for begin, end in spec)
    except (TypeError, ValueError):
        raise InvalidPolicy(f'{where}: periods like ["08:30", "12:00"] expected') from None
    if any(begin >= end for begin, end in periods):
        raise InvalidPolicy(f"{where}: a period must end after it begins")
    return tuple(sorted(periods))


def _notices(spec: Any) -> NoticePolicy | None:
    if spec is None:
        return None
    if not isinstance(spec, dict) or set(spec) != {"breaches", "days"}:
        raise InvalidPolicy("notices: {breaches: <count>, days: <days>} expected")
    breaches, days = spec["breaches"], spec["days"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (breaches, days)):
        raise InvalidPolicy("notices: breaches and days must be positive whole numbers")
    return NoticePolicy(breaches=breaches, days=days)


def _ratio(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise InvalidPolicy(f"{where} must be a number between 0 and 1")
    return float(value)


def parse_sla_policy(document: dict[str, Any]) -> SlaPolicy:
    """The typed policy from the YAML document; raises InvalidPolicy for what sla could not enforce."""
    try:
        warning_ratio = _ratio("warning_ratio", document.get("warning_ratio", 0.8))
        stage_ratios = {
            stage: _ratio(f"stage_warning_ratio.{stage}", ratio)
            for stage, ratio in (document.get("stage_warning_ratio") or {}).items()
        }
        if unknown := sorted(set(stage_ratios) - set(STAGES)):
            raise InvalidPolicy(f"stage_warning_ratio: unknown stages {unknown}; stages are {list(STAGES)}")
        stages = _stages("stages", document["stages"])
        for priority, durations in stages.items():  # a deadline sla cannot compute would fail a case later
            if missing_stages := [stage for stage in STAGES if stage not in durations]:
                raise InvalidPolicy(f"stages.{priority}: no time for {missing_stages}")
        levels = {
            level: _stages(f"levels.{level}", by_priority)
            for level, by_priority in (document.get("levels") or {}).items()
        }
        reminders = {priority: float(minutes) for priority, minutes in document["reminder_every_minutes"].items()}
        missing = set(stages) - set(reminders)
        if missing:
            raise InvalidPolicy(f"reminder_every_minutes: no interval for {sorted(missing)}")
        hours = document["working_hours"]
        return SlaPolicy(
            version=str(document["version"]),
            timezone=document.get("timezone", "Asia/Shanghai"),
            warning_ratio=warning_ratio,
            reminder_every_minutes=reminders,
            stages=stages,
            levels=levels,
            default_hours=_periods("working_hours.default", hours["default"]),
            department_hours={
                code: _periods(f"working_hours.departments.{code}", spec)
                for code, spec in (hours.get("departments") or {}).items()
            },
            always=frozenset(hours.get("always") or ()),
            dispatcher_department=str(document.get("dispatcher_department", "grid_center")),
            notices=_notices(document.get("notices")),
            stage_warning_ratios=stage_ratios,
        )
    except KeyError as missing:
        raise InvalidPolicy(f"the policy lacks {missing}") from None


def load_sla_policy(path: Path) -> SlaPolicy:
    """Read and check the policy file (at startup, so a broken file stops the service)."""
    return parse_sla_policy(yaml.safe_load(path.read_text(encoding="utf-8")))
