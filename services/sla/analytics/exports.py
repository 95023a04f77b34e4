"""Exports and reports people read: the monthly assessment workbook (openpyxl), CSV, and the weekly
report for county leaders (PDF, charts by matplotlib). Rates without data read "无数据"; times are
Beijing time; departments, towns and categories by their Chinese names."""

import asyncio
import csv
import io
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import matplotlib

matplotlib.use("Agg")  # no display: render to files only

from matplotlib import font_manager  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from openpyxl import Workbook  # noqa: E402
from openpyxl.styles import Alignment, Font, PatternFill  # noqa: E402
from openpyxl.utils import get_column_letter  # noqa: E402

from services.sla.analytics import figures, store  # noqa: E402
from services.sla.analytics.scorecards import LOOP_TARGETS, NO_DATA, RATES, minutes_or_no_data  # noqa: E402
from services.sla.calendar import CST  # noqa: E402
from services.sla.settings import SlaSettings  # noqa: E402
from shared.jurisdictions import load_county  # noqa: E402
from shared.taxonomy import load_taxonomy  # noqa: E402

LOOP_LABELS = {"discover_report": "发现→上报", "claim": "派单→接单", "joint_plan": "联动方案", "close": "办结"}
GROUP_LABELS = {"department": "部门", "town": "乡镇/街道", "village": "村/社区", "grid": "网格", "category": "问题类别"}
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "WenQuanYi Zen Hei", "SimHei")


@dataclass(frozen=True)
class Names:
    """Chinese names of departments, divisions and categories (codes where a name is unknown)."""

    departments: dict[str, str]
    divisions: dict[str, str]
    categories: dict[str, str]

    def of(self, group: str, key: str | None) -> str:
        if key is None:
            return "（未定位）" if group in ("town", "village", "grid") else "（未知）"
        table = {"department": self.departments, "category": self.categories, "county": {"county": "全县"}}.get(
            group, self.divisions
        )
        return table.get(key, key)


def load_names(settings: SlaSettings) -> Names:
    """The county's names, from the responsibility list and the map sla's settings name."""
    taxonomy = load_taxonomy(settings.responsibility_list_path)
    county = load_county(settings.county_map_path)
    divisions = {county.code: county.name}
    for table in (county.towns, county.villages, county.grids):
        divisions.update({code: item.name for code, item in table.items()})
    categories = {code: c.name for code, c in taxonomy.categories.items()}
    return Names(departments=dict(taxonomy.departments), divisions=divisions, categories=categories)


def _cst(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(CST).strftime("%Y-%m-%d %H:%M")


def _percent(rate: dict[str, Any]) -> float | str:
    return NO_DATA if rate["value"] is None else rate["value"]


# --- the monthly assessment workbook -------------------------------------------------------------

HEADER = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="1F4E79")
SCORE_COLUMNS = [
    ("排名", 6),
    ("部门", 22),
    ("收件量", 8),
    ("案件数", 8),
    *[(f"{label}{suffix}", 12 if suffix else 11) for _, (_, _, label) in RATES.items() for suffix in ("", "样本")],
    ("督办次数", 9),
    ("签收用时中位", 12),
    ("签收用时P90", 12),
    ("办结用时中位", 12),
    ("办结用时P90", 12),
]


def _sheet(wb: Workbook, title: str, columns: list[tuple[str, int]], *, first: bool = False):
    ws = wb.active if first else wb.create_sheet()
    ws.title = title
    ws.append([name for name, _ in columns])
    for index, (_, width) in enumerate(columns, 1):
        ws.column_dimensions[get_column_letter(index)].width = width
        cell = ws.cell(row=1, column=index)
        cell.font, cell.fill = HEADER, HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    ws.freeze_panes = "A2"
    return ws


def _format_rates(ws, row: int, columns: list[int]) -> None:
    for column in columns:
        cell = ws.cell(row=row, column=column)
        if isinstance(cell.value, float):
            cell.number_format = "0.0%"
        else:
            cell.alignment = Alignment(horizontal="center")


async def assessment_workbook(
    conn: asyncpg.Connection, *, names: Names, since: date, until: date, department: str | None, county: str = ""
) -> bytes:
    """The monthly assessment workbook: 考核汇总 (every department, or one), 闭环时效, 案件清单; with
    `county`, every sheet counts that county's cases only."""
    cards = await figures.scorecards(
        conn, by="department", period="all", since=since, until=until, key=department, county=county
    )
    loops = await figures.loop(
        conn,
        by="department",
        period="all",
        since=since,
        until=until,
        as_of=datetime.combine(until + timedelta(days=1), datetime.min.time(), CST),
        key=department,
        county=county,
    )
    rounds = await store.case_list(conn, since=since, until=until, department_code=department, county=county)
    return await asyncio.to_thread(_build_workbook, names, since, until, cards, loops, rounds)


def _build_workbook(n: Names, since: date, until: date, cards, loops, rounds) -> bytes:
    wb = Workbook()
    ws = _sheet(wb, "考核汇总", SCORE_COLUMNS, first=True)
    for card in cards:
        values: list[Any] = [card["rank"] or "—", n.of("department", card["key"]), card["received"], card["cases"]]
        for rate in RATES:
            values += [_percent(card[rate]), card[rate]["n"]]
        values.append(card["supervised"])
        for stage in ("ack", "resolve"):
            values += [minutes_or_no_data(card["stage_minutes"][stage][q]) for q in ("median", "p90")]
        ws.append(values)
        _format_rates(ws, ws.max_row, [5 + 2 * i for i in range(len(RATES))])
    ws.append([])
    ws.append(
        [
            f"统计期间：{since} 至 {until}（北京时间，按派单日期）。"
            "排名按“按期办结率”的威尔逊下限（95%），样本小的部门不会因偶然排前。"
        ]
    )
    ws.append(["无数据：该期间没有可计入的案件，不是 0% 也不是 100%。转派、重新办理的计入规则见“说明”。"])

    ws = _sheet(
        wb,
        "闭环时效",
        [
            ("部门", 22),
            *[(f"{LOOP_LABELS[s]}（{m}分钟内）", 16) for s, m in LOOP_TARGETS.items()],
            *[(f"{LOOP_LABELS[s]}样本", 10) for s in LOOP_TARGETS],
        ],
    )
    for row in loops:
        stages = row["stages"]
        ws.append(
            [n.of("department", row["key"])]
            + [_percent(stages[s]) for s in LOOP_TARGETS]
            + [stages[s]["n"] for s in LOOP_TARGETS]
        )
        _format_rates(ws, ws.max_row, list(range(2, 2 + len(LOOP_TARGETS))))

    columns = [
        ("案件编号", 18), ("部门", 20), ("主办/协办", 9), ("派单方式", 9), ("类别", 18), ("紧急程度", 8),
        ("乡镇/街道", 14), ("村/社区", 14), ("网格", 14), ("派单时间", 17), ("签收时间", 17), ("联动方案", 17),
        ("办结时间", 17), ("退回时间", 17), ("签收超时", 8), ("方案超时", 8), ("办结超时", 8), ("回潮", 6),
        ("满意度", 7), ("延期次数", 8), ("暂停分钟", 8), ("结束原因", 10),
    ]  # fmt: skip
    ws = _sheet(wb, "案件清单", columns)
    actions = {
        "dispatch": "派单",
        "transfer": "转派",
        "reopen": "重新办理",
        "escalate": "上报",
        "reclassify": "改类",
        "uphold_return": "退单改派",
    }
    ends = actions | {
        "resolved": "办结",
        "returned": "退回",
        "uphold_return": "退回（仲裁支持）",
        "escalated": "上报",
        "merged": "合并",
        "cancelled": "撤销",
        "unfounded": "核实不属实",
        "closed": "结案",
    }
    for r in rounds:
        ws.append(
            [
                r["case_no"] or str(r["case_id"]),
                n.of("department", r["department_code"]),
                "主办" if r["lead"] else "协办",
                actions.get(r["action"], r["action"]),
                n.of("category", r["category"]),
                "紧急" if r["priority"] == "urgent" else "一般",
                n.of("town", r["town_code"]),
                n.of("village", r["village_code"]),
                n.of("grid", r["grid_code"]),
                _cst(r["started_at"]),
                _cst(r["acknowledged_at"]),
                _cst(r["plan_at"]),
                _cst(r["resolved_at"]),
                _cst(r["returned_at"]),
                "是" if r["ack_late"] else "",
                "是" if r["plan_late"] else "",
                "是" if r["resolve_late"] else "",
                "是" if r["reopened"] else "",
                r["rating"] if r["rating"] is not None else "",
                r["extensions"] or "",
                round(r["paused_minutes"]) or "",
                ends.get(r["end_reason"], r["end_reason"] or ""),
            ]
        )
    ws = _sheet(wb, "说明", [("计入规则", 120)])
    for line in RULES_TEXT:
        ws.append([line])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


RULES_TEXT = (
    "每次派单（首次派单、转派、改类、重新办理、上报后的派单）为一个“轮次”，主办和每个协办部门各一个轮次；"
    "各项指标都按轮次计给当时承办的部门。",
    "及时签收率：签收且签收时限未超时的轮次 / 已签收或已超时的轮次。"
    "时限内被转走、未签收的轮次不计；超时后才转走的，计为原部门超时。",
    "按期办结率：主办轮次中按期办结的 / 已办结或已超时的。延期获批、待群众补充期间时限顺延，顺延后按期办结即为按期。",
    "督办次数：签收、联动方案、办结三个时限的超时次数，记给时限所属部门。",
    "群众满意率：回访评分 4–5 分（满意、基本满意）的 / 有评分的；评分记给被评价那次办结的部门；"
    "系统自动回访无评分，不计。",
    "回潮率：办结后被重新办理、或同一地点同一问题再次立案的 / 已办结的；记给办结的部门，而不是再次承办的部门。",
    "退单率：被退回的主办轮次 / 收到的主办轮次。",
    "统计期间按派单日期（北京时间）归属；某期间没有可计入的案件时显示“无数据”，不是 0% 或 100%。",
    "排名按按期办结率的威尔逊下限（95%）：3 件全部按期的部门不会排在 300 件中 290 件按期的部门之前；样本数始终列出。",
    "闭环时效（紧急案件）：发现→上报 5 分钟（群众注明发现时间时）、派单→接单 10 分钟、"
    "联动方案 30 分钟（有协办部门时）、首次派单→办结 60 分钟。",
)


# --- CSV ------------------------------------------------------------------------------------------


def scorecards_csv(cards: list[dict[str, Any]], *, names: Names, by: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["period_start", "key", "name", "rank", "received", "cases", "supervised"]
    for rate, (_, _, label) in RATES.items():
        header += [f"{rate} {label}", f"{rate}_n", f"{rate}_lower_bound"]
    header += [f"{stage}_{q}_minutes" for stage in ("ack", "plan", "resolve") for q in ("median", "p90")]
    writer.writerow(header)
    for card in cards:
        row: list[Any] = [card["period_start"], card["key"] or "", names.of(by, card["key"]), card["rank"] or ""]
        row += [card["received"], card["cases"], card["supervised"]]
        for rate in RATES:
            value, lower = card[rate]["value"], card[rate]["lower_bound"]
            row += [NO_DATA if value is None else value, card[rate]["n"], "" if lower is None else lower]
        row += [
            "" if card["stage_minutes"][s][q] is None else card["stage_minutes"][s][q]
            for s in ("ack", "plan", "resolve")
            for q in ("median", "p90")
        ]
        writer.writerow(row)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# --- the weekly report ----------------------------------------------------------------------------


def _cjk_font() -> str | None:
    available = {f.name for f in font_manager.fontManager.ttflist}
    if not available & set(CJK_FONTS):
        for path in Path("/usr/share/fonts").rglob("NotoSansCJK-Regular.ttc"):
            font_manager.fontManager.addfont(str(path))
        available = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in available), None)


async def weekly_report(
    conn: asyncpg.Connection, *, names: Names, monday: date, as_of: datetime, county: str = ""
) -> bytes:
    """The weekly report for county leaders, as a PDF; with `county`, of that county's cases."""
    sunday = monday + timedelta(days=6)
    data = {
        "departments": await figures.scorecards(
            conn, by="department", period="all", since=monday, until=sunday, county=county
        ),
        "towns": await figures.scorecards(conn, by="town", period="all", since=monday, until=sunday, county=county),
        "county": await figures.scorecards(
            conn, by="county", period="all", since=monday, until=sunday, key="county", county=county
        ),
        "trend": await figures.scorecards(  # the eight weeks up to this one
            conn,
            by="county",
            period="week",
            since=monday - timedelta(weeks=7),
            until=sunday,
            key="county",
            county=county,
        ),
        "loop": await figures.loop(
            conn, by="department", period="all", since=monday, until=sunday, as_of=as_of, county=county
        ),
        "hotspots": await figures.hotspots(conn, since=monday, until=sunday, period="all", limit=10, county=county),
    }
    return await asyncio.to_thread(_render_weekly, names, monday, sunday, data)


def _bar(ax, labels: list[str], rates: list[dict[str, Any]], title: str) -> None:
    """Horizontal bars of one rate; a bar without data is labelled 无数据 (no bar, not 0 %)."""
    positions = range(len(labels))
    values = [0 if r["value"] is None else r["value"] * 100 for r in rates]
    bars = ax.barh(positions, values, color=["#1F4E79" if r["value"] is not None else "#FFFFFF" for r in rates])
    for bar, rate in zip(bars, rates, strict=True):
        text = NO_DATA if rate["value"] is None else f"{rate['value'] * 100:.0f}%  n={rate['n']}"
        ax.text(bar.get_width() + 1, bar.get_y() + bar.get_height() / 2, text, va="center", fontsize=8)
    ax.set_yticks(list(positions), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 125)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.set_title(title, fontsize=11)


def _render_weekly(n: Names, monday: date, sunday: date, data: dict[str, Any]) -> bytes:
    with plt.rc_context({"font.family": _cjk_font() or "sans-serif", "axes.unicode_minus": False}):
        pages = [_summary_page(n, monday, sunday, data), _towns_page(n, data), _hotspots_page(n, data)]
        out = io.BytesIO()
        with PdfPages(out, metadata={"Title": f"网格治理周报 {monday}—{sunday}"}) as pdf:
            for page in pages:
                pdf.savefig(page)
        for page in pages:
            plt.close(page)
        return out.getvalue()


def _page(title: str) -> Figure:
    fig = plt.figure(figsize=(8.27, 11.69))  # A4 portrait
    fig.suptitle(title, fontsize=15, fontweight="bold", y=0.975)
    return fig


def _summary_page(n: Names, monday: date, sunday: date, data: dict[str, Any]) -> Figure:
    fig = _page(f"网格治理周报（{monday:%Y年%m月%d日}—{sunday:%m月%d日}）")
    [county] = data["county"]
    lines = [
        f"全县收件 {county['received']} 件（{county['cases']} 个案件），督办 {county['supervised']} 次。",
        "　".join(f"{label} {_display(county[rate])}" for rate, (_, _, label) in RATES.items()),
    ]
    fig.text(0.06, 0.93, "\n".join(lines), fontsize=9, va="top", wrap=True)
    departments = [c for c in data["departments"] if c["received"] or c["resolved_in_time"]["n"]]
    labels = [n.of("department", c["key"]) for c in departments] or ["（本周无案件）"]
    grid = fig.add_gridspec(3, 2, top=0.86, bottom=0.05, hspace=0.45, wspace=0.55, left=0.2, right=0.95)
    for position, rate in zip(((0, 0), (0, 1), (1, 0), (1, 1)), RATES, strict=False):
        ax = fig.add_subplot(grid[position])
        rates = [c[rate] for c in departments] or [{"value": None, "n": 0}]
        _bar(ax, labels, rates, f"{RATES[rate][2]}（按部门）")
    ax = fig.add_subplot(grid[2, :])
    weeks = data["trend"]
    positions = list(range(len(weeks)))  # numeric x: a week without data stays on the axis, as a gap
    for rate, marker in (("resolved_in_time", "o"), ("acknowledged_in_time", "s")):
        ax.plot(positions, [_percent_or_gap(w[rate]) for w in weeks], marker=marker, label=RATES[rate][2])
    ax.set_xticks(positions, [f"{w['period_start']:%m-%d}" for w in weeks], fontsize=8)
    ax.set_xlim(-0.5, len(weeks) - 0.5)
    ax.set_ylim(0, 105)
    ax.set_ylabel("%")
    ax.set_title("近八周全县趋势（空缺为无数据）", fontsize=11)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def _percent_or_gap(rate: dict[str, Any]) -> float:
    """A rate in percent for a line chart; a week without data is a gap in the line, not 0 %."""
    return math.nan if rate["value"] is None else rate["value"] * 100


def _display(rate: dict[str, Any]) -> str:
    return rate["display"]


def _towns_page(n: Names, data: dict[str, Any]) -> Figure:
    fig = _page("乡镇（街道）三率与闭环时效")
    towns = [c for c in data["towns"] if c["received"] or c["resolved_in_time"]["n"]]
    labels = [n.of("town", c["key"]) for c in towns] or ["（本周无案件）"]
    grid = fig.add_gridspec(3, 1, top=0.92, bottom=0.05, hspace=0.45, left=0.22, right=0.95)
    for row, rate in enumerate(("resolved_in_time", "acknowledged_in_time")):
        ax = fig.add_subplot(grid[row])
        _bar(ax, labels, [c[rate] for c in towns] or [{"value": None, "n": 0}], f"{RATES[rate][2]}（按乡镇）")
    ax = fig.add_subplot(grid[2])
    ax.axis("off")
    rows = [
        [n.of("department", r["key"])] + [_display(r["stages"][s]) for s in LOOP_TARGETS]
        for r in data["loop"]
        if any(r["stages"][s]["n"] for s in LOOP_TARGETS)
    ] or [["（本周无紧急案件）", *[NO_DATA] * len(LOOP_TARGETS)]]
    table = ax.table(
        cellText=rows,
        colLabels=["部门", *[f"{LOOP_LABELS[s]}≤{m}分" for s, m in LOOP_TARGETS.items()]],
        loc="upper center",
        cellLoc="center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1, 1.3)
    ax.set_title("紧急案件闭环时效（达标比例，括号内为达标数/样本数）", fontsize=11)
    return fig


def _hotspots_page(n: Names, data: dict[str, Any]) -> Figure:
    fig = _page("热点问题与复盘")
    spots = data["hotspots"]
    grid = fig.add_gridspec(3, 1, top=0.92, bottom=0.04, hspace=0.35)
    sections = [
        (
            "上报最多的网格和类别",
            ["网格", "乡镇", "类别", "上报数"],
            [
                [
                    n.of("grid", r["grid_code"]),
                    n.of("town", r["town_code"]),
                    n.of("category", r["category"]),
                    r["reports"],
                ]
                for r in spots["reports"]
            ],
        ),
        (
            "回潮问题（按地点）",
            ["网格", "类别", "回潮次数", "承办部门"],
            [
                [
                    n.of("grid", r["grid_code"]),
                    n.of("category", r["category"]),
                    r["reopened"],
                    "、".join(n.of("department", d) for d in r["departments"]),
                ]
                for r in spots["recurring"]
            ],
        ),
        (
            "高频问题清单（周例会复盘）",
            ["网格", "类别", "案件数", "未办结", "责任部门"],
            [
                [
                    n.of("grid", r["grid_code"]),
                    n.of("category", r["category"]),
                    r["cases"],
                    r["open_cases"],
                    n.of("department", r["owner"]),
                ]
                for r in spots["frequent"]
            ],
        ),
    ]
    for row, (title, header, rows) in enumerate(sections):
        ax = fig.add_subplot(grid[row])
        ax.axis("off")
        ax.set_title(title, fontsize=11)
        table = ax.table(cellText=rows or [["本周无"] + [""] * (len(header) - 1)], colLabels=header, loc="upper center")
        table.auto_set_font_size(False)
        table.set_fontsize(7.5)
        table.scale(1, 1.25)
    return fig
