"""The official calendar as data: the file against the package, deadlines across 元旦 and the
Spring Festival from explicit data, coverage of the coming days, and what an admin may enter."""

import logging
from datetime import date, datetime, time, timedelta

import chinese_calendar
import pytest

from services.sla.calendar import (
    CST,
    InvalidCalendar,
    OfficialCalendar,
    WorkingTime,
    calendar_year,
    load_calendar_file,
    package_covers,
)
from services.sla.settings import SlaSettings

HOURS = [(time(8, 30), time(12, 0)), (time(13, 30), time(17, 30))]  # 7.5 working hours a day
DAY = 450  # working minutes in a day


def cst(*args) -> datetime:
    return datetime(*args, tzinfo=CST)


# A test year's data, given here rather than read from the package or the file: the deadlines below
# must not change when either does. (The dates are those of the 2025 and 2026 notices.)
TEST_YEARS = {
    2025: calendar_year(
        year=2025,
        source="测试数据",
        holidays=[{"name": "国庆节", "first": "2025-10-01", "last": "2025-10-08"}],
        workdays=[{"date": "2025-09-28", "for": "国庆节"}, {"date": "2025-10-11", "for": "国庆节"}],
    ),
    2026: calendar_year(
        year=2026,
        source="测试数据",
        holidays=[
            {"name": "元旦", "first": date(2026, 1, 1), "last": date(2026, 1, 3)},
            {"name": "春节", "first": date(2026, 2, 15), "last": date(2026, 2, 23)},
        ],
        workdays=[
            {"date": date(2026, 1, 4), "for": "元旦"},
            {"date": date(2026, 2, 14), "for": "春节"},
            {"date": date(2026, 2, 28), "for": "春节"},
        ],
    ),
}


def explicit_calendar(**kw) -> OfficialCalendar:
    """Only the test years: the package is not consulted."""
    return OfficialCalendar(file_years=TEST_YEARS, package_covers=lambda year: False, **kw)


def test_the_data_file_agrees_with_the_package_day_by_day():
    years = load_calendar_file(SlaSettings().sla_holidays_path)
    package_years = sorted({d.year for d in chinese_calendar.holidays} | {d.year for d in chinese_calendar.workdays})
    assert set(package_years) <= set(years), "every year the package covers is transcribed in the file"
    calendar = OfficialCalendar(file_years=years, package_covers=lambda year: False)
    for year in package_years:
        day = date(year, 1, 1)
        while day.year == year:
            assert calendar.is_workday(day) == chinese_calendar.is_workday(day), day
            day += timedelta(days=1)


def test_the_file_says_what_the_2026_notice_says():
    entry = load_calendar_file(SlaSettings().sla_holidays_path)[2026]
    assert "2026年部分节假日安排" in entry.source
    assert {(h.name, h.first, h.last) for h in entry.holidays} >= {
        ("元旦", date(2026, 1, 1), date(2026, 1, 3)),
        ("春节", date(2026, 2, 15), date(2026, 2, 23)),
        ("国庆节", date(2026, 10, 1), date(2026, 10, 7)),
    }
    assert [w.day for w in entry.workdays] == [
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ]


def test_a_deadline_across_new_year_skips_the_holiday_and_counts_the_made_up_sunday():
    hours = WorkingTime(HOURS, is_workday=explicit_calendar().is_workday)
    # 3 working days from Wednesday 31 Dec 10:00: 360 min that day, 1–3 Jan off, Sunday 4 Jan worked.
    assert hours.add(cst(2025, 12, 31, 10, 0), 3 * DAY) == cst(2026, 1, 6, 10, 0)
    assert hours.between(cst(2025, 12, 31, 10, 0), cst(2026, 1, 6, 10, 0)) == 3 * DAY
    # Without the data (Monday–Friday) the same deadline would fall a day early, on Monday.
    assert WorkingTime(HOURS, is_workday=lambda d: d.weekday() < 5).add(cst(2025, 12, 31, 10, 0), 3 * DAY) == cst(
        2026, 1, 5, 10, 0
    )


def test_a_deadline_across_the_spring_festival_resumes_after_nine_days_off():
    hours = WorkingTime(HOURS, is_workday=explicit_calendar().is_workday)
    # Friday 13 Feb 16:00: 90 min, Saturday 14 Feb worked (450), 15–23 Feb off, Tuesday 24 Feb the rest.
    assert hours.add(cst(2026, 2, 13, 16, 0), 2 * DAY) == cst(2026, 2, 24, 16, 0)
    # Saturday 28 Feb is a made-up working day too: 2 days from Friday 27 Feb 08:30 end on the 28th.
    assert hours.add(cst(2026, 2, 27, 8, 30), 2 * DAY) == cst(2026, 2, 28, 17, 30)


def test_the_national_day_week_and_its_made_up_saturday():
    calendar = explicit_calendar()
    assert calendar.is_workday(date(2025, 9, 28)) and calendar.is_workday(date(2025, 10, 11))
    assert not any(calendar.is_workday(date(2025, 10, d)) for d in range(1, 9))
    assert calendar.is_workday(date(2025, 10, 9))


def test_a_year_without_data_falls_back_to_weekdays_loudly_once(caplog):
    fallbacks = []
    calendar = explicit_calendar(on_fallback=fallbacks.append)
    with caplog.at_level(logging.WARNING, logger="services.sla.calendar"):
        assert calendar.is_workday(date(2027, 1, 1))  # a Friday: no data, so counted as working
        assert not calendar.is_workday(date(2027, 1, 2))
    assert fallbacks == [2027, 2027]
    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1 and "PUT /api/v1/calendar/years/2027" in warnings[0].getMessage()
    assert calendar.source_of(2027) is None and calendar.source_of(2026) == "file"


def test_an_entered_year_wins_over_the_file_and_the_package():
    calendar = OfficialCalendar(file_years=TEST_YEARS)
    assert calendar.source_of(2024) == "package" and package_covers(2024) and not package_covers(2099)
    assert calendar.is_workday(date(2024, 2, 4))  # a Sunday made a working day, from the package
    corrected = calendar_year(
        year=2026,
        source="更正",
        holidays=[{"name": "元旦", "first": "2026-01-01", "last": "2026-01-01"}],
        workdays=[],
    )
    calendar.use_stored({2026: corrected})
    assert calendar.source_of(2026) == "api" and calendar.year(2026) is corrected
    assert calendar.is_workday(date(2026, 1, 2)) and not calendar.is_workday(date(2026, 1, 4))
    assert corrected.as_document() == {
        "source": "更正",
        "holidays": [{"name": "元旦", "first": "2026-01-01", "last": "2026-01-01"}],
        "workdays": [],
    }


def test_coverage_of_the_next_sixty_days():
    calendar = explicit_calendar()
    early = calendar.coverage(date(2026, 11, 1))
    assert (early.covered_through, early.days_ahead, early.ok, early.message()) == (date(2026, 12, 31), 61, True, None)
    late = calendar.coverage(date(2026, 12, 2))
    assert late.days_ahead == 30 and not late.ok and late.first_uncovered == date(2027, 1, 1)
    assert "2027年的法定节假日安排尚未录入" in late.message() and "请联系系统管理员" in late.message()
    assert "/api/" not in late.message()  # staff read it; the API is in the operators' log and readiness
    nowhere = calendar.coverage(date(2030, 5, 1))
    assert (nowhere.covered_through, nowhere.days_ahead, nowhere.first_uncovered) == (None, 0, date(2030, 5, 1))
    calendar.use_stored({2027: calendar_year(year=2027, source="测试数据（非官方）", holidays=[], workdays=[])})
    assert calendar.coverage(date(2026, 12, 2)).ok


@pytest.mark.parametrize(
    ("holidays", "workdays", "complaint"),
    [
        ([{"name": "春节", "first": "2026-02-23", "last": "2026-02-15"}], [], "swap them"),
        ([{"name": "元旦", "first": "2025-12-31", "last": "2026-01-01"}], [], "under its own year"),
        ([{"name": "", "first": "2026-01-01", "last": "2026-01-01"}], [], "needs its name"),
        ([{"name": "元旦", "first": "1 Jan", "last": "2026-01-01"}], [], "YYYY-MM-DD"),
        (
            [
                {"name": "中秋", "first": "2026-09-25", "last": "2026-10-02"},
                {"name": "国庆节", "first": "2026-10-01", "last": "2026-10-07"},
            ],
            [],
            "overlap",
        ),
        ([], [{"date": "2026-01-05", "for": "元旦"}], "weekday"),
        ([], [{"date": "2027-01-02", "for": "元旦"}], "under its own year"),
        ([{"name": "元旦", "first": "2026-01-01", "last": "2026-01-04"}], [{"date": "2026-01-04"}], "both"),
        ([], [{"date": "2026-01-04"}, {"date": "2026-01-04"}], "twice"),
    ],
)
def test_a_year_that_contradicts_itself_is_refused_with_what_to_correct(holidays, workdays, complaint):
    with pytest.raises(InvalidCalendar, match=complaint):
        calendar_year(
            year=2026, source="国务院办公厅关于2026年部分节假日安排的通知", holidays=holidays, workdays=workdays
        )


def test_a_year_needs_its_source():
    with pytest.raises(InvalidCalendar, match="name the notice"):
        calendar_year(year=2026, source=" ", holidays=[], workdays=[])
