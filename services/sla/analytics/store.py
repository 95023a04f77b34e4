"""Analytics' SQL: rounds, breaches and reports in, scorecards, the loop and hotspots out."""

from dataclasses import fields
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.sla.analytics.scorecards import Breach, Round
from services.sla.calendar import CST

ROUND_COLUMNS = [f.name for f in fields(Round)]

# What a scorecard can be grouped by; each is a column of rounds (county: everything together).
GROUPS = {
    "department": "department_code",
    "town": "town_code",
    "village": "village_code",
    "grid": "grid_code",
    "category": "category",
    "county": "'county'",
}
PERIODS = ("day", "week", "month", "all")


def round_record(r: Round) -> tuple:
    """A round as a row of the rounds table (ROUND_COLUMNS, then day)."""
    return (*(getattr(r, name) for name in ROUND_COLUMNS), r.started_at.astimezone(CST).date())


def _round(row: asyncpg.Record) -> Round:
    return Round(**{name: row[name] for name in ROUND_COLUMNS})


async def case_rounds(conn: asyncpg.Connection, *, case_id: UUID) -> list[Round]:
    rows = await conn.fetch("SELECT * FROM rounds WHERE case_id = $1 ORDER BY started_at, lead DESC", case_id)
    return [_round(r) for r in rows]


async def case_breaches(conn: asyncpg.Connection, *, case_id: UUID) -> list[Breach]:
    rows = await conn.fetch(
        "SELECT case_id, department_code, started_at, stage FROM breaches WHERE case_id = $1", case_id
    )
    return [Breach(**dict(r)) for r in rows]


async def save_rounds(conn: asyncpg.Connection, rounds: list[Round]) -> None:
    """Insert or update rounds (by their key)."""
    if not rounds:
        return
    columns = [*ROUND_COLUMNS, "day"]
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in ("case_id", "department_code", "started_at"))
    await conn.executemany(
        f"INSERT INTO rounds ({', '.join(columns)}) VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))})"
        f" ON CONFLICT (case_id, department_code, started_at) DO UPDATE SET {updates}",
        [round_record(r) for r in rounds],
    )


async def save_breach(conn: asyncpg.Connection, breach: Breach, *, fired_at: datetime | None) -> None:
    await conn.execute(
        "INSERT INTO breaches (case_id, department_code, started_at, stage, fired_at) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT DO NOTHING",
        breach.case_id,
        breach.department_code,
        breach.started_at,
        breach.stage,
        fired_at,
    )


async def save_report(conn: asyncpg.Connection, **report: Any) -> None:
    report["day"] = report["submitted_at"].astimezone(CST).date()
    columns = list(report)
    await conn.execute(
        f"INSERT INTO reports ({', '.join(columns)}) VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))})"
        " ON CONFLICT (report_id) DO NOTHING",
        *report.values(),
    )


def _minutes(a: str, b: str) -> str:
    return f"extract(epoch FROM {b} - {a}) / 60"


SCORECARD_SQL = """
SELECT {key} AS key, {period} AS period_start,
  count(*) FILTER (WHERE lead) AS received,
  count(DISTINCT case_id) AS cases,
  count(*) FILTER (WHERE acknowledged_at IS NOT NULL AND NOT ack_late) AS ack_on_time,
  count(*) FILTER (WHERE acknowledged_at IS NOT NULL OR ack_late) AS ack_n,
  count(*) FILTER (WHERE lead AND resolved_at IS NOT NULL AND NOT resolve_late) AS resolve_on_time,
  count(*) FILTER (WHERE lead AND (resolved_at IS NOT NULL OR resolve_late)) AS resolve_n,
  count(*) FILTER (WHERE lead AND rating >= 4) AS satisfied,
  count(*) FILTER (WHERE lead AND rating IS NOT NULL) AS rated,
  count(*) FILTER (WHERE lead AND resolved_at IS NOT NULL AND reopened) AS reopened,
  count(*) FILTER (WHERE lead AND resolved_at IS NOT NULL) AS resolved,
  count(*) FILTER (WHERE lead AND returned_at IS NOT NULL) AS returned,
  count(*) FILTER (WHERE lead AND returns_overruled > 0) AS returns_overruled,
  count(*) FILTER (WHERE lead AND returned_at IS NOT NULL AND end_reason = 'uphold_return') AS returns_upheld,
  coalesce(sum(ack_late::int + plan_late::int + resolve_late::int), 0) AS supervised,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY {ack}) AS ack_median,
  percentile_cont(0.9) WITHIN GROUP (ORDER BY {ack}) AS ack_p90,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY {plan}) AS plan_median,
  percentile_cont(0.9) WITHIN GROUP (ORDER BY {plan}) AS plan_p90,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY {resolve}) AS resolve_median,
  percentile_cont(0.9) WITHIN GROUP (ORDER BY {resolve}) AS resolve_p90
FROM rounds
WHERE day >= $1 AND day <= $2 AND ($3::text IS NULL OR {key} = $3) AND starts_with(coalesce(jurisdiction_code, ''), $4)
GROUP BY 1, 2
ORDER BY 1, 2
"""


def period_expression(period: str) -> str:
    if period not in PERIODS:
        raise ValueError(f"unknown period {period}")
    return "$1::date" if period == "all" else f"date_trunc('{period}', day)::date"


async def scorecard_counts(
    conn: asyncpg.Connection,
    *,
    group: str,
    period: str,
    since: date,
    until: date,
    key: str | None = None,
    county: str = "",
) -> list[asyncpg.Record]:
    """Per (group key, period start): the counts every rate and time of a scorecard is made of;
    with `county`, of that county's cases only (several counties in one deployment)."""
    sql = SCORECARD_SQL.format(
        key=GROUPS[group],
        period=period_expression(period),
        ack=_minutes("started_at", "acknowledged_at"),
        plan=_minutes("started_at", "plan_at"),
        resolve=f"CASE WHEN lead THEN {_minutes('started_at', 'resolved_at')} END",
    )
    return await conn.fetch(sql, since, until, key, county)


LOOP_SQL = """
-- A round ended (transferred, cancelled) before its target without the step is not counted: it
-- was not that department's to do. One still open past its target counts as missed at `as_of`.
WITH claims AS (  -- every lead round of an urgent case: claimed (接单) within 10 minutes?
  SELECT {key} AS key, {period} AS period_start,
    count(*) FILTER (WHERE acknowledged_at - started_at <= make_interval(mins => $4)) AS ok,
    count(*) FILTER (WHERE acknowledged_at IS NOT NULL
                     OR coalesce(ended_at, $7) - started_at > make_interval(mins => $4)) AS n
  FROM rounds WHERE lead AND priority = 'urgent' AND day >= $1 AND day <= $2 AND ($3::text IS NULL OR {key} = $3)
    AND starts_with(coalesce(jurisdiction_code, ''), $8)
  GROUP BY 1, 2
), plans AS (  -- every lead round with co-handlers: a joint plan within 30 minutes?
  SELECT {key} AS key, {period} AS period_start,
    count(*) FILTER (WHERE plan_at - started_at <= make_interval(mins => $5)) AS ok,
    count(*) FILTER (WHERE plan_at IS NOT NULL
                     OR coalesce(ended_at, $7) - started_at > make_interval(mins => $5)) AS n
  FROM rounds WHERE lead AND joint AND priority = 'urgent' AND day >= $1 AND day <= $2
    AND ($3::text IS NULL OR {key} = $3) AND starts_with(coalesce(jurisdiction_code, ''), $8)
  GROUP BY 1, 2
), cases AS (  -- every urgent case: closed (first 办结) within 60 minutes of its first dispatch?
  -- the case's close belongs to the round that resolved it first (or, unresolved, its latest round)
  SELECT (array_agg({key} ORDER BY resolved_at NULLS LAST, started_at DESC))[1] AS key, min(day) AS day,
         min(started_at) AS first_started, min(resolved_at) AS first_resolved,
         -- until when the case was open: now while a round runs, else its last round's end
         CASE WHEN bool_or(ended_at IS NULL) THEN $7 ELSE max(ended_at) END AS open_until
  FROM rounds WHERE lead AND priority = 'urgent' AND starts_with(coalesce(jurisdiction_code, ''), $8)
  GROUP BY case_id
), closes AS (
  SELECT key, {period} AS period_start,
    count(*) FILTER (WHERE first_resolved - first_started <= make_interval(mins => $6)) AS ok,
    count(*) FILTER (WHERE first_resolved IS NOT NULL OR open_until - first_started > make_interval(mins => $6)) AS n
  FROM cases WHERE day >= $1 AND day <= $2 AND ($3::text IS NULL OR key = $3)
  GROUP BY 1, 2
)
SELECT 'claim' AS stage, * FROM claims UNION ALL
SELECT 'joint_plan', * FROM plans UNION ALL
SELECT 'close', * FROM closes
"""

DISCOVER_SQL = """
SELECT {key} AS key, {period} AS period_start,
  count(*) FILTER (WHERE r.submitted_at - r.seen_at <= make_interval(mins => $4)) AS ok,
  count(*) AS n
FROM reports r
LEFT JOIN LATERAL (
  SELECT department_code, jurisdiction_code FROM rounds o WHERE o.case_id = r.case_id AND o.lead
  ORDER BY started_at LIMIT 1
) first_round ON true
WHERE r.seen_at IS NOT NULL AND NOT r.attached AND r.day >= $1 AND r.day <= $2 AND ($3::text IS NULL OR {key} = $3)
  AND starts_with(coalesce(r.town_code, first_round.jurisdiction_code, ''), $5)
GROUP BY 1, 2
"""

REPORT_GROUPS = {
    "department": "first_round.department_code",
    "town": "r.town_code",
    "village": "r.village_code",
    "grid": "r.grid_code",
    "category": "r.category",
    "county": "'county'",
}


async def loop_counts(
    conn: asyncpg.Connection,
    *,
    group: str,
    period: str,
    since: date,
    until: date,
    as_of: datetime,
    targets: dict[str, int],
    key: str | None = None,
    county: str = "",
) -> list[asyncpg.Record]:
    """Per (stage, key, period start): how many of the seeds' loop steps were within target, of how
    many are decided (done, ended, or already past their target at `as_of`); with `county`, of that
    county's cases only."""
    sql = LOOP_SQL.format(key=GROUPS[group], period=period_expression(period))
    targets_in_order = (targets["claim"], targets["joint_plan"], targets["close"])
    rows = list(await conn.fetch(sql, since, until, key, *targets_in_order, as_of, county))
    discover = DISCOVER_SQL.format(key=REPORT_GROUPS[group], period=period_expression(period).replace("day", "r.day"))
    for row in await conn.fetch(discover, since, until, key, targets["discover_report"], county):
        rows.append({"stage": "discover_report", **dict(row)})
    return rows


async def case_list(
    conn: asyncpg.Connection, *, since: date, until: date, department_code: str | None = None, county: str = ""
) -> list[asyncpg.Record]:
    """The rounds behind a scorecard (the workbook's case list), oldest first; with `county`, that
    county's only."""
    return await conn.fetch(
        "SELECT * FROM rounds WHERE day >= $1 AND day <= $2 AND ($3::text IS NULL OR department_code = $3)"
        " AND starts_with(coalesce(jurisdiction_code, ''), $4) ORDER BY started_at, case_id, lead DESC",
        since,
        until,
        department_code,
        county,
    )


async def report_hotspots(
    conn: asyncpg.Connection, *, since: date, until: date, period: str, limit: int, county: str = ""
) -> list[asyncpg.Record]:
    """Grids and categories with the most reports per period (一事多报 included); with `county`,
    that county's reports only (placed, or their case's)."""
    return await conn.fetch(
        f"""
        WITH placed AS (
          SELECT r.day, r.category,
                 coalesce(r.grid_code, (SELECT grid_code FROM rounds o WHERE o.case_id = r.case_id LIMIT 1)) AS grid,
                 coalesce(r.town_code, (SELECT town_code FROM rounds o WHERE o.case_id = r.case_id LIMIT 1)) AS town
          FROM reports r WHERE r.day >= $1 AND r.day <= $2 AND starts_with(
            coalesce(r.town_code, (SELECT jurisdiction_code FROM rounds o WHERE o.case_id = r.case_id LIMIT 1), ''), $4
          )
        ), counted AS (
          SELECT {period_expression(period)} AS period_start, grid, town, category, count(*) AS reports
          FROM placed GROUP BY 1, 2, 3, 4
        ), numbered AS (
          SELECT *, row_number() OVER (PARTITION BY period_start ORDER BY reports DESC, grid, category) AS n
          FROM counted
        )
        SELECT period_start, grid AS grid_code, town AS town_code, category, reports FROM numbered
        WHERE n <= $3 ORDER BY period_start, reports DESC, grid_code, category
        """,
        since,
        until,
        limit,
        county,
    )


async def recurring_problems(
    conn: asyncpg.Connection, *, since: date, until: date, limit: int, county: str = ""
) -> list[asyncpg.Record]:
    """回潮 by place: grids and categories whose resolutions did not hold, with who resolved them."""
    return await conn.fetch(
        """
        SELECT grid_code, town_code, category, count(*) AS reopened, count(DISTINCT case_id) AS cases,
               array_agg(DISTINCT department_code ORDER BY department_code) AS departments,
               array_agg(DISTINCT case_no ORDER BY case_no) FILTER (WHERE case_no IS NOT NULL) AS case_nos
        FROM rounds
        WHERE lead AND reopened AND day >= $1 AND day <= $2 AND starts_with(coalesce(jurisdiction_code, ''), $4)
        GROUP BY grid_code, town_code, category
        ORDER BY reopened DESC, grid_code NULLS LAST, category
        LIMIT $3
        """,
        since,
        until,
        limit,
        county,
    )


async def frequent_problems(
    conn: asyncpg.Connection, *, since: date, until: date, limit: int, county: str = ""
) -> list[asyncpg.Record]:
    """The weekly review's list: the place and category with most cases, their owner (the department
    that most often led them) and how many are still open."""
    return await conn.fetch(
        """
        WITH cases AS (
          SELECT case_id, (array_agg(grid_code ORDER BY started_at DESC))[1] AS grid_code,
                 (array_agg(town_code ORDER BY started_at DESC))[1] AS town_code,
                 (array_agg(category ORDER BY started_at DESC))[1] AS category,
                 (array_agg(department_code ORDER BY started_at DESC))[1] AS owner,
                 bool_or(resolved_at IS NOT NULL AND NOT reopened) AS settled,
                 min(case_no) AS case_no
          FROM rounds WHERE lead AND day >= $1 AND day <= $2 AND starts_with(coalesce(jurisdiction_code, ''), $4)
          GROUP BY case_id
        )
        SELECT grid_code, town_code, category, count(*) AS cases,
               count(*) FILTER (WHERE NOT settled) AS open_cases,
               mode() WITHIN GROUP (ORDER BY owner) AS owner,
               array_agg(case_no ORDER BY case_no) FILTER (WHERE case_no IS NOT NULL) AS case_nos
        FROM cases GROUP BY grid_code, town_code, category
        HAVING count(*) >= 2
        ORDER BY cases DESC, open_cases DESC, grid_code NULLS LAST, category
        LIMIT $3
        """,
        since,
        until,
        limit,
        county,
    )


async def reset(conn: asyncpg.Connection) -> None:
    """Forget every figure and every processed mark (a rebuild reads the topics again)."""
    await conn.execute("TRUNCATE rounds, breaches, reports, recurrences, processed_events")


async def save_recurrence(conn: asyncpg.Connection, *, case_id: UUID, later_case: UUID, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO recurrences (case_id, later_case, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        case_id,
        later_case,
        at,
    )


async def recurrence_times(conn: asyncpg.Connection, *, case_id: UUID) -> list[datetime]:
    return [r["at"] for r in await conn.fetch("SELECT at FROM recurrences WHERE case_id = $1", case_id)]
