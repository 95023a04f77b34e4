"""SLA timers against real Kafka and PostgreSQL with a controllable clock (no sleeps):
warnings, breaches, stops, pauses, two replicas firing once, catch-up after a restart."""

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg

from services.sla import store
from services.sla.app import create_app as sla_app
from services.sla.app import load_policy
from services.sla.handlers import fire_due_timers
from shared.db import create_pool
from shared.events import CaseDispatched, CaseTransitioned, new_event
from shared.topics import CASES, SLA, ensure_topics
from tests.support import bearer, eventually, publish, read_topic, running

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 09:00 in China, a Tuesday


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def facts(case_id, priority="urgent", co=()):
    return dict(
        case_id=case_id,
        report_id=uuid4(),
        seq=1,
        jurisdiction_code="330727001002",
        owner_code="330727",
        level="county",
        category="manhole",
        category_name="井盖缺失/破损/塌陷",
        priority=priority,
        department_code="zhujian",
        department_name="住房和城乡建设局",
        co_department_codes=list(co),
        description="井盖翻起",
        case_no=f"20261124-{case_id.int % 1000000:06d}",
    )


def dispatched(case_id, at=T0, **kw):
    payload = CaseDispatched(
        **facts(case_id, **kw), responsibility_list_version="v", rule="county:manhole->zhujian", dispatched_at=at
    )
    return new_event(payload, producer="dispatch", jurisdiction_code="330727", key=str(case_id)).to_bytes()


def step(case_id, event_type, action, at, seq, detail=None, **kw):
    payload = CaseTransitioned(
        **facts(case_id, **kw) | {"seq": seq},
        action=action,
        from_status="dispatched",
        actor="handler:h1",
        detail=detail or {},
        at=at,
    )
    return new_event(
        payload, producer="dispatch", jurisdiction_code="330727", key=str(case_id), event_type=event_type
    ).to_bytes()


async def timers_of(client, case_id):
    return {
        (t["stage"], t["department_code"]): t
        for t in (await client.get(f"/api/v1/cases/{case_id}/timers")).json()["timers"]
    }


async def test_warn_breach_stop_pause_and_score(make_settings):
    settings = make_settings("sla")
    await ensure_topics(settings)
    clock = Clock(T0)
    case_id, quiet_id = uuid4(), uuid4()
    await publish(settings, CASES.name, dispatched(case_id), dispatched(quiet_id, co=["eco_env"]))
    async with running(sla_app(settings, clock=clock)) as client:
        client.headers.update(bearer(settings, "handler", department_code="zhujian"))  # any staff may read
        started = await eventually(lambda: timers_of(client, quiet_id))
        assert set(started) == {
            ("acknowledge", "zhujian"),
            ("acknowledge", "eco_env"),
            ("joint_plan", "zhujian"),
            ("resolve", "zhujian"),
        }
        # The quiet case is cancelled before anything is due: its timers never fire.
        await publish(settings, CASES.name, step(quiet_id, "case.cancelled", "cancel", T0 + timedelta(minutes=1), 2))
        await eventually(lambda: _all_stopped(client, quiet_id))

        clock.now = T0 + timedelta(minutes=4, seconds=59)
        await asyncio.sleep(0.3)
        clock.now = T0 + timedelta(minutes=5)  # half of 10 minutes: 接单 is reminded (the backup is @-mentioned)
        warnings = await read_topic(settings, SLA.name, until=lambda ms: len(ms) >= 1)
        assert [(w["type"], w["payload"]["stage"], w["payload"]["reminder"]) for w in warnings] == [
            ("sla.warning", "acknowledge", 1)
        ]
        clock.now = T0 + timedelta(minutes=10)  # 督办
        events = await read_topic(settings, SLA.name, until=lambda ms: len(ms) >= 2)
        assert events[1]["type"] == "sla.breached" and events[1]["payload"]["stage"] == "acknowledge"
        assert events[1]["payload"]["owner_code"] == "330727"
        # The case's human number travels with its deadlines, so 催办 and 督办 can quote it.
        assert {e["payload"]["case_no"] for e in events} == {f"20261124-{case_id.int % 1000000:06d}"}

        await publish(
            settings,
            CASES.name,
            step(
                case_id,
                "case.acknowledged",
                "acknowledge",
                T0 + timedelta(minutes=12),
                2,
                {"department_code": "zhujian"},
            ),
            step(
                case_id, "case.extension_requested", "request_extension", T0 + timedelta(minutes=20), 3, {"minutes": 30}
            ),
        )
        paused = await eventually(lambda: _resolve_paused(client, case_id))
        assert paused["stop_reason"] is None
        clock.now = T0 + timedelta(hours=2)  # long past the original 60 minutes, but paused
        await asyncio.sleep(0.3)
        await publish(
            settings,
            CASES.name,
            step(case_id, "case.extension_approved", "approve_extension", T0 + timedelta(hours=2), 4, {"minutes": 30}),
        )
        resumed = await eventually(lambda: _resolve_resumed(client, case_id))
        # 40 minutes were left when it paused, plus the 30 approved.
        assert datetime.fromisoformat(resumed["due_at"]) == T0 + timedelta(hours=2, minutes=70)
        await publish(
            settings,
            CASES.name,
            step(case_id, "case.resolved", "resolve", T0 + timedelta(hours=2, minutes=5), 5, {"result": "ok"}),
        )
        await eventually(lambda: _all_stopped(client, case_id))
        clock.now = T0 + timedelta(hours=5)
        await asyncio.sleep(0.3)
        scores = (
            await client.get("/api/v1/departments/scores", params={"since": "2026-11-01", "until": "2026-11-30"})
        ).json()
        [zhujian] = [d for d in scores["departments"] if d["department_code"] == "zhujian"]
        assert (zhujian["late"], zhujian["on_time"], zhujian["warnings"], zhujian["breaches"]) == (1, 1, 1, 1)
        metrics = (await client.get("/metrics")).text
        assert 'gridlink_sla_breaches_total{category="manhole",department="zhujian"} 1.0' in metrics
        assert "gridlink_sla_fire_lateness_seconds_count" in metrics
    events = await read_topic(settings, SLA.name, until=lambda ms: len(ms) >= 2, timeout=3)
    assert len(events) == 2  # nothing from the cancelled case, nothing after the pause or the resolution


async def _all_stopped(client, case_id):
    timers = await timers_of(client, case_id)
    return timers and all(t["stopped_at"] for t in timers.values())


async def _resolve_paused(client, case_id):
    timer = (await timers_of(client, case_id)).get(("resolve", "zhujian"))
    return timer if timer and timer["paused_at"] else None


async def _resolve_resumed(client, case_id):
    timer = (await timers_of(client, case_id)).get(("resolve", "zhujian"))
    return timer if timer and not timer["paused_at"] and timer["minutes"] == 90 else None


async def _start_timers(pool, policy, n: int) -> None:
    async with pool.acquire() as conn:
        for i in range(n):
            start = T0 + timedelta(seconds=i)
            d = policy.deadline(
                start=start, priority="urgent", level="county", stage="acknowledge", department_code="zhujian"
            )
            await store.start_timer(
                conn,
                case_id=uuid4(),
                stage="acknowledge",
                department_code="zhujian",
                priority="urgent",
                category="manhole",
                clock=d.clock,
                minutes=d.minutes,
                started_at=start,
                due_at=d.due_at,
                warn_at=d.warn_at,
                next_fire_at=d.warn_at,
            )


async def test_two_replicas_fire_each_timer_once(make_settings):
    settings = make_settings("sla")
    policy = load_policy(settings)
    pool = await create_pool(settings)
    try:
        await _start_timers(pool, policy, 300)
        # 接单 is first reminded at half its 10 minutes: nothing is due before 5.
        assert await fire_due_timers(settings=settings, pool=pool, policy=policy, now=T0 + timedelta(minutes=4)) == 0
        for now in (T0 + timedelta(minutes=20), T0 + timedelta(minutes=21)):
            await asyncio.gather(
                *(fire_due_timers(settings=settings, pool=pool, policy=policy, now=now, batch=25) for _ in range(2))
            )
        db = await asyncpg.connect(settings.database_url)
        try:
            kinds = await db.fetch(
                "SELECT convert_from(value, 'UTF8')::jsonb ->> 'type' AS type, count(*) AS n,"
                " count(DISTINCT convert_from(value, 'UTF8')::jsonb #>> '{payload,case_id}') AS cases"
                " FROM sla.outbox GROUP BY 1"
            )
            # Long overdue when first looked at: straight to the breach, once per timer; and one 通报
            # for the department's repeated breaches, however the two replicas interleaved.
            assert {r["type"]: (r["n"], r["cases"]) for r in kinds} == {
                "sla.breached": (300, 300),
                "sla.notice_issued": (1, 0),
            }
        finally:
            await db.close()
    finally:
        await pool.close()


async def test_overdue_timers_fire_at_once_after_a_restart(make_settings):
    settings = make_settings("sla")
    policy = load_policy(settings)
    pool = await create_pool(settings)
    try:
        await _start_timers(pool, policy, 50)  # started while the service was down
    finally:
        await pool.close()
    await ensure_topics(settings)
    async with running(sla_app(settings, clock=Clock(T0 + timedelta(hours=1)))):
        events = await read_topic(settings, SLA.name, until=lambda ms: len(ms) >= 51)
    breaches = [e for e in events if e["type"] == "sla.breached"]
    assert len({e["payload"]["case_id"] for e in breaches}) == 50
    assert {e["type"] for e in events} == {"sla.breached", "sla.notice_issued"}  # and one 通报 for them


async def test_waiting_for_the_reporter_pauses_the_resolution_clock(make_settings):
    settings = make_settings("sla")
    await ensure_topics(settings)
    case_id = uuid4()
    await publish(
        settings,
        CASES.name,
        dispatched(case_id),
        step(case_id, "case.awaiting_reporter", "await_reporter", T0 + timedelta(minutes=30), 2),
    )
    async with running(sla_app(settings, clock=Clock(T0 + timedelta(minutes=31)))) as client:
        client.headers.update(bearer(settings, "dispatcher"))
        await eventually(lambda: _resolve_paused(client, case_id))
        await publish(
            settings, CASES.name, step(case_id, "case.reporter_replied", "reporter_replied", T0 + timedelta(hours=3), 3)
        )

        async def resumed():
            timer = (await timers_of(client, case_id))[("resolve", "zhujian")]
            return timer if not timer["paused_at"] else None

        timer = await eventually(resumed)
        assert datetime.fromisoformat(timer["due_at"]) == T0 + timedelta(hours=3, minutes=30)  # 30 of 60 left


async def test_scores_of_a_period_at_the_start_of_the_calendar_answer(make_settings):
    # Found by fuzzing: the default start, 30 days before `until`, fell before year 1 and answered 500.
    settings = make_settings("sla")
    async with running(sla_app(settings)) as client:
        client.headers.update(bearer(settings, "dispatcher"))
        early = await client.get("/api/v1/departments/scores", params={"until": "0001-01-01"})
        assert early.status_code == 200, early.text
        assert (early.json()["since"], early.json()["until"]) == ("0001-01-01", "0001-01-01")
        later = await client.get("/api/v1/departments/scores", params={"until": "0001-03-01"})
        assert later.json()["since"] == "0001-01-30"  # 30 days before, as for any other date


async def test_a_return_holds_the_clocks_for_an_arbitration_deadline_and_an_overrule_resumes_them(make_settings):
    settings = make_settings("sla")
    await ensure_topics(settings)
    clock = Clock(T0)
    case_id, upheld_id = uuid4(), uuid4()
    returned_at = T0 + timedelta(minutes=4)
    await publish(
        settings,
        CASES.name,
        dispatched(case_id),
        dispatched(upheld_id),
        step(case_id, "case.returned", "return", returned_at, 2, {"department_code": "zhujian"}),
        step(upheld_id, "case.returned", "return", returned_at, 2, {"department_code": "zhujian"}),
    )
    async with running(sla_app(settings, clock=clock)) as client:
        client.headers.update(bearer(settings, "dispatcher"))

        async def arbitrating(cid):
            timers = await timers_of(client, cid)
            return timers if ("arbitrate", "grid_center") in timers else None

        timers = await eventually(lambda: arbitrating(case_id))
        # The department's clocks wait where they were; the dispatcher's own (30 minutes) runs.
        for stage in ("acknowledge", "resolve"):
            held = timers[(stage, "zhujian")]
            assert held["paused_at"] and not held["stopped_at"]
        arbitrate = timers[("arbitrate", "grid_center")]
        assert datetime.fromisoformat(arbitrate["due_at"]) == returned_at + timedelta(minutes=30)
        await eventually(lambda: arbitrating(upheld_id))

        # Upheld: the case goes elsewhere; the ruling ends the arbitration (in time) and the old round.
        payload = CaseDispatched(
            **facts(upheld_id) | {"seq": 3, "department_code": "gas", "department_name": "燃气公司"},
            responsibility_list_version="v",
            rule="manual:dispatcher:d1",
            dispatched_at=T0 + timedelta(minutes=10),
            action="uphold_return",
            reason="燃气井",
        )
        await publish(
            settings,
            CASES.name,
            new_event(payload, producer="dispatch", jurisdiction_code="330727", key=str(upheld_id)).to_bytes(),
        )

        async def redispatched():
            timers = await timers_of(client, upheld_id)
            return timers if ("resolve", "gas") in timers else None

        timers = await eventually(redispatched)
        assert timers[("arbitrate", "grid_center")]["stop_reason"] == "dispatched:uphold_return"
        assert timers[("resolve", "zhujian")]["stopped_at"] and not timers[("resolve", "gas")]["stopped_at"]

        # The dispatcher does not rule in time: reminded (催办) and escalated (督办) like any deadline,
        # while the held acknowledgement (due at 10 minutes) says nothing.
        clock.now = returned_at + timedelta(minutes=24)

        def of_case(messages):
            return [m for m in messages if m["payload"]["case_id"] == str(case_id)]

        await read_topic(settings, SLA.name, until=lambda ms: len(of_case(ms)) >= 1)
        clock.now = returned_at + timedelta(minutes=30)
        events = of_case(await read_topic(settings, SLA.name, until=lambda ms: len(of_case(ms)) >= 2))
        assert [(e["type"], e["payload"]["stage"], e["payload"]["department_code"]) for e in events] == [
            ("sla.warning", "arbitrate", "grid_center"),
            ("sla.breached", "arbitrate", "grid_center"),
        ]

        # Overruled at 40 minutes: back to zhujian with the time it had left (6 and 56 minutes).
        overruled_at = T0 + timedelta(minutes=40)
        clock.now = overruled_at
        await publish(
            settings,
            CASES.name,
            step(case_id, "case.return_overruled", "overrule_return", overruled_at, 3, {"department_code": "zhujian"}),
        )

        async def resumed():
            timers = await timers_of(client, case_id)
            return timers if not timers[("acknowledge", "zhujian")]["paused_at"] else None

        timers = await eventually(resumed)
        assert datetime.fromisoformat(timers[("acknowledge", "zhujian")]["due_at"]) == overruled_at + timedelta(
            minutes=6
        )
        assert datetime.fromisoformat(timers[("resolve", "zhujian")]["due_at"]) == overruled_at + timedelta(minutes=56)
        assert timers[("arbitrate", "grid_center")]["stop_reason"] == "return_overruled"
        scores = (
            await client.get("/api/v1/departments/scores", params={"since": "2026-11-01", "until": "2026-11-30"})
        ).json()
        [centre] = [d for d in scores["departments"] if d["department_code"] == "grid_center"]
        # One ruling in time (the upheld return), one late, with its warning and breach.
        assert (centre["on_time"], centre["late"], centre["warnings"], centre["breaches"]) == (1, 1, 1, 1)


def checked(case_id, finding: str, at: datetime, seq: int):
    """现场核实 as dispatch publishes it: 不属实 leaves the case cancelled, 属实 where it was."""
    status = "cancelled" if finding == "unfounded" else "dispatched"
    payload = CaseTransitioned(
        **facts(case_id) | {"seq": seq, "status": status},
        action="check",
        from_status="dispatched",
        actor="grid_worker:gw330727001002001",
        reason="现场查看" if finding == "confirmed" else "现场井盖完好",
        detail={"finding": finding},
        at=at,
    )
    return new_event(
        payload, producer="dispatch", jurisdiction_code="330727", key=str(case_id), event_type="case.checked"
    ).to_bytes()


async def test_an_on_site_check_ends_the_clocks_only_when_the_report_is_unfounded(make_settings):
    settings = make_settings("sla")
    await ensure_topics(settings)
    real, unfounded = uuid4(), uuid4()
    await publish(
        settings,
        CASES.name,
        dispatched(real),
        dispatched(unfounded),
        checked(real, "confirmed", T0 + timedelta(minutes=3), 2),
        checked(unfounded, "unfounded", T0 + timedelta(minutes=3), 2),
        # After the check, on the same case (so in order): 接单 ends only its own clock.
        step(real, "case.acknowledged", "acknowledge", T0 + timedelta(minutes=5), 3, {"department_code": "zhujian"}),
    )
    async with running(sla_app(settings, clock=Clock(T0 + timedelta(minutes=6)))) as client:
        client.headers.update(bearer(settings, "dispatcher"))
        await eventually(lambda: _all_stopped(client, unfounded))
        assert {t["stop_reason"] for t in (await timers_of(client, unfounded)).values()} == {"checked"}

        async def acknowledged():
            timers = await timers_of(client, real)
            return timers if timers and timers[("acknowledge", "zhujian")]["stopped_at"] else None

        timers = await eventually(acknowledged)
        assert timers[("acknowledge", "zhujian")]["stop_reason"] == "acknowledged"
        assert timers[("resolve", "zhujian")]["stopped_at"] is None  # 属实: the department's clock runs on
