"""The official calendar through sla's API against real Kafka and PostgreSQL: the gap before next
year's notice is loud (API field, readiness note, metric), an admin enters a year (others may
not), every change is audited, another replica takes it, and new deadlines follow it."""

from datetime import UTC, date, datetime
from uuid import uuid4

from services.sla.app import create_app as sla_app
from shared.topics import CASES, ensure_topics
from tests.integration.test_sla import Clock, dispatched, timers_of
from tests.support import bearer, eventually, publish, running

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 09:00 in Beijing: 2026 is covered, 2027 is not
LAST_DAY = datetime(2026, 12, 31, 8, 0, tzinfo=UTC)  # 16:00 in Beijing on New Year's Eve
# Test data, not the official 2027 arrangement (its notice is not published to us yet).
TEST_2027 = {
    "source": "测试数据（非官方）",
    "holidays": [{"name": "元旦", "first": "2027-01-01", "last": "2027-01-01"}],
    "workdays": [],
}


def metric(text: str, name: str) -> float:
    return next(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


async def test_the_calendar_gap_is_loud_until_an_admin_enters_the_year(make_settings):
    settings = make_settings("sla", sla_calendar_refresh_s=0.2)
    await ensure_topics(settings)
    admin = bearer(settings, "admin", subject="admin-zhang")
    dispatcher = bearer(settings, "dispatcher")
    before_id, after_id = uuid4(), uuid4()
    async with running(sla_app(settings, clock=Clock(NOW))) as a, running(sla_app(settings, clock=Clock(NOW))) as b:
        a.headers.update(dispatcher)
        b.headers.update(dispatcher)
        gap = (await a.get("/api/v1/calendar")).json()
        assert gap["covered"] is False and gap["days_ahead"] == 30
        assert gap["covered_through"] == "2026-12-31" and gap["horizon_days"] == 60
        assert "2027年的法定节假日安排尚未录入" in gap["banner"]
        assert gap["years"]["2026"] == "file" and "2027" not in gap["years"]
        ready = (await a.get("/readyz")).json()
        assert ready["ready"] is True and ready["notes"]["calendar"] == gap["banner"]
        assert metric((await a.get("/metrics")).text, "gridlink_calendar_covered_days_ahead") == 30

        # A normal case dispatched on New Year's Eve before 2027 is entered: 1 January counts as a
        # working day (Monday–Friday), and the fallback is counted.
        await publish(settings, CASES.name, dispatched(before_id, at=LAST_DAY, priority="normal"))
        timers = await eventually(lambda: timers_of(a, before_id))
        assert datetime.fromisoformat(timers[("resolve", "zhujian")]["due_at"]) == datetime(
            2027, 1, 5, 8, 0, tzinfo=UTC
        )
        assert 'gridlink_calendar_fallback_days_total{year="2027"}' in (await a.get("/metrics")).text

        # Only an admin may enter a year; a year that contradicts itself is refused with the reason.
        refused = await a.put("/api/v1/calendar/years/2027", json=TEST_2027)
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
        wrong = TEST_2027 | {"workdays": [{"date": "2027-01-04", "for": "元旦"}]}
        invalid = await a.put("/api/v1/calendar/years/2027", json=wrong, headers=admin)
        assert invalid.status_code == 422 and "weekday" in invalid.json()["detail"]
        assert (await a.put("/api/v1/calendar/years/1999", json=TEST_2027, headers=admin)).status_code == 422
        entered = await a.put("/api/v1/calendar/years/2027", json=TEST_2027, headers=admin)
        assert entered.status_code == 200 and entered.json()["origin"] == "api"

        covered = (await a.get("/api/v1/calendar")).json()
        assert covered["covered"] is True and covered["banner"] is None and covered["years"]["2027"] == "api"
        assert covered["days_ahead"] == (date(2027, 12, 31) - date(2026, 12, 2)).days + 1
        assert (await a.get("/readyz")).json()["notes"] == {}
        assert metric((await a.get("/metrics")).text, "gridlink_calendar_covered_days_ahead") == covered["days_ahead"]
        # The other replica re-reads the entered years.
        await eventually(lambda: _covered(b))
        year = (await b.get("/api/v1/calendar/years/2027")).json()
        assert year == {"year": 2027, "origin": "api", **TEST_2027}

        # New deadlines follow the entered year: 1 January is off, so it is due a day later.
        await publish(settings, CASES.name, dispatched(after_id, at=LAST_DAY, priority="normal"))
        timers = await eventually(lambda: timers_of(a, after_id))
        assert datetime.fromisoformat(timers[("resolve", "zhujian")]["due_at"]) == datetime(
            2027, 1, 6, 8, 0, tzinfo=UTC
        )

        # A correction is audited with what it replaced; only admins read the trail.
        correction = TEST_2027 | {"holidays": [{"name": "元旦", "first": "2027-01-01", "last": "2027-01-03"}]}
        assert (await a.put("/api/v1/calendar/years/2027", json=correction, headers=admin)).status_code == 200
        assert (await a.get("/api/v1/calendar/changes")).status_code == 403
        trail = (await a.get("/api/v1/calendar/changes", params={"year": 2027}, headers=admin)).json()
        assert [c["actor"] for c in trail] == ["admin:admin-zhang", "admin:admin-zhang"]
        assert trail[1]["before"] is None and trail[1]["after"]["holidays"] == TEST_2027["holidays"]
        assert trail[0]["before"]["holidays"] == TEST_2027["holidays"]
        assert trail[0]["after"]["holidays"] == correction["holidays"]

        # Years from the file or nowhere.
        assert (await a.get("/api/v1/calendar/years/2026")).json()["origin"] == "file"
        missing = await a.get("/api/v1/calendar/years/2031")
        assert missing.status_code == 404 and "an admin can enter it" in missing.json()["detail"]

    # A replica started later takes the entered years at startup.
    async with running(sla_app(settings, clock=Clock(NOW))) as c:
        c.headers.update(dispatcher)
        assert (await c.get("/api/v1/calendar/years/2027")).json()["holidays"] == correction["holidays"]


async def _covered(client) -> bool:
    return (await client.get("/api/v1/calendar")).json()["covered"]
