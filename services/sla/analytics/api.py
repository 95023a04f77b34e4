"""Analytics routes for the console: scorecards (三率), the seeds' loop, hotspots, exports.

Who may read them: every staff role, like sla's department scores — the figures are the county's
published assessment of its departments (考核通报) and name departments, places and case numbers,
never residents. A handler (承办人员) sees its own department's case list and workbook only; the
figures across departments are public within the county's staff. Several counties may share one
deployment: every figure here (scorecards, their CSV, the loop, hotspots, the case list, the
workbook and the weekly report) counts the asking person's county only (the first 6 digits of
their jurisdiction).
"""

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response

from services.sla.analytics import exports, figures, store
from services.sla.calendar import CST
from shared.auth import Actor
from shared.events import utcnow
from shared.problems import Problem
from shared.web import CurrentActor

router = APIRouter(prefix="/api/v1")

Group = Literal["department", "town", "village", "grid", "category", "county"]
Period = Literal["day", "week", "month", "all"]
MAX_DAYS = 400  # a little over a year: a year's daily scorecards, or several years by month
CODE = r"^[A-Za-z0-9_.-]{1,64}$"  # department, division and category codes


async def _connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    async with request.app.state.analytics.pool.acquire() as conn:
        yield conn


AnalyticsConnection = Annotated[asyncpg.Connection, Depends(_connection)]


def _today() -> date:
    return utcnow().astimezone(CST).date()


FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


def _within_years(*days: date) -> None:
    if any(not FIRST_DAY <= day <= LAST_DAY for day in days):
        raise Problem(400, "Invalid date", "日期须在 2000 年至 2099 年之间，请检查年份。", kind="invalid-period")


def _range(since: date | None, until: date | None, *, period: str = "all") -> tuple[date, date]:
    """The period asked for: by default the 30 days to today (Beijing time)."""
    until = until or _today()
    _within_years(until, *([since] if since else []))
    since = since or until - timedelta(days=30)
    if since > until:
        raise Problem(400, "Invalid period", "since 不能晚于 until，请调整起止日期。", kind="invalid-period")
    if (until - since).days > MAX_DAYS * (31 if period == "month" else 7 if period == "week" else 1):
        raise Problem(
            400, "Period too long", "查询区间过长：按日最多 400 天，请缩短区间或按周、按月统计。", kind="invalid-period"
        )
    return since, until


def _own_department(actor: Actor, department: str | None) -> str | None:
    """A handler reads its own department's cases only."""
    if actor.role != "handler":
        return department
    if department not in (None, actor.department_code):
        raise Problem(403, "Not your department", "承办人员只能查看本部门的案件清单和考核表。", kind="forbidden")
    return actor.department_code


def _county(actor: Actor) -> str:
    """The county whose figures the person may read: their jurisdiction's first 6 digits."""
    return actor.jurisdiction_code[:6]


@router.get("/scorecards")
async def scorecards(
    conn: AnalyticsConnection,
    actor: CurrentActor,
    by: Group = "department",
    period: Period = "month",
    since: date | None = None,
    until: date | None = None,
    key: str | None = Query(None, pattern=CODE, description="one department/town/village/grid/category code"),
) -> dict[str, Any]:
    """Scorecards per department, town, village, grid or category and period: 及时签收率, 按期办结率,
    群众满意率, 回潮率, 退单率 (each with numerator, sample size n, Wilson lower bound and what a
    reader sees: a rate without data is null and "无数据"), 督办 count, workload, stage times.
    Ranked within each period by the Wilson lower bound of 按期办结率.

    Who: any staff member (see the module docstring)."""
    since, until = _range(since, until, period=period)
    rows = await figures.scorecards(
        conn, by=by, period=period, since=since, until=until, key=key, county=_county(actor)
    )
    return {"by": by, "period": period, "since": since, "until": until, "ranked_by": figures.RANKED_BY, "rows": rows}


@router.get("/scorecards/loop")
async def loop(
    conn: AnalyticsConnection,
    actor: CurrentActor,
    by: Group = "department",
    period: Period = "month",
    since: date | None = None,
    until: date | None = None,
    key: str | None = Query(None, pattern=CODE),
) -> dict[str, Any]:
    """The seeds' loop for urgent cases: discovered→reported (5 min, when the report says when it
    was seen), dispatched→claimed (10 min), joint plan (30 min, cases with co-handlers), closed
    (60 min); per key and period, the share within each target and its sample.

    Who: any staff member."""
    since, until = _range(since, until, period=period)
    rows = await figures.loop(
        conn, by=by, period=period, since=since, until=until, as_of=utcnow(), key=key, county=_county(actor)
    )
    return {"by": by, "period": period, "since": since, "until": until, "rows": rows}


@router.get("/hotspots")
async def hotspots(
    conn: AnalyticsConnection,
    actor: CurrentActor,
    period: Period = "week",
    since: date | None = None,
    until: date | None = None,
    limit: int = Query(10, ge=1, le=100),
) -> dict[str, Any]:
    """Hotspots and 复盘: grids and categories with most reports per period, recurring problems
    (回潮) grouped by place, and the weekly review's frequent problems with their owners.

    Who: any staff member."""
    since, until = _range(since, until, period=period)
    return {
        "since": since,
        "until": until,
        "period": period,
        **await figures.hotspots(conn, since=since, until=until, period=period, limit=limit, county=_county(actor)),
    }


@router.get("/scorecards/cases")
async def case_list(
    conn: AnalyticsConnection,
    actor: CurrentActor,
    since: date | None = None,
    until: date | None = None,
    department: str | None = Query(None, pattern=CODE),
) -> dict[str, Any]:
    """The rounds behind the figures (one per department per dispatch), with what counted.

    Who: any staff member; a handler only for their own department."""
    since, until = _range(since, until)
    rows = await store.case_list(
        conn, since=since, until=until, department_code=_own_department(actor, department), county=_county(actor)
    )
    return {"since": since, "until": until, "rounds": [dict(r) for r in rows]}


def _month(month: str | None) -> tuple[date, date]:
    if month is None:
        first = _today().replace(day=1)
    else:
        try:
            year, number = (int(part) for part in month.split("-"))
            first = date(year, number, 1)
            _within_years(first)
        except ValueError:
            raise Problem(400, "Invalid month", "month 格式为 YYYY-MM，例如 2026-11。", kind="invalid-period") from None
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return first, last


@router.get("/exports/assessment.xlsx", response_class=Response)
async def assessment_workbook(
    request: Request,
    conn: AnalyticsConnection,
    actor: CurrentActor,
    month: str | None = Query(None, max_length=7, description="YYYY-MM, Beijing time; this month by default"),
    department: str | None = Query(None, pattern=CODE, description="one department code; all by default"),
) -> Response:
    """The monthly assessment workbook (月度考核表): the scorecard of each department, its seeds'
    loop, and the case list behind the figures.

    Who: any staff member; a handler only for their own department."""
    since, until = _month(month)
    body = await exports.assessment_workbook(
        conn,
        names=request.app.state.names,
        since=since,
        until=until,
        department=_own_department(actor, department),
        county=_county(actor),
    )
    name = f"assessment-{since:%Y-%m}{'-' + department if department else ''}.xlsx"
    return Response(
        body,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@router.get("/exports/scorecards.csv", response_class=Response)
async def scorecards_csv(
    request: Request,
    conn: AnalyticsConnection,
    actor: CurrentActor,
    by: Group = "department",
    period: Period = "month",
    since: date | None = None,
    until: date | None = None,
) -> Response:
    """The scorecards as CSV (UTF-8 with BOM, so Excel opens the Chinese headers right).

    Who: any staff member."""
    since, until = _range(since, until, period=period)
    rows = await figures.scorecards(conn, by=by, period=period, since=since, until=until, county=_county(actor))
    return Response(
        exports.scorecards_csv(rows, names=request.app.state.names, by=by),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="scorecards-{by}-{since}-{until}.csv"'},
    )


@router.get("/reports/weekly.pdf", response_class=Response)
async def weekly_report(
    request: Request,
    conn: AnalyticsConnection,
    actor: CurrentActor,
    week: Annotated[
        date | None, Query(description="any day of the week (Monday to Sunday); last week by default")
    ] = None,
) -> Response:
    """The weekly report for county leaders (周报): 三率 by department and town with charts, the
    seeds' loop, hotspots and frequent problems with owners, as a PDF.

    Who: any staff member."""
    day = week or _today() - timedelta(days=7)
    _within_years(day)
    monday = day - timedelta(days=day.weekday())
    body = await exports.weekly_report(
        conn, names=request.app.state.names, monday=monday, as_of=utcnow(), county=_county(actor)
    )
    return Response(
        body,
        media_type="application/pdf",
        headers={"content-disposition": f'attachment; filename="weekly-{monday}.pdf"'},
    )
