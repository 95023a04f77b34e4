"""Working time: the official Chinese calendar (holidays and adjusted working days, 调休) and a
department's working hours, in China Standard Time.

Which days are working days comes, per year and best first, from: a year an admin entered through
the API (stored in `calendar_years`, audited), the data file transcribed from the State Council's
notices (shared/data/holidays.yaml), the chinese-calendar package; and for a year in none of them
(its notice is not published or not entered yet) plain Monday–Friday, loudly: a metric, a log
warning per year, a readiness note and a field the console shows as a banner.
"""

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import yaml

log = logging.getLogger(__name__)
CST = ZoneInfo("Asia/Shanghai")
Period = tuple[time, time]
# Deadlines of a few working days reach this far: a shorter coverage than this is a problem now.
COVERAGE_HORIZON_DAYS = 60


def official_workday(day: date) -> bool:
    """A working day by the chinese-calendar package; plain weekdays where it has no data."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return day.weekday() < 5


def package_covers(year: int) -> bool:
    """Whether the chinese-calendar package carries the State Council's notice for `year`."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
        return True
    except NotImplementedError:
        return False


# --- a year of the official calendar -----------------------------------------------------------


class InvalidCalendar(ValueError):
    """A year's data contradicts itself or the calendar; the message says what to correct."""


@dataclass(frozen=True)
class Holiday:
    name: str
    first: date
    last: date


@dataclass(frozen=True)
class MadeUpDay:
    """A Saturday or Sunday worked instead of a holiday (调休上班)."""

    day: date
    holiday: str


@dataclass(frozen=True)
class CalendarYear:
    year: int
    source: str  # the notice it was transcribed from
    holidays: tuple[Holiday, ...]
    workdays: tuple[MadeUpDay, ...]

    def days_off(self) -> frozenset[date]:
        return frozenset(h.first + timedelta(days=i) for h in self.holidays for i in range((h.last - h.first).days + 1))

    def days_worked(self) -> frozenset[date]:
        return frozenset(w.day for w in self.workdays)

    def as_document(self) -> dict[str, Any]:
        """The year as the data file and the API write it."""
        return {
            "source": self.source,
            "holidays": [
                {"name": h.name, "first": h.first.isoformat(), "last": h.last.isoformat()} for h in self.holidays
            ],
            "workdays": [{"date": w.day.isoformat(), "for": w.holiday} for w in self.workdays],
        }


def _as_date(value: Any, what: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidCalendar(f"{what}: {value!r} is not a date; write it as YYYY-MM-DD.") from None


def calendar_year(*, year: int, source: str, holidays: Iterable[Mapping], workdays: Iterable[Mapping]) -> CalendarYear:
    """A year's holidays and made-up working days, checked: every date in the year, holidays not
    overlapping, made-up days on a Saturday or Sunday outside every holiday."""
    if not source.strip():
        raise InvalidCalendar(
            f"{year}: name the notice the dates come from (source), e.g. 国务院办公厅关于{year}年部分节假日安排的通知."
        )
    ranges = []
    for h in holidays:
        name = str(h.get("name") or "").strip()
        first, last = _as_date(h.get("first"), f"{year} {name} first"), _as_date(h.get("last"), f"{year} {name} last")
        if not name:
            raise InvalidCalendar(f"{year}: every holiday needs its name (元旦, 春节, …).")
        if first > last:
            raise InvalidCalendar(f"{year} {name}: first ({first}) is after last ({last}); swap them.")
        if first.year != year or last.year != year:
            raise InvalidCalendar(f"{year} {name}: {first}..{last} is not within {year}; enter it under its own year.")
        ranges.append(Holiday(name, first, last))
    ranges.sort(key=lambda h: h.first)
    for before, after in zip(ranges, ranges[1:], strict=False):
        if after.first <= before.last:
            raise InvalidCalendar(
                f"{year}: {before.name} and {after.name} overlap on {after.first}; correct one range."
            )
    result = CalendarYear(year, source.strip(), tuple(ranges), ())
    off = result.days_off()
    made_up = []
    for w in workdays:
        day = _as_date(w.get("date"), f"{year} workday")
        if day.year != year:
            raise InvalidCalendar(f"{year}: workday {day} is not within {year}; enter it under its own year.")
        if day.weekday() < 5:
            raise InvalidCalendar(
                f"{year}: {day} is a weekday, a working day anyway; list only Saturdays and Sundays worked."
            )
        if day in off:
            raise InvalidCalendar(f"{year}: {day} is both a holiday and a working day; remove it from one of them.")
        made_up.append(MadeUpDay(day, str(w.get("for") or "").strip()))
    if len({m.day for m in made_up}) != len(made_up):
        raise InvalidCalendar(f"{year}: a working day is listed twice; list each date once.")
    return CalendarYear(year, result.source, result.holidays, tuple(sorted(made_up, key=lambda m: m.day)))


def load_calendar_file(path: Path) -> dict[int, CalendarYear]:
    """The years of the data file, each checked as the API checks an admin's entry."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {
        int(year): calendar_year(
            year=int(year),
            source=str(entry.get("source", "")),
            holidays=entry.get("holidays") or [],
            workdays=entry.get("workdays") or [],
        )
        for year, entry in (document.get("years") or {}).items()
    }


# --- the calendar sla runs on --------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """How far ahead of `today` the calendar has official data."""

    today: date
    covered_through: date | None  # last day of the covered run starting today; None: today is not covered
    horizon_days: int

    @property
    def days_ahead(self) -> int:
        return 0 if self.covered_through is None else (self.covered_through - self.today).days + 1

    @property
    def first_uncovered(self) -> date:
        return self.today if self.covered_through is None else self.covered_through + timedelta(days=1)

    @property
    def ok(self) -> bool:
        return self.days_ahead >= self.horizon_days

    def message(self) -> str | None:
        """What the console's banner says to staff when the next `horizon_days` are not covered: whom to
        ask and what to check meanwhile. The API to enter a year is the operators' (log and readiness)."""
        if self.ok:
            return None
        year = self.first_uncovered.year
        return (
            f"{year}年的法定节假日安排尚未录入：自{self.first_uncovered:%Y-%m-%d}起，工作日时限按周一至周五计算，"
            f"元旦、春节等假期会被当作工作日。请联系系统管理员，按国务院办公厅关于{year}年部分节假日安排的通知"
            "录入节假日；录入前请人工核对跨节假日的办理时限。"
        )


class OfficialCalendar:
    """Working days by the State Council's notices: admin-entered years, then the data file, then
    the chinese-calendar package, then (loudly) Monday–Friday."""

    def __init__(
        self,
        *,
        file_years: Mapping[int, CalendarYear],
        stored_years: Mapping[int, CalendarYear] | None = None,
        package_covers: Callable[[int], bool] = package_covers,
        package_workday: Callable[[date], bool] = official_workday,
        on_fallback: Callable[[int], None] | None = None,
    ):
        self.file_years = dict(file_years)
        self.package_covers, self.package_workday = package_covers, package_workday
        self.on_fallback = on_fallback
        self._warned: set[int] = set()
        self.use_stored(stored_years or {})

    def use_stored(self, stored_years: Mapping[int, CalendarYear]) -> None:
        """Take the admin-entered years (read from the database) on top of the file."""
        self.stored_years = dict(stored_years)
        self._days: dict[int, tuple[frozenset[date], frozenset[date]]] = {
            year: (entry.days_off(), entry.days_worked())
            for year, entry in (self.file_years | self.stored_years).items()
        }
        self._warned -= set(self._days)

    def source_of(self, year: int) -> str | None:
        """api, file or package: where `year`'s data comes from; None when nowhere."""
        if year in self.stored_years:
            return "api"
        if year in self.file_years:
            return "file"
        return "package" if self.package_covers(year) else None

    def year(self, year: int) -> CalendarYear | None:
        return self.stored_years.get(year) or self.file_years.get(year)

    def is_workday(self, day: date) -> bool:
        known = self._days.get(day.year)
        if known is not None:
            off, worked = known
            return day in worked or (day.weekday() < 5 and day not in off)
        if self.package_covers(day.year):
            return self.package_workday(day)
        if day.year not in self._warned:
            self._warned.add(day.year)
            log.warning(
                "no official calendar for %s: working days there are Monday-Friday (holidays count as working "
                "days) until an admin enters the State Council's notice (PUT /api/v1/calendar/years/%s)",
                day.year,
                day.year,
            )
        if self.on_fallback is not None:
            self.on_fallback(day.year)
        return day.weekday() < 5

    def coverage(self, today: date, *, horizon_days: int = COVERAGE_HORIZON_DAYS) -> Coverage:
        """Covered days from `today` on: whole years in a row that have data."""
        year = today.year
        while self.source_of(year) is not None and year < today.year + 100:
            year += 1
        through = date(year - 1, 12, 31) if year > today.year else None
        return Coverage(today, through, horizon_days)


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
