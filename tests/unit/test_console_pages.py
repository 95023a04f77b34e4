"""The console's pages as their users' tools read them: every control has a label a screen reader
announces (a <label for> or an aria-label), every page is in Chinese with Beijing times, and the
case page offers a form for each action dispatch says the person may take now, and no other."""

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from uuid import uuid4

import pytest

from services.console import mobile, pages
from services.console.rlist import rows_of
from shared.auth import Actor
from shared.jurisdictions import load_county
from shared.settings import PROJECT_ROOT
from shared.taxonomy import load_taxonomy

NAMES = pages.Names(
    load_county(PROJECT_ROOT / "shared" / "data" / "county.geojson"),
    load_taxonomy(PROJECT_ROOT / "shared" / "data" / "taxonomy.yaml"),
)
DISPATCHER = Actor("d", "dispatcher", "330727", name="王敏")
HANDLER = Actor("h", "handler", "330727", "zhujian", name="李强")
WORKER = Actor("gw", "grid_worker", "330727001001001", name="何飞")
SUPERVISOR = Actor("s", "supervisor", "330727", name="陈静")
GRID = "330727001001001"
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)

LOCATE_REFUSAL = (
    "所选位置在「城关镇一网格」，不在您负责的区域内。请在地图上重新点选；如问题确实在其他网格，请联系调度员处理。"
)


def case(**changes) -> dict:
    grid = NAMES.county.grids[GRID]
    return {
        "case_id": str(uuid4()),
        "case_no": "20261202-000042",
        "status": "dispatched",
        "category": "manhole",
        "category_name": "井盖缺失/破损/塌陷",
        "priority": "urgent",
        "department_code": "zhujian",
        "department_name": "住房和城乡建设局",
        "co_department_codes": [],
        "acknowledged_departments": [],
        "jurisdiction_code": grid.village_code,
        "grid_code": GRID,
        "lat": grid.centroid[0],
        "lng": grid.centroid[1],
        "address": "幸福路 18 号",
        "description": "井盖翻起来了，晚上很危险",
        "created_at": NOW.isoformat(),
        "overdue": False,
        "rating": None,
        "media": {"before": [str(uuid4())], "after": []},
        "timeline": [
            {"at": NOW.isoformat(), "action": "submit", "status": "submitted", "actor": "reporter:h5"},
            {"at": NOW.isoformat(), "action": "dispatch", "status": "dispatched", "actor": "system:dispatch"},
        ],
        "actions": ["transfer", "reclassify", "merge", "cancel"],
    } | changes


class Controls(HTMLParser):
    """Every form control and how it is labelled."""

    def __init__(self):
        super().__init__()
        self.controls: list[dict] = []
        self.labelled: set[str] = set()
        self.open_labels = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "label":
            self.open_labels += 1
            if attributes.get("for"):
                self.labelled.add(attributes["for"])
        elif tag in ("input", "select", "textarea") and attributes.get("type") != "hidden":
            self.controls.append(attributes | {"tag": tag, "inside_label": self.open_labels > 0})

    def handle_endtag(self, tag):
        if tag == "label":
            self.open_labels -= 1


def unlabelled(html: str) -> list[dict]:
    parser = Controls()
    parser.feed(html)
    return [
        c
        for c in parser.controls
        if not (c.get("aria-label") or c["inside_label"] or (c.get("id") and c["id"] in parser.labelled))
    ]


def rendered() -> dict[str, str]:
    timers = [
        {
            "stage": "acknowledge",
            "department_code": "zhujian",
            "due_at": (datetime.now(UTC) + timedelta(minutes=10, seconds=30)).isoformat(),
            "warn_at": (datetime.now(UTC) + timedelta(minutes=8)).isoformat(),
            "paused_at": None,
            "stopped_at": None,
            "fired_at": None,
            "stop_reason": None,
        }
    ]
    document = {
        "version": "v1",
        "co_handlers": {"construction_site": ["chengguan"]},
        "levels": {"town": {"manhole": {"lead": "zhujian"}}},
        "overrides": {},
    }
    common = {"names": NAMES, "csrf": "t"}
    handler_case = case(actions=["acknowledge", "return"])
    # A grid worker's case with an 整改后 photo taken on the phone, not yet named by any action.
    taken = {"media_id": str(uuid4()), "role": "after", "flags": [], "attached_at": NOW.isoformat()}
    worker_case = case(actions=["settle"], evidence=[taken])
    # A new report in the grid worker's grid: to check on site (现场核实) or settle at once.
    new_case = case(actions=["settle", "check"], case_no="20261202-000044")
    # The timeline of a case a grid worker checked on site and found real, with a photo and the place.
    checked = {
        "at": NOW.isoformat(),
        "action": "check",
        "status": "dispatched",
        "actor": "grid_worker:gw",
        "reason": "井盖确实翻起",
        "detail": {
            "finding": "confirmed",
            "before_media_ids": [str(uuid4())],
            "device_location": {"lat": 29.08291, "lng": 120.05462, "accuracy_m": 12.0},
        },
    }
    checked_case = case(timeline=[*case()["timeline"], checked], checked_at=NOW.isoformat())
    return {
        "login": pages.login_page(people={"d": {"name": "王敏", "title": "调度员"}}, next_path="/", csrf="t"),
        "queue": pages.queue_page(actor=DISPATCHER, tab="open", q="", cases=[case()], **common),
        "case": pages.case_page(
            actor=DISPATCHER, case=case(), keys=dict.fromkeys(case()["actions"], "k"), timers=timers, **common
        ),
        "case-handler": pages.case_page(
            actor=HANDLER, case=handler_case, keys=dict.fromkeys(handler_case["actions"], "k"), **common
        ),
        "map": pages.map_page(
            actor=DISPATCHER, grids=[{"grid_code": GRID, "open": 2, "overdue": 1, "urgent": 1}], tiles_url="", **common
        ),
        "broadcast": pages.broadcast_page(
            actor=SUPERVISOR, key="k", content="通知", targets=["330727001"], reach={"330727001": 12}, **common
        ),
        "rlist": pages.rlist_page(
            actor=Actor("a", "admin", "330727"),
            current_version="v1",
            rows=rows_of(document),
            versions=[{"version": "v1", "created_at": NOW.isoformat(), "created_by": "admin:a"}],
            editable=True,
            **common,
        ),
        "scorecards": pages.scorecards_page(
            actor=SUPERVISOR,
            by="department",
            span="month",
            since="2026-12-01",
            until="2026-12-02",
            rows=[
                {
                    "key": "zhujian",
                    "rank": 1,
                    "received": 300,
                    "supervised": 2,
                    "stage_minutes": {"resolve": {"median": 42.0}},
                    **{
                        rate: {"value": 0.97, "display": "96.7%", "numerator": 290, "n": 300}
                        for rate, _ in pages.SCORE_RATES
                    },
                },
                {
                    "key": "police",
                    "rank": None,
                    "received": 0,
                    "supervised": 0,
                    "stage_minutes": {"resolve": {"median": None}},
                    **{
                        rate: {"value": None, "display": "无数据", "numerator": 0, "n": 0}
                        for rate, _ in pages.SCORE_RATES
                    },
                },
            ],
            **common,
        ),
        "mobile-case": mobile.case_page(
            actor=WORKER, case=worker_case, keys={"settle": "k"}, timers=timers, tiles_url="", **common
        ),
        "mobile-check": mobile.case_page(
            actor=WORKER, case=new_case, keys={"settle": "k", "check": "k"}, timers=timers, tiles_url="", **common
        ),
        "case-checked": pages.case_page(
            actor=DISPATCHER, case=checked_case, keys=dict.fromkeys(checked_case["actions"], "k"), **common
        ),
        "mobile-home": mobile.home_page(
            actor=WORKER,
            names=NAMES,
            open_cases=[case(), checked_case | {"case_no": "20261202-000040"}],
            resolved=[case(status="resolved")],
            to_locate=[
                {
                    "report_id": str(uuid4()),
                    "case_no": "20261202-000043",
                    "description": "路灯坏了",
                    "category": "signboard_lighting",
                    "submitted_at": NOW.isoformat(),
                }
            ],
        ),
        "mobile-locate": mobile.locate_page(
            actor=WORKER,
            report={
                "report_id": "0b7e1d2c-3f4a-4b5c-8d6e-7f8091a2b3c4",
                "case_no": "20261202-000043",
                "description": "路灯坏了",
                "address": "莲源社区后街",
                "needs_locating": True,
                "category": "signboard_lighting",
                "submitted_at": NOW.isoformat(),
            },
            photos=["6f1c1d0e-1b7a-4f0e-9a51-2d2f8f6c9b10"],
            hidden_photos=1,
            tiles_url="",
            error=LOCATE_REFUSAL,
            point=("29.1", "120.1"),
            **common,
        ),
        "locate": pages.locate_page(
            actor=WORKER,
            report={
                "report_id": str(uuid4()),
                "case_no": "20261202-000043",
                "description": "路灯坏了",
                "address": "后街",
            },
            tiles_url="",
            **common,
        ),
    }


PAGES = rendered()


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_control_has_a_label(name):
    assert unlabelled(PAGES[name]) == []


@pytest.mark.parametrize("name", sorted(PAGES))
def test_pages_are_chinese_documents(name):
    assert '<html lang="zh-CN">' in PAGES[name] and "<title>" in PAGES[name]


def test_times_are_beijing_and_clocks_count_down():
    page = PAGES["case"]
    assert "2026-12-02 10:00" in page  # 02:00 UTC
    assert 'class="countdown "' in page and "剩余 10 分" in page and "data-due=" in page


def test_the_case_page_offers_exactly_the_actions_dispatch_allows():
    assert {f'id="action-{a}"' for a in ("transfer", "reclassify", "merge", "cancel")} <= set(
        s for s in (f'id="action-{a}"' for a in pages.ACTIONS) if s in PAGES["case"]
    )
    assert 'id="action-acknowledge"' not in PAGES["case"] and 'id="action-resolve"' not in PAGES["case"]
    assert 'id="action-acknowledge"' in PAGES["case-handler"] and 'id="action-transfer"' not in PAGES["case-handler"]
    # The step most likely next is open.
    assert '<details class="action" open><summary>接单' in PAGES["case-handler"]


def test_the_map_colours_grids_by_overdue_and_links_them():
    assert PAGES["map"].count("<polygon") == len(NAMES.county.grids)
    assert PAGES["map"].count('class="grid-overdue"') == 1 and f"place={GRID}" in PAGES["map"]


def test_a_handler_is_offered_neither_broadcasts_nor_the_map_of_other_departments():
    header = PAGES["case-handler"].split("</header>")[0]
    assert "政策宣传" not in header and "责任清单" not in header and "督办" not in header


def test_scorecards_show_each_rate_with_its_sample_and_no_data_as_such():
    page = PAGES["scorecards"]
    assert "住房和城乡建设局" in page and "96.7%" in page and "(290/300)" in page and "42 分钟" in page
    assert page.count('<td class="muted">无数据</td>') == len(pages.SCORE_RATES)  # never 0 % for 公安局
    assert "0.0%" not in page and "assessment.xlsx?month=2026-12" in page


def test_the_mobile_case_page_offers_the_table_s_actions_with_the_camera_and_the_phone_s_place():
    page = PAGES["mobile-case"]
    assert 'action="/m/cases/20261202-000042/actions/settle"' in page and 'id="action-transfer"' not in page
    assert '<details class="action" open><summary>即知即改' in page
    # The 整改后 photo taken before counts: the form does not require another one.
    assert 'id="settle-after_media_ids" accept="image/*" capture="environment" multiple>' in page
    assert 'name="photo" id="photo-file" accept="image/*" capture="environment" required' in page
    assert page.count('class="geo-lat"') == 2  # the action's form and the photo form
    assert page.count('class="photo-after"') == 1 and "2026-12-02 10:00" in page
    assert "/static/mobile.js" in page and not re.search(r'(src|href)="(https?:)?//', page)  # nothing from outside


def test_the_mobile_home_lists_the_grid_s_cases_and_reports_to_locate():
    page = PAGES["mobile-home"]
    assert "本网格其他在办（1）" in page and "待回访（1）" in page and "待定位的上报（1）" in page
    assert 'href="/m/cases/20261202-000042"' in page and 'href="/m/locate/' in page  # the phone's page
    # 核实 (is the new report real?) is its own list, apart from 回访 (is the reporter satisfied?):
    # the case checked already is not in it, and is tagged 已核实 among the grid's cases.
    to_check = page[page.index('id="to-check"') : page.index('id="open-cases"')]
    assert "待现场核实（1）" in to_check and "20261202-000042" in to_check and "20261202-000040" not in to_check
    assert page.count("已核实</b>") == 1
    main = page[page.index("<main>") :]
    assert main.index("待现场核实") < main.index("本网格其他在办") < main.index("待回访") < main.index("待定位")
    in_hand = page[page.index('id="open-cases"') : page.index('id="to-verify"')]
    assert "20261202-000040" in in_hand and "20261202-000042" not in in_hand  # each case in one list
    others = mobile.home_page(actor=HANDLER, names=NAMES, open_cases=[case()], resolved=[], to_locate=None)
    assert "我的待办（1）" in others and "待现场核实" not in others and "待回访" not in others
    assert "待定位" not in others


def test_a_grid_worker_checks_a_new_report_on_the_phone():
    page = PAGES["mobile-check"]
    start = page.index("<summary>现场核实")
    form = page[start : page.index("</form>", start)]
    assert '<details class="action" open><summary>现场核实' in page  # the first thing to do at a new report
    assert 'action="/m/cases/20261202-000044/actions/check"' in form
    assert 'type="radio" name="finding" value="confirmed"' in form and "情况不属实（案件将撤销）" in form
    assert 'id="check-before_media_ids" accept="image/*" capture="environment" multiple>' in form  # optional
    assert "核实情况（不属实时必填）" in form and 'class="geo-lat"' in form  # the phone's place goes with it
    assert 'name="device_location"' not in form  # filled in by the page's script, never typed
    assert page.index('id="action-check"') < page.index('id="action-settle"')


def test_the_phone_says_what_the_check_found():
    page = mobile.case_page(
        actor=WORKER, case=_checked_case(), keys={}, timers=[], tiles_url="", names=NAMES, csrf="t", done="check"
    )
    assert '<p class="done" role="status">已现场核实：情况属实（2026-12-02 10:00）。</p>' in page
    assert "<dt>现场核实</dt><dd>情况属实（2026-12-02 10:00）</dd>" in page
    unchecked = mobile.case_page(
        actor=WORKER, case=case(actions=[]), keys={}, timers=[], tiles_url="", names=NAMES, csrf="t"
    )
    assert "<dt>现场核实</dt><dd>未核实</dd>" in unchecked


def _checked_case() -> dict:
    """A case a grid worker found real on site, as dispatch answers it."""
    entry = {
        "at": NOW.isoformat(),
        "action": "check",
        "status": "dispatched",
        "actor": "grid_worker:gw",
        "detail": {"finding": "confirmed"},
    }
    return case(timeline=[*case()["timeline"], entry], checked_at=NOW.isoformat(), actions=[])


def test_the_timeline_says_what_the_check_found_in_chinese():
    page = PAGES["case-checked"]
    step = page[page.index("<b>现场核实</b>") :].split("</li>")[0]
    assert "网格员 gw" in step and "情况属实；井盖确实翻起；现场照片 1 张" in step
    assert "核实时手机位置 29.08291, 120.05462，误差约 12 米" in step
    false = {"at": NOW.isoformat(), "action": "check", "status": "cancelled", "actor": "grid_worker:gw"}
    note = pages.timeline_note(false | {"reason": "现场无此事", "detail": {"finding": "unfounded"}})
    assert "情况不属实；现场无此事" in note


def test_the_phone_s_locate_page_shows_the_report_and_posts_the_desktop_s_locate():
    page = PAGES["mobile-locate"]
    assert "路灯坏了" in page and "群众填写的地址：<b>莲源社区后街</b>" in page
    assert 'src="/media/6f1c1d0e-1b7a-4f0e-9a51-2d2f8f6c9b10"' in page and "另有 1 张照片暂不能查看" in page
    assert 'id="use-my-position">用我的位置</button>' in page
    assert 'id="pick"><svg class="map"' in page and "polygon" in page  # the offline map, drawn here
    assert 'action="/m/locate/0b7e1d2c-3f4a-4b5c-8d6e-7f8091a2b3c4"' in page
    assert 'id="lat" required inputmode="decimal" value="29.1"' in page  # the refused point, to correct
    assert f'<p class="error" role="alert">{LOCATE_REFUSAL}</p>' in page
    assert 'data-county="示范县"' in page and not re.search(r'(src|href)="(https?:)?//', page)
    placed = {
        "report_id": str(uuid4()),
        "case_id": str(uuid4()),
        "case_no": "20261202-000045",
        "description": "路灯坏了",
        "needs_locating": False,
        "grid_code": GRID,
    }
    again = mobile.locate_page(
        actor=WORKER, names=NAMES, csrf="t", report=placed, photos=[], hidden_photos=0, tiles_url=""
    )
    assert "该上报已定位到莲源社区第1网格，无需再定位" in again and 'href="/m/cases/20261202-000045"' in again
    assert "无需再定位" not in page
    south, west, north, east = mobile.county_bounds(NAMES.county)
    assert south < NAMES.county.grids[GRID].centroid[0] < north and west < NAMES.county.grids[GRID].centroid[1] < east


def test_the_supervision_list_shows_a_departments_notice_with_its_cases():
    notice = {
        "department_code": "zhujian",
        "breaches": 3,
        "days": 30,
        "since": "2026-11-01T00:30:00Z",
        "issued_at": "2026-11-24T08:30:00Z",
        "case_nos": ["20261124-000001", "20261124-000002", "20261124-000003"],
    }
    html = pages.supervision_page(actor=SUPERVISOR, names=NAMES, csrf="t", breaches=[], notices=[notice])
    section = html[html.index('<section class="notices">') : html.index("</section>")]
    assert "<h2>通报</h2>" in section and NAMES.department("zhujian") in section
    assert "30天内超时 3 次" in section and "2026-11-24 16:30" in section  # Beijing time
    assert "20261124-000001、20261124-000002、20261124-000003" in section
    quiet = pages.supervision_page(actor=SUPERVISOR, names=NAMES, csrf="t", breaches=[])
    assert "通报" not in quiet and "暂无督办事项" in quiet
