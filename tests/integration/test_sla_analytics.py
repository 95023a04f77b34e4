"""Scorecards, the loop, hotspots and exports built by sla's analytics consumer from a scripted case
history with known answers (transfers, a reopening, a recurrence, an extension, a return, a
cancellation), through real Kafka and PostgreSQL; a rebuild from the start of the topics gives the
same figures."""

import csv
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

from openpyxl import load_workbook

from services.sla.analytics.rebuild import rebuild
from services.sla.app import create_app as sla_app
from shared.events import (
    CaseDispatched,
    CaseTransitioned,
    ReportAttached,
    ReportPlace,
    ReportSubmitted,
    SlaBreached,
    new_event,
)
from shared.topics import CASES, REPORTS, SLA, ensure_topics
from tests.support import bearer, eventually, publish, running

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 09:00 Beijing time, a Tuesday
TOWN1, TOWN2 = "330727001", "330727002"
GRID_A, GRID_B = "330727001002001", "330727002003001"
NAMES = {"zhujian": "住房和城乡建设局", "chengguan": "城市管理局", "eco_env": "生态环境分局"}


def m(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Case:
    """One scripted case: its facts and a running sequence number."""

    def __init__(self, department, *, village, grid, priority="urgent", co=(), category="manhole"):
        self.id, self.seq = uuid4(), 0
        self.facts = dict(
            case_id=self.id,
            report_id=uuid4(),
            jurisdiction_code=village,
            grid_code=grid,
            owner_code="330727",
            level="county",
            category=category,
            category_name="井盖缺失/破损/塌陷",
            priority=priority,
            department_code=department,
            department_name=NAMES[department],
            co_department_codes=list(co),
            description="井盖翻起",
            case_no=f"20261124-{self.id.int % 1000000:06d}",
        )

    def _next(self) -> dict:
        self.seq += 1
        return self.facts | {"seq": self.seq}

    def dispatched(self, at, *, action="dispatch", recurrence_of: UUID | None = None, **changes) -> bytes:
        self.facts |= changes
        payload = CaseDispatched(
            **self._next(),
            responsibility_list_version="v",
            rule="r",
            dispatched_at=at,
            action=action,
            recurrence_of=recurrence_of,
        )
        return new_event(payload, producer="dispatch", jurisdiction_code="330727", key=str(self.id)).to_bytes()

    def step(self, event_type: str, at, **detail) -> bytes:
        payload = CaseTransitioned(
            **self._next(), action=event_type, from_status="dispatched", actor="handler:h", detail=detail, at=at
        )
        return new_event(
            payload, producer="dispatch", jurisdiction_code="330727", key=str(self.id), event_type=event_type
        ).to_bytes()

    def breached(self, stage: str, department: str, started_at, fired_at) -> bytes:
        payload = SlaBreached(
            case_id=self.id, stage=stage, department_code=department, started_at=started_at, due_at=fired_at,
            fired_at=fired_at,
        )  # fmt: skip
        return new_event(payload, producer="sla", jurisdiction_code="330727", key=str(self.id)).to_bytes()

    def report(self, *, seen_at, submitted_at) -> bytes:
        payload = ReportSubmitted(
            report_id=self.facts["report_id"],
            case_id=self.id,
            description="井盖翻起",
            category="manhole",
            channel="h5",
            submitted_at=submitted_at,
            seen_at=seen_at,
            place=ReportPlace(
                division_code=self.facts["jurisdiction_code"],
                town_code=self.facts["jurisdiction_code"][:9],
                village_code=self.facts["jurisdiction_code"],
                grid_code=self.facts["grid_code"],
            ),
        )
        return new_event(payload, producer="intake", jurisdiction_code="330727", key=str(self.id)).to_bytes()

    def attached(self, at) -> bytes:
        payload = ReportAttached(
            report_id=uuid4(),
            case_id=self.id,
            description="又看到了",
            category="manhole",
            channel="h5",
            submitted_at=at,
        )
        return new_event(payload, producer="intake", jurisdiction_code="330727", key=str(self.id)).to_bytes()


def history():
    """The scripted history: case topic events, sla topic events, report topic events, the cases."""
    a = Case("zhujian", village="330727001002", grid=GRID_A, co=["eco_env"])
    b = Case("zhujian", village="330727002003", grid=GRID_B)
    c = Case("chengguan", village="330727002003", grid=GRID_B, category="garbage")
    d = Case("zhujian", village="330727001002", grid=GRID_A, priority="normal", category="road")
    e = Case("eco_env", village="330727001002", grid=GRID_A, category="noise")
    g = Case("zhujian", village="330727001002", grid=GRID_A)
    cases = [
        # A: lead in time everywhere; the co-handler acknowledges late; rated 5; recurs later (G).
        a.dispatched(m(0)),
        a.step("case.acknowledged", m(5), department_code="zhujian"),
        a.step("case.acknowledged", m(12), department_code="eco_env"),
        a.step("case.plan_submitted", m(20), plan="联合处置"),
        a.step("case.resolved", m(50), result="ok"),
        a.step("case.verified", m(55), rating=5),
        # B: zhujian misses the claim and transfers after its deadline; chengguan gets an extension
        # (paused 10 minutes, +30) and resolves in time; rated 2.
        b.dispatched(m(0)),
        b.dispatched(m(15), action="transfer", department_code="chengguan", department_name=NAMES["chengguan"]),
        b.step("case.acknowledged", m(18), department_code="chengguan"),
        b.step("case.extension_requested", m(30), minutes=30),
        b.step("case.extension_approved", m(40), minutes=30),
        b.step("case.resolved", m(100), result="ok"),
        b.step("case.verified", m(110), rating=2),
        # C: resolved in time and rated 4, then reopened (回潮); the second resolution is late.
        c.dispatched(m(60)),
        c.step("case.acknowledged", m(65), department_code="chengguan"),
        c.step("case.resolved", m(80), result="ok"),
        c.step("case.verified", m(90), rating=4),
        c.dispatched(m(200), action="reopen"),
        c.step("case.acknowledged", m(205), department_code="chengguan"),
        c.step("case.resolved", m(270), result="ok"),
        # D (normal): returned by zhujian, dispatched to chengguan, still waiting.
        d.dispatched(m(30)),
        d.step("case.returned", m(40)),
        d.dispatched(m(50), department_code="chengguan", department_name=NAMES["chengguan"]),
        # E: cancelled after three minutes: counts for nothing but workload.
        e.dispatched(m(0)),
        e.step("case.cancelled", m(3)),
        # G: the same problem at A's place again (回潮 of A's resolution); claimed, still open.
        g.dispatched(m(300), recurrence_of=a.id),
        g.step("case.acknowledged", m(302), department_code="zhujian"),
    ]
    breaches = [
        a.breached("acknowledge", "eco_env", m(0), m(10)),
        b.breached("acknowledge", "zhujian", m(0), m(10)),
        c.breached("resolve", "chengguan", m(200), m(260)),
    ]
    reports = [
        a.report(seen_at=m(-3), submitted_at=m(-1)),
        b.report(seen_at=m(-20), submitted_at=m(-1)),
        a.attached(m(30)),
    ]
    return cases, breaches, reports, {"a": a, "b": b, "c": c, "d": d, "e": e, "g": g}


def figures_of(rows, key):
    [row] = [r for r in rows if r["key"] == key]
    return row


def rate(card, name):
    r = card[name]
    return (r["numerator"], r["n"], r["display"])


async def _scorecards(client, **params):
    response = await client.get("/api/v1/scorecards", params={"since": "2026-11-01", "until": "2026-11-30"} | params)
    assert response.status_code == 200, response.text
    return response.json()["rows"]


async def _settled(client):
    """The figures once every event is in (G's acknowledgement is the last case step)."""
    rows = await _scorecards(client, by="department", period="all")
    zhujian = [r for r in rows if r["key"] == "zhujian"]
    if not zhujian or zhujian[0]["acknowledged_in_time"]["n"] != 3 or zhujian[0]["reopened"]["numerator"] != 1:
        return None
    chengguan = figures_of(rows, "chengguan")
    return rows if chengguan["resolved_in_time"]["n"] == 3 and chengguan["supervised"] == 1 else None


async def test_scorecards_loop_hotspots_exports_and_rebuild(make_settings):
    settings = make_settings("sla", analytics_metrics_interval_s=0.2)
    await ensure_topics(settings)
    cases, breaches, reports, cases_by_name = history()
    # Breaches and reports first: analytics must not depend on the order of the topics.
    await publish(settings, SLA.name, *breaches)
    await publish(settings, REPORTS.name, *reports)
    await publish(settings, CASES.name, *cases)
    clock = lambda: m(-60)  # noqa: E731 - before every deadline: sla fires none, the script has the breaches
    async with running(sla_app(settings, clock=clock)) as client:
        client.headers.update(bearer(settings, "supervisor"))
        rows = await eventually(lambda: _settled(client), timeout=30)

        zhujian, chengguan, eco = (figures_of(rows, k) for k in ("zhujian", "chengguan", "eco_env"))
        assert rate(zhujian, "acknowledged_in_time") == (2, 3, "66.7%（2/3）")
        assert rate(zhujian, "resolved_in_time") == (1, 1, "100.0%（1/1）")
        assert rate(zhujian, "satisfied") == (1, 1, "100.0%（1/1）")
        assert rate(zhujian, "reopened") == (1, 1, "100.0%（1/1）")  # A recurred as G
        assert rate(zhujian, "returned") == (1, 4, "25.0%（1/4）")
        assert (zhujian["received"], zhujian["cases"], zhujian["supervised"]) == (4, 4, 1)
        assert zhujian["stage_minutes"]["ack"] == {"median": 3.5, "p90": 4.7}
        assert zhujian["stage_minutes"]["plan"] == {"median": 20.0, "p90": 20.0}

        assert rate(chengguan, "acknowledged_in_time") == (3, 3, "100.0%（3/3）")
        assert rate(chengguan, "resolved_in_time") == (2, 3, "66.7%（2/3）")
        assert rate(chengguan, "satisfied") == (1, 2, "50.0%（1/2）")
        assert rate(chengguan, "reopened") == (1, 3, "33.3%（1/3）")
        assert rate(chengguan, "returned") == (0, 4, "0.0%（0/4）")
        assert (chengguan["received"], chengguan["cases"], chengguan["supervised"]) == (4, 3, 1)
        assert chengguan["stage_minutes"]["resolve"]["median"] == 70.0

        # The co-handler's late acknowledgement is its own; it resolved nothing: 无数据, not 0 or 100 %.
        assert rate(eco, "acknowledged_in_time") == (0, 1, "0.0%（0/1）")
        assert eco["resolved_in_time"]["value"] is None and eco["resolved_in_time"]["display"] == "无数据"
        assert (eco["received"], eco["cases"], eco["supervised"]) == (1, 2, 1)
        # Ranked by the Wilson lower bound of 按期办结率: 2 of 3 above 1 of 1; no data, no rank.
        assert (chengguan["rank"], zhujian["rank"], eco["rank"]) == (1, 2, None)
        assert zhujian["resolved_in_time"]["lower_bound"] < chengguan["resolved_in_time"]["lower_bound"]

        # By town and by month: October has no cases, so every rate there is 无数据.
        months = await _scorecards(client, by="town", period="month", since="2026-10-01")
        assert {(r["key"], r["period_start"]) for r in months} == {
            (TOWN1, "2026-10-01"),
            (TOWN1, "2026-11-01"),
            (TOWN2, "2026-10-01"),
            (TOWN2, "2026-11-01"),
        }
        october = [r for r in months if r["period_start"] == "2026-10-01"]
        assert all(
            r[k]["display"] == "无数据" and r["rank"] is None for r in october for k in ("satisfied", "returned")
        )
        town2 = figures_of([r for r in months if r["period_start"] == "2026-11-01"], TOWN2)
        assert rate(town2, "resolved_in_time") == (2, 3, "66.7%（2/3）")  # B (chengguan) and C's two rounds
        grids = await _scorecards(client, by="grid", period="all", key=GRID_A)
        assert [r["received"] for r in grids] == [5]  # A, D twice, E, G

        # The seeds' loop, urgent cases only.
        response = await client.get(
            "/api/v1/scorecards/loop", params={"since": "2026-11-01", "until": "2026-11-30", "period": "all"}
        )
        loop = {
            r["key"]: {s: (v["numerator"], v["n"]) for s, v in r["stages"].items()} for r in response.json()["rows"]
        }
        assert loop["zhujian"] == {"discover_report": (1, 2), "claim": (2, 3), "joint_plan": (1, 1), "close": (1, 2)}
        assert loop["chengguan"] == {"discover_report": (0, 0), "claim": (3, 3), "joint_plan": (0, 0), "close": (1, 2)}
        assert loop["eco_env"] == {"discover_report": (0, 0), "claim": (0, 0), "joint_plan": (0, 0), "close": (0, 0)}

        # Hotspots: A's place has two reports and two cases (A and its recurrence G), both open.
        spots = (
            await client.get("/api/v1/hotspots", params={"since": "2026-11-01", "until": "2026-11-30", "period": "all"})
        ).json()
        assert (spots["reports"][0]["grid_code"], spots["reports"][0]["reports"]) == (GRID_A, 2)
        assert {(r["grid_code"], r["category"], tuple(r["departments"])) for r in spots["recurring"]} == {
            (GRID_A, "manhole", ("zhujian",)),
            (GRID_B, "garbage", ("chengguan",)),
        }
        [frequent] = spots["frequent"]
        assert (frequent["grid_code"], frequent["cases"], frequent["open_cases"], frequent["owner"]) == (
            GRID_A,
            2,
            2,
            "zhujian",
        )

        # The workbook: the figures and the rounds behind them.
        response_workbook = await client.get("/api/v1/exports/assessment.xlsx", params={"month": "2026-11"})
        assert response_workbook.status_code == 200
        book = load_workbook(io.BytesIO(response_workbook.content))
        assert book.sheetnames == ["考核汇总", "闭环时效", "案件清单", "说明"]
        summary = {row[1]: row for row in book["考核汇总"].iter_rows(min_row=2, values_only=True) if row and row[2]}
        assert summary["城市管理局"][0] == 1 and summary["城市管理局"][6] == 0.6667
        assert summary["生态环境分局"][6] == "无数据"
        listed = (
            await client.get("/api/v1/scorecards/cases", params={"since": "2026-11-01", "until": "2026-11-30"})
        ).json()["rounds"]
        assert len(listed) == 10 and book["案件清单"].max_row == 1 + len(listed)
        ends = {row[0]: row[-1] for row in book["案件清单"].iter_rows(min_row=2, values_only=True) if row[2] == "主办"}
        assert ends[cases_by_name["e"].facts["case_no"]] == "撤销"
        one = await client.get("/api/v1/exports/assessment.xlsx", params={"month": "2026-11", "department": "zhujian"})
        only = load_workbook(io.BytesIO(one.content))["考核汇总"]
        assert only.cell(row=2, column=2).value == "住房和城乡建设局" and only.cell(row=3, column=2).value is None

        response = await client.get(
            "/api/v1/exports/scorecards.csv", params={"since": "2026-11-01", "until": "2026-11-30", "period": "all"}
        )
        table = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert {r["key"]: r["resolved_in_time 按期办结率"] for r in table} == {
            "chengguan": str(round(2 / 3, 4)),
            "zhujian": "1.0",
            "eco_env": "无数据",
        }

        report = await client.get("/api/v1/reports/weekly.pdf", params={"week": "2026-11-26"})
        assert report.status_code == 200 and report.content.startswith(b"%PDF")
        if os.environ.get("GRIDLINK_SAVE_SAMPLES"):  # to look at them: the weekly report and the workbook
            samples = Path(os.environ["GRIDLINK_SAVE_SAMPLES"])
            samples.mkdir(parents=True, exist_ok=True)
            (samples / "weekly.pdf").write_bytes(report.content)
            (samples / "assessment.xlsx").write_bytes(response_workbook.content)

        # Business metrics for Grafana: this month (the clock's November) by department and town.
        async def exported():
            text = (await client.get("/metrics")).text
            wanted = 'gridlink_scorecard_rate{group="department",key="chengguan",rate="resolved_in_time"} 0.6667'
            return text if wanted in text else None

        text = await eventually(exported)
        assert 'gridlink_scorecard_rate{group="department",key="eco_env",rate="resolved_in_time"}' not in text
        assert 'gridlink_scorecard_sample{group="town",key="330727002",rate="resolved_in_time"} 3.0' in text

        # Who may read what. Another county's supervisor (several counties on one deployment) sees
        # none of this county's loop, hotspots or 复盘.
        client.headers.update(bearer(settings, "supervisor", jurisdiction_code="330728"))
        month = {"since": "2026-11-01", "until": "2026-11-30", "period": "all"}
        assert (await client.get("/api/v1/scorecards/loop", params=month)).json()["rows"] == []
        elsewhere = (await client.get("/api/v1/hotspots", params=month)).json()
        assert elsewhere["reports"] == elsewhere["recurring"] == elsewhere["frequent"] == []
        client.headers.update(bearer(settings, "handler", department_code="zhujian"))
        assert (await client.get("/api/v1/scorecards/cases", params={"department": "chengguan"})).status_code == 403
        own = await client.get("/api/v1/scorecards/cases", params={"since": "2026-11-01", "until": "2026-11-30"})
        assert {r["department_code"] for r in own.json()["rounds"]} == {"zhujian"}
        bad = await client.get("/api/v1/scorecards", params={"since": "2026-11-30", "until": "2026-11-01"})
        assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")
        assert (await client.get("/api/v1/exports/assessment.xlsx", params={"month": "2026-13"})).status_code == 400
        del client.headers["authorization"]
        assert (await client.get("/api/v1/scorecards")).status_code == 401

    # Rebuild from the start of the topics (sla stopped): the same figures again.
    await rebuild(settings)
    async with running(sla_app(settings, clock=clock)) as client:
        client.headers.update(bearer(settings, "dispatcher"))
        again = await eventually(lambda: _settled(client), timeout=30)
        assert again == rows


async def test_disputes_and_their_rulings_count_in_the_departments_score(make_settings):
    """退单 arbitration: a return overruled counts against the department that returned (its round
    goes on, and its resolution is its own); one upheld ends its round and the case goes elsewhere."""
    settings = make_settings("sla")
    await ensure_topics(settings)
    kept = Case("zhujian", village="330727001002", grid=GRID_A)
    moved = Case("zhujian", village="330727001002", grid=GRID_A)
    await publish(
        settings,
        CASES.name,
        kept.dispatched(m(0)),
        kept.step("case.acknowledged", m(2), department_code="zhujian"),
        kept.step("case.returned", m(4), department_code="zhujian"),
        kept.step("case.return_overruled", m(10), department_code="zhujian", ruling="overruled"),
        kept.step("case.resolved", m(40), result="ok"),
        moved.dispatched(m(0)),
        moved.step("case.returned", m(3), department_code="zhujian"),
        moved.dispatched(m(8), action="uphold_return", department_code="chengguan", department_name=NAMES["chengguan"]),
        moved.step("case.acknowledged", m(9), department_code="chengguan"),
    )
    clock = lambda: m(-60)  # noqa: E731 - before every deadline
    async with running(sla_app(settings, clock=clock)) as client:
        client.headers.update(bearer(settings, "supervisor"))

        async def settled():
            rows = await _scorecards(client, by="department", period="all")
            keys = {r["key"]: r for r in rows}
            done = "chengguan" in keys and keys["chengguan"]["acknowledged_in_time"]["n"] == 1
            return keys if done and keys["zhujian"]["resolved_in_time"]["n"] == 1 else None

        cards = await eventually(settled, timeout=30)
        zhujian, chengguan = cards["zhujian"], cards["chengguan"]
        assert rate(zhujian, "returned") == (2, 2, "100.0%（2/2）")
        assert rate(zhujian, "return_overruled") == (1, 2, "50.0%（1/2）")
        assert zhujian["disputes"] == {"returned": 2, "upheld": 1, "overruled": 1}
        assert rate(zhujian, "resolved_in_time") == (1, 1, "100.0%（1/1）")  # the overruled round went on
        assert rate(chengguan, "returned") == (0, 1, "0.0%（0/1）")
        assert chengguan["return_overruled"]["display"] == "无数据"
        listed = (
            await client.get("/api/v1/scorecards/cases", params={"since": "2026-11-01", "until": "2026-11-30"})
        ).json()["rounds"]
        ends = {(r["case_id"], r["department_code"]): r["end_reason"] for r in listed}
        assert ends == {
            (str(kept.id), "zhujian"): "resolved",
            (str(moved.id), "zhujian"): "uphold_return",
            (str(moved.id), "chengguan"): None,
        }
