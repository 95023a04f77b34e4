"""Pure SLA rules: deadlines from the shared policy (shared.sla_policy), and what a timer does next.

A timer is one stage (acknowledge, joint_plan, resolve) of one case for one department. It warns
(催办, `sla.warning`) at its stage's warning ratio of its time and again every reminder interval, breaches
(督办, `sla.breached`) at its deadline, and can be paused (extension pending) and resumed.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.sla.calendar import WallClock, WorkingTime
from shared.sla_policy import SlaPolicy


@dataclass(frozen=True)
class Deadline:
    clock: str  # wall | working
    minutes: float  # length of the stage on that clock
    due_at: datetime
    warn_at: datetime


class Policy:
    """The SLA policy (read by shared.sla_policy) with the clocks it runs on: durations per
    (priority, level, stage), working hours per department."""

    def __init__(self, document: SlaPolicy, *, is_workday=None):
        self.document = document
        calendar = {"is_workday": is_workday} if is_workday else {}
        self.working: dict[str | None, WorkingTime] = {}
        self.day_minutes: dict[str | None, float] = {}
        for department, periods in [(None, document.default_hours), *document.department_hours.items()]:
            self.working[department] = WorkingTime(list(periods), **calendar)
            self.day_minutes[department] = sum(
                (datetime.combine(datetime.min, b) - datetime.combine(datetime.min, a)).seconds / 60 for a, b in periods
            )
        self.wall = WallClock()

    def spec(self, *, priority: str, level: str, stage: str) -> tuple[str, float]:
        """(unit, amount) for a stage; a level's entry wins over the default."""
        duration = self.document.duration(priority=priority, level=level, stage=stage)
        return duration.unit, float(duration.amount)

    def deadline(self, *, start: datetime, priority: str, level: str, stage: str, department_code: str) -> Deadline:
        """When a stage started at `start` is due, and when to warn."""
        unit, amount = self.spec(priority=priority, level=level, stage=stage)
        if unit == "minutes" or self.document.round_the_clock(department_code):
            clock = "wall"
            minutes = amount * {"minutes": 1, "working_hours": 60, "working_days": 24 * 60}[unit]
        else:
            clock = f"working:{department_code}" if department_code in self.working else "working"
            day = self.day_minutes.get(department_code, self.day_minutes[None])
            minutes = amount * (60 if unit == "working_hours" else day)
        return self.schedule(clock=clock, minutes=minutes, start=start, elapsed=0.0, stage=stage)

    def clock(self, name: str):
        """`wall`, `working` (default hours) or `working:<department>` (its own hours)."""
        if name == "wall":
            return self.wall
        _, _, department = name.partition(":")
        return self.working.get(department or None, self.working[None])

    def schedule(self, *, clock: str, minutes: float, start: datetime, elapsed: float, stage: str) -> Deadline:
        """Deadline and warning of a stage of `minutes` of which `elapsed` are used, from `start`."""
        c = self.clock(clock)
        due = c.add(start, max(minutes - elapsed, 0))
        warn = c.add(start, max(minutes * self.document.warning_ratio_of(stage) - elapsed, 0))
        return Deadline(clock, minutes, due, warn)

    def reminder_every(self, priority: str) -> timedelta:
        return timedelta(minutes=self.document.reminder_every_minutes[priority])


@dataclass(frozen=True)
class TimerState:
    priority: str
    due_at: datetime
    warn_at: datetime
    reminders: int
    last_reminder_at: datetime | None
    breached: bool


@dataclass(frozen=True)
class Step:
    kind: str | None  # "warning", "breach" or None (nothing due)
    next_fire_at: datetime | None


def next_step(*, timer: TimerState, now: datetime, policy: Policy) -> Step:
    """What a timer does at `now`, and when it next needs attention."""
    if timer.breached:
        return Step(None, None)
    if now >= timer.due_at:
        return Step("breach", None)
    if now >= timer.warn_at:
        every = policy.reminder_every(timer.priority)
        if timer.last_reminder_at is None or now >= timer.last_reminder_at + every:
            return Step("warning", min(now + every, timer.due_at))
        return Step(None, min(timer.last_reminder_at + every, timer.due_at))
    return Step(None, timer.warn_at)


def notice_due(*, breaches_in_window: int, last_notice_at: datetime | None, now: datetime, policy: SlaPolicy) -> bool:
    """通报: a department's missed deadlines within the policy's window reached its count, and it
    had no notice within that window (repeated breaches are noticed once per window, not per breach)."""
    notices = policy.notices
    if notices is None or breaches_in_window < notices.breaches:
        return False
    return last_notice_at is None or now - last_notice_at >= timedelta(days=notices.days)
