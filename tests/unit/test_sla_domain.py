"""SLA policies, working time on the official calendar, and what a timer does next."""

from datetime import date, datetime, timedelta

from services.sla.calendar import CST, WorkingTime, official_workday
from services.sla.domain import Policy, TimerState, next_step
from services.sla.settings import SlaSettings
from shared.sla_policy import load_sla_policy

POLICY = Policy(load_sla_policy(SlaSettings().sla_policy_path))


def cst(*args) -> datetime:
    return datetime(*args, tzinfo=CST)


def test_official_calendar_knows_holidays_and_adjusted_working_days():
    assert not official_workday(date(2026, 10, 1))  # National Day
    assert not official_workday(date(2026, 2, 17))  # Spring Festival
    assert official_workday(date(2026, 11, 24))  # a plain Tuesday
    assert not official_workday(date(2026, 11, 28))  # a plain Saturday
    adjusted = [
        d
        for d in (date(2026, 1, 1) + timedelta(days=i) for i in range(365))
        if d.weekday() >= 5 and official_workday(d)
    ]
    assert adjusted, "2026 has weekend days made working days (调休)"
    assert official_workday(date(2031, 3, 3)) and not official_workday(date(2031, 3, 1))  # beyond the data: Mon-Fri


def test_working_time_skips_nights_lunch_weekends_and_holidays():
    hours = WorkingTime(
        [
            (datetime.strptime("08:30", "%H:%M").time(), datetime.strptime("12:00", "%H:%M").time()),
            (datetime.strptime("13:30", "%H:%M").time(), datetime.strptime("17:30", "%H:%M").time()),
        ]
    )
    assert hours.add(cst(2026, 11, 24, 11, 0), 120) == cst(2026, 11, 24, 14, 30)  # over lunch
    assert hours.add(cst(2026, 11, 27, 17, 0), 60) == cst(2026, 11, 30, 9, 0)  # Friday evening → Monday
    assert hours.add(cst(2026, 11, 24, 20, 0), 30) == cst(2026, 11, 25, 9, 0)  # reported at night
    assert hours.add(cst(2026, 9, 30, 17, 0), 60) == cst(2026, 10, 8, 9, 0)  # over the National Day holiday
    assert hours.between(cst(2026, 11, 24, 11, 0), cst(2026, 11, 24, 14, 30)) == 120


def test_urgent_stages_run_on_the_wall_clock():
    start = cst(2026, 11, 28, 23, 50)  # a Saturday night
    ack = POLICY.deadline(
        start=start, priority="urgent", level="county", stage="acknowledge", department_code="zhujian"
    )
    # 接单 is reminded at half its time (the backup on duty is @-mentioned then), other stages at 80%.
    assert (ack.clock, ack.due_at, ack.warn_at) == ("wall", start + timedelta(minutes=10), start + timedelta(minutes=5))
    plan = POLICY.deadline(
        start=start, priority="urgent", level="county", stage="joint_plan", department_code="zhujian"
    )
    resolve = POLICY.deadline(
        start=start, priority="urgent", level="county", stage="resolve", department_code="zhujian"
    )
    assert (plan.due_at - start, resolve.due_at - start) == (timedelta(minutes=30), timedelta(minutes=60))
    assert resolve.warn_at - start == timedelta(minutes=48)


def test_acknowledgement_on_working_time_is_reminded_at_half_its_working_time():
    start = cst(2026, 11, 24, 17, 0)  # Tuesday, half an hour before the office closes
    ack = POLICY.deadline(
        start=start, priority="normal", level="county", stage="acknowledge", department_code="zhujian"
    )
    # 2 working hours: 30 minutes tonight, then from 08:30; half of it (the 备班's mention) is 09:00.
    assert (ack.warn_at, ack.due_at) == (cst(2026, 11, 25, 9, 0), cst(2026, 11, 25, 10, 0))
    # A timer resumed after a pause keeps its stage's share: 30 of 120 minutes used, 30 more to half.
    resumed = POLICY.schedule(
        clock=ack.clock, minutes=120, start=cst(2026, 11, 25, 14, 0), elapsed=30, stage="acknowledge"
    )
    assert (resumed.warn_at, resumed.due_at) == (cst(2026, 11, 25, 14, 30), cst(2026, 11, 25, 15, 30))


def test_normal_stages_use_working_days_and_levels_and_round_the_clock_departments():
    start = cst(2026, 11, 24, 9, 0)  # Tuesday morning
    county = POLICY.deadline(start=start, priority="normal", level="county", stage="resolve", department_code="zhujian")
    assert county.clock == "working" and county.due_at == cst(2026, 11, 27, 9, 0)  # 3 working days
    village = POLICY.deadline(
        start=start, priority="normal", level="village", stage="resolve", department_code="zhujian"
    )
    assert village.due_at == cst(2026, 11, 26, 9, 0)
    police = POLICY.deadline(start=start, priority="normal", level="county", stage="resolve", department_code="police")
    assert police.clock == "wall" and police.due_at == start + timedelta(days=3)


def test_timer_warns_reminds_then_breaches():
    start = cst(2026, 11, 24, 9, 0)
    timer = TimerState(
        priority="urgent",
        due_at=start + timedelta(minutes=10),
        warn_at=start + timedelta(minutes=8),
        reminders=0,
        last_reminder_at=None,
        breached=False,
    )
    assert next_step(timer=timer, now=start, policy=POLICY).next_fire_at == timer.warn_at
    first = next_step(timer=timer, now=timer.warn_at, policy=POLICY)
    assert first.kind == "warning" and first.next_fire_at == timer.due_at  # reminder every 3 min > time left
    reminded = TimerState(**{**timer.__dict__, "reminders": 1, "last_reminder_at": timer.warn_at})
    assert next_step(timer=reminded, now=timer.warn_at + timedelta(minutes=1), policy=POLICY).kind is None
    breach = next_step(timer=reminded, now=timer.due_at, policy=POLICY)
    assert (breach.kind, breach.next_fire_at) == ("breach", None)
    done = TimerState(**{**timer.__dict__, "breached": True})
    after = next_step(timer=done, now=timer.due_at + timedelta(hours=1), policy=POLICY)
    assert (after.kind, after.next_fire_at) == (None, None)  # a breach happens once


def test_long_stages_remind_repeatedly():
    start = cst(2026, 11, 24, 9, 0)
    timer = TimerState(
        priority="normal",
        due_at=start + timedelta(hours=20),
        warn_at=start + timedelta(hours=16),
        reminders=1,
        last_reminder_at=start + timedelta(hours=16),
        breached=False,
    )
    later = next_step(timer=timer, now=start + timedelta(hours=16, minutes=30), policy=POLICY)
    assert later.kind is None and later.next_fire_at == start + timedelta(hours=18)
    assert next_step(timer=timer, now=start + timedelta(hours=18), policy=POLICY).kind == "warning"


def test_a_department_with_its_own_hours():
    start = cst(2026, 11, 24, 17, 0)  # Tuesday, 17:00
    market = POLICY.deadline(
        start=start, priority="normal", level="county", stage="acknowledge", department_code="market"
    )
    default = POLICY.deadline(
        start=start, priority="normal", level="county", stage="acknowledge", department_code="zhujian"
    )
    assert market.clock == "working:market" and market.due_at == cst(2026, 11, 25, 9, 0)  # 90 min left today
    assert default.due_at == cst(2026, 11, 25, 10, 0)  # 30 min left today
    assert POLICY.clock("working:market").between(start, market.due_at) == 120


def test_a_notice_is_due_at_the_policys_count_once_per_window():
    from services.sla.domain import notice_due

    policy = POLICY.document  # notices: 3 breaches within 30 days
    now = cst(2026, 11, 24, 9, 0)
    assert not notice_due(breaches_in_window=2, last_notice_at=None, now=now, policy=policy)
    assert notice_due(breaches_in_window=3, last_notice_at=None, now=now, policy=policy)
    # Noticed ten days ago: more breaches within the window add no second notice, a later window does.
    assert not notice_due(breaches_in_window=5, last_notice_at=now - timedelta(days=10), now=now, policy=policy)
    assert notice_due(breaches_in_window=3, last_notice_at=now - timedelta(days=30), now=now, policy=policy)
