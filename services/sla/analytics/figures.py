"""Scorecards, the loop and hotspots as readers get them: the SQL counts made into rates (pure
rules in scorecards.py), every period in range present, ranked fairly."""

from datetime import date, datetime
from typing import Any

import asyncpg

from services.sla.analytics import store
from services.sla.analytics.scorecards import LOOP_TARGETS, Rate, complete_grid, period_starts, rank, scorecard

RANKED_BY = "resolved_in_time"  # 按期办结率: what departments are assessed on


def _sort_key(key: str | None) -> tuple[bool, str]:
    return (key is None, key or "")


async def scorecards(
    conn: asyncpg.Connection,
    *,
    by: str,
    period: str,
    since: date,
    until: date,
    key: str | None = None,
    county: str = "",
) -> list[dict[str, Any]]:
    """One scorecard per key and period, ranked within each period by the Wilson lower bound of
    按期办结率; a key with no cases in a period gets a card whose rates are None (无数据). With
    `county` (a county's 6 digits), only that county's cases count."""
    counts = await store.scorecard_counts(
        conn, group=by, period=period, since=since, until=until, key=key, county=county
    )
    rows = [dict(r) for r in counts]
    keys = [key] if key is not None else sorted({r["key"] for r in rows}, key=_sort_key)
    grid = complete_grid(rows, period=period, since=since, until=until, keys=keys)
    cards = [{"key": r["key"], "period_start": r["period_start"], **scorecard(r)} for r in grid]
    ranked: list[dict[str, Any]] = []
    for start in period_starts(period, since, until):
        ranked += rank([c for c in cards if c["period_start"] == start], by=RANKED_BY)
    return ranked


async def loop(
    conn: asyncpg.Connection,
    *,
    by: str,
    period: str,
    since: date,
    until: date,
    as_of: datetime,
    key: str | None = None,
    county: str = "",
) -> list[dict[str, Any]]:
    """The seeds' loop per key and period: the share of urgent cases within each target; with
    `county`, of that county's cases only."""
    rows = await store.loop_counts(
        conn,
        group=by,
        period=period,
        since=since,
        until=until,
        as_of=as_of,
        targets=LOOP_TARGETS,
        key=key,
        county=county,
    )
    found = {(r["stage"], r["key"], r["period_start"]): r for r in rows}
    keys = [key] if key is not None else sorted({r["key"] for r in rows}, key=_sort_key)
    result = []
    for k in keys:
        for start in period_starts(period, since, until):
            stages = {}
            for stage, minutes in LOOP_TARGETS.items():
                row = found.get((stage, k, start))
                rate = Rate(row["ok"], row["n"]) if row else Rate(0, 0)
                stages[stage] = {"target_minutes": minutes, **rate.as_dict()}
            result.append({"key": k, "period_start": start, "stages": stages})
    return result


async def hotspots(
    conn: asyncpg.Connection, *, since: date, until: date, period: str, limit: int, county: str = ""
) -> dict[str, Any]:
    """Where reports gather, what recurs and what keeps coming back; with `county`, in that county."""
    reports = await store.report_hotspots(conn, since=since, until=until, period=period, limit=limit, county=county)
    recurring = await store.recurring_problems(conn, since=since, until=until, limit=limit, county=county)
    frequent = await store.frequent_problems(conn, since=since, until=until, limit=limit, county=county)
    return {
        "reports": [dict(r) for r in reports],
        "recurring": [dict(r) for r in recurring],
        "frequent": [dict(r) for r in frequent],
    }
