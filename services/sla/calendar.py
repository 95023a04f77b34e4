"""Working time: the official Chinese calendar (holidays and adjusted working days, 调休, from the
chinese-calendar package) and a department's working hours, in China Standard Time."""

import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from services.sla.metrics import CALENDAR_FALLBACKS

log = logging.getLogger(__name__)
CST = ZoneInfo("Asia/Shanghai")
Period = tuple[time, time]


def official_workday(day: date) -> bool:
    """A working day by the State Council's calendar; plain weekdays where it has no data yet."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        # The package covers the years whose holiday notice is published; later years fall back
        # to Monday–Friday until a package update brings the new notice.
        log.warning("no official calendar for %s; using Monday-Friday", day.year)
        CALENDAR_FALLBACKS.inc()
        return day.weekday() < 5


class WorkingTime:
    """Adds working minutes to an instant and measures working minutes between two instants."""

    def __init__(self, periods: list[Period], *, is_workday: Callable[[date], bool] = official_workday, tz=CST):
        self.periods, self.is_workday, self.tz = sorted(periods), is_workday, tz

    def _spans(self, start: datetime):
        """Working spans (local datetimes) from `start` on, forever."""
        local = start.astimezone(self.tz)
        day = local.date()
        while True:
            if self.is_workday(day):
                for begin, end in self.periods:
                    span_start = datetime.combine(day, begin, self.tz)
                    span_end = datetime.combine(day, end, self.tz)
                    if span_end > local:
                        yield max(span_start, local), span_end
            day += timedelta(days=1)

    def add(self, start: datetime, minutes: float) -> datetime:
        """The instant `minutes` of working time after `start`."""
        remaining = timedelta(minutes=minutes)
        for begin, end in self._spans(start):
            if end - begin >= remaining:
                return (begin + remaining).astimezone(start.tzinfo)
            remaining -= end - begin
        raise AssertionError("unreachable")

    def between(self, start: datetime, end: datetime) -> float:
        """Working minutes from `start` to `end` (0 if end is not after start)."""
        total = timedelta()
        for begin, span_end in self._spans(start):
            if begin >= end:
                break
            total += min(span_end, end) - begin
        return total.total_seconds() / 60


class WallClock:
    """Round-the-clock time: urgent cases and 24-hour services."""

    def add(self, start: datetime, minutes: float) -> datetime:
        return start + timedelta(minutes=minutes)

    def between(self, start: datetime, end: datetime) -> float:
        return max((end - start).total_seconds() / 60, 0.0)
