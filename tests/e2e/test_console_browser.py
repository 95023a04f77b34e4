"""The staff console (工作台) in real headless Chromium against real Kafka, PostgreSQL, MinIO and the
local OpenID Connect provider, where each person logs in with their username and password:
a report reaches the dispatcher's open queue live (no reload) with the urgent banner; the 住建局
handler acknowledges it (接单), takes an 整改后 photo and resolves it (办结); the dispatcher verifies
it (回访) with a rating; a 城管 handler sees neither the case in the queue nor its page. Screenshots
of each page land in .cache/run/screenshots/."""

import asyncio
import functools
import io
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from PIL import Image

from services.console.app import create_app as console_app
from services.dispatch.app import create_app as dispatch_app
from services.intake.app import create_app as intake_app
from services.media.app import create_app as media_app
from services.sla.app import create_app as sla_app
from shared.settings import PROJECT_ROOT
from tests.browser import chromium, needs_chromium
from tests.support import bearer, eventually, running, serving

SCREENSHOTS = PROJECT_ROOT / ".cache" / "run" / "screenshots"

pytestmark = needs_chromium


async def text_shown(browser, css: str, words: str, timeout: float = 15.0) -> str:
    """The text of `css` once it holds `words` (pages load and update while we ask)."""

    async def check():
        try:
            text = await asyncio.to_thread(browser.text, css)
        except Exception:  # the page is still loading
            return None
        return text if words in text else None

    return await eventually(check, timeout=timeout, interval=0.2)


@pytest.fixture
def browser():
    with chromium(width=1280, height=900) as browser:
        yield browser


async def test_a_case_through_the_console(make_settings, infra, browser, tmp_path):
    intake_settings = make_settings("intake")
    dispatch_settings = make_settings("dispatch")
    media_settings = make_settings("media", intake_incoming_bucket=intake_settings.intake_incoming_bucket)
    photo = tmp_path / "整改后.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (120, 90), (40, 150, 70)).save(buffer, format="JPEG")
    photo.write_bytes(buffer.getvalue())
    step = asyncio.to_thread  # WebDriver calls block; the servers run on this loop meanwhile

    shown = functools.partial(text_shown, browser)

    async with (
        running(intake_app(intake_settings)) as intake,
        serving(dispatch_app(dispatch_settings)) as dispatch_url,
        serving(media_app(media_settings)) as media_url,
        serving(sla_app(make_settings("sla"))) as sla_url,
    ):
        # Staff log in at the local OpenID Connect provider (no demo people, as in production).
        console = console_app(
            make_settings(
                "console", console_dispatch_url=dispatch_url, console_media_url=media_url, console_sla_url=sla_url
            )
        )
        async with serving(console, port=infra.console_port) as origin:

            async def log_in(person: str, path: str = "/"):
                await step(browser.open, f"{origin}{path}")
                await shown("h1", "登录")  # no session: the login page, which returns to the path
                await step(browser.click, "#oidc-login")
                await shown("h1", "统一身份认证")  # the provider's own login form
                await step(browser.type, "#username", person)
                await step(browser.type, "#password", "gridlink-demo")
                if person == "dispatcher":
                    await step(browser.screenshot, SCREENSHOTS / "console-provider-login.png")
                await step(browser.click, "#submit")
                await shown(".top .who", "（")

            async def log_out():  # at the console and at the provider, which returns to the login page
                await step(browser.click, ".top form button")
                await shown("h1", "工作台登录")

            # The dispatcher's open queue (待接单), waiting for cases.
            await step(browser.open, f"{origin}/")
            await shown("h1", "登录")
            assert (await step(browser.url)).endswith("/login?next=/")
            await step(browser.screenshot, SCREENSHOTS / "console-login.png")
            await log_in("dispatcher")
            assert await step(browser.text, ".tabs a.active") == "待接单"
            await eventually(lambda: asyncio.sleep(0, console.state.hub.subscribers))  # the live feed is open
            await step(browser.script, "window.stillTheSamePage = true;")

            answer = await intake.post(
                "/api/v1/reports",
                json={
                    "description": "幸福路小区北门的井盖翻起来了，晚上很危险",
                    "category": "manhole",
                    "lat": 29.0829,
                    "lng": 120.0546,
                    "channel": "api",
                },
            )
            assert answer.status_code == 201, answer.text
            case_id, case_no = answer.json()["case_id"], answer.json()["case_no"]

            # It appears without a reload, with the urgent banner.
            row = f'#queue tr[data-case="{case_id}"]'
            assert "待接单" in await shown(row, case_no, timeout=30)
            assert "住房和城乡建设局" in await step(browser.text, row)
            assert "紧急" in await step(browser.text, row)
            assert case_no in await shown("#banner", "新的紧急案件")
            assert await step(browser.script, "return window.stillTheSamePage === true;")
            await step(browser.screenshot, SCREENSHOTS / "console-queue.png")
            # The map: the case's grid coloured; clicking it lists that grid's cases.
            await step(browser.open, f"{origin}/map")
            await shown("h1", "在办案件分布")
            await step(browser.screenshot, SCREENSHOTS / "console-map.png")
            await step(browser.click, "svg.map a polygon.grid-open")
            assert case_no in await shown("#queue", case_no)
            # The case page: its deadlines count down, its grid and point are on the map.
            await step(browser.open, f"{origin}/cases/{case_id}")
            assert "剩余" in await shown(".clocks", "接单", timeout=30)
            first = await step(browser.text, ".countdown")
            await shown(".countdown", "秒")

            async def ticked():
                return await step(browser.text, ".countdown") != first

            await eventually(ticked, timeout=5)  # it counts down in the page, without a reload
            assert await step(browser.count, "svg.map polygon.grid-this") == 1
            await step(browser.screenshot, SCREENSHOTS / "console-case-clocks.png")
            # The dispatcher corrects the category (改类): 道路破损, the same bureau's.
            await step(browser.script, "document.querySelector('#action-reclassify').parentElement.open = true;")
            await step(browser.script, "document.querySelector('#reclassify-category').value = 'road_damage';")
            await step(browser.click, "#action-reclassify button[type=submit]")
            await shown(".done", "已改类")
            assert "道路破损" in await step(browser.text, ".facts")
            assert "改类" in await step(browser.text, ".timeline")
            await log_out()

            # The 住建局 handler opens the case (login returns to it), acknowledges and resolves it.
            await log_in("zhujian", f"/cases/{case_id}")
            await shown("h1", case_no)
            await step(browser.click, "#action-acknowledge button[type=submit]")
            await shown(".done", "已接单")
            assert "接单" in await step(browser.text, ".timeline")
            await step(browser.screenshot, SCREENSHOTS / "console-case.png")
            # A refusal is shown in Chinese on its form (as a browser that does not check `required` sends it).
            unchecked = (
                "var f = document.querySelector('#action-return'); f.parentElement.open = true; f.noValidate = true;"
            )
            await step(browser.script, unchecked)
            await step(browser.click, "#action-return button[type=submit]")
            assert "请填写「理由或备注」" in await shown("#action-return .error", "请填写")
            await step(browser.script, "document.querySelector('#action-return').scrollIntoView();")
            await step(browser.screenshot, SCREENSHOTS / "console-form-refusal.png")
            await step(browser.type, "#resolve-result", "已更换新井盖并加固，现场已清理")
            await step(browser.type, "#resolve-after_media_ids", str(photo))
            await step(browser.click, "#action-resolve button[type=submit]")
            await shown(".done", "已办结", timeout=30)
            assert "待回访" in await step(browser.text, "h1")
            assert await step(browser.count, "a.photo-after") == 1
            # The photo comes through the console (the browser never needs the object store).
            fetched = (
                "return fetch(document.querySelector('a.photo-after').href).then(r => r.headers.get('content-type'))"
            )
            assert await step(browser.script, fetched) == "image/jpeg"
            await log_out()

            # The dispatcher verifies it (回访) with a rating.
            await log_in("dispatcher", f"/cases/{case_id}")
            await step(browser.type, "#verify-comment", "群众表示满意")
            await step(browser.click, "#action-verify button[type=submit]")
            await shown(".done", "已回访")
            timeline = await step(browser.text, ".timeline")
            assert all(word in timeline for word in ("群众上报", "派单", "接单", "办结", "回访", "评价 5 分"))
            await log_out()

            # Another department's handler: not in their queue, and the page is refused in Chinese.
            await log_in("chengguan", "/?tab=all")
            assert await step(browser.count, row) == 0
            await step(browser.open, f"{origin}/cases/{case_id}")
            assert "该案件不在您的辖区或部门范围内" in await shown(".error", "辖区")
            await step(browser.screenshot, SCREENSHOTS / "console-forbidden.png")
            await log_out()

            # The county's 督查室 sees a missed deadline on the 督办 list: who, what, how late.
            db = await asyncpg.connect(dispatch_settings.database_url)
            try:
                await db.execute(
                    "INSERT INTO dispatch.supervised_breaches (event_id, case_id, case_no, owner_code,"
                    " jurisdiction_code, stage, department_code, category, due_at, breached_at)"
                    " VALUES ($1, $2, $3, '330727', '330727001001', 'acknowledge', 'zhujian', 'manhole', $4, $4)",
                    uuid.uuid4(),
                    uuid.UUID(case_id),
                    case_no,
                    datetime.now(UTC) - timedelta(minutes=25),
                )
            finally:
                await db.close()
            await log_in("supervisor", "/supervision")
            listed = await shown("table.cases", case_no)
            assert "住房和城乡建设局" in listed and "超时 25 分" in listed
            await step(browser.screenshot, SCREENSHOTS / "console-supervision.png")


async def test_a_grid_worker_places_a_report_that_came_with_only_an_address(make_settings, browser):
    intake_settings = make_settings("intake")
    dispatch_settings = make_settings("dispatch", auth_dev_issuer=True)
    step = asyncio.to_thread

    shown = functools.partial(text_shown, browser)

    async with (
        serving(intake_app(intake_settings)) as intake_url,
        serving(dispatch_app(dispatch_settings)) as dispatch_url,
    ):
        console = console_app(
            make_settings(
                "console", auth_dev_issuer=True, console_dispatch_url=dispatch_url, console_intake_url=intake_url
            )
        )
        async with serving(console) as origin, httpx.AsyncClient(base_url=intake_url) as intake:
            answer = await intake.post(
                "/api/v1/reports",
                json={"description": "莲源社区后面小路的路灯坏了好几天", "address": "莲源社区后街", "channel": "api"},
            )
            assert answer.status_code == 201, answer.text
            case_no = answer.json()["case_no"]

            await step(browser.open, f"{origin}/locate")
            await shown("h1", "登录")
            await step(browser.click, "input[name=person][value=grid_worker]")
            await step(browser.click, "#login")
            assert case_no in await shown("table.cases", case_no)
            await step(browser.click, "table.cases a.button")
            await shown("h1", "定位案件")
            # Outside the worker's area: typed by hand, refused in Chinese, nothing placed.
            await step(browser.type, "#lat", "29.1")  # in the county, another town's grid
            await step(browser.type, "#lng", "120.1")
            await step(browser.click, "#place")
            assert "不在您负责的区域" in await shown(".error", "区域")
            # A click on the worker's own grid fills the point in.
            await step(browser.click, "svg.map polygon.grid-this")
            assert await step(browser.script, "return document.getElementById('lat').value") != ""
            await step(browser.screenshot, SCREENSHOTS / "console-locate.png")
            await step(browser.click, "#place")
            assert case_no in await shown(".done", "已定位")

            staff = bearer(intake_settings, "dispatcher")
            report = await intake.get(f"/api/v1/reports/{answer.json()['report_id']}", headers=staff)
            assert report.json()["grid_code"] == "330727001001001" and not report.json()["needs_locating"]


async def test_the_county_pages_for_supervisors_and_admins(make_settings, browser, infra):
    """The pages a 督查室 and an admin keep open: 三率, 大屏, 通讯录, 责任清单 — seen as they see them."""
    dispatch_settings = make_settings("dispatch", auth_dev_issuer=True)
    step = asyncio.to_thread
    async with (
        serving(dispatch_app(dispatch_settings)) as dispatch_url,
        serving(sla_app(make_settings("sla"))) as sla_url,
    ):
        console = console_app(
            make_settings("console", auth_dev_issuer=True, console_dispatch_url=dispatch_url, console_sla_url=sla_url)
        )
        async with serving(console, port=infra.console_port) as origin:  # where the provider returns people
            shown = functools.partial(text_shown, browser)

            await step(browser.open, f"{origin}/login?next=/scorecards")
            await step(browser.click, "#oidc-login")
            await shown("h1", "统一身份认证")
            await step(browser.type, "#username", "admin")
            await step(browser.type, "#password", "gridlink-demo")
            await step(browser.click, "#submit")
            assert "排名" in await shown("table.scorecards", "按期办结率")
            await step(browser.screenshot, SCREENSHOTS / "console-scorecards.png")
            for path, css, words, name in (
                ("/screen", ".figures", "在办案件", "console-screen.png"),
                ("/directory", "h1", "通讯录", "console-directory.png"),
                ("/broadcasts/new", "h1", "政策宣传", "console-broadcast.png"),
                ("/responsibility-list", "h1", "责任清单", "console-responsibility-list.png"),
            ):
                await step(browser.open, f"{origin}{path}")
                await shown(css, words)
                await step(browser.screenshot, SCREENSHOTS / name)
            # The list is edited in place: the publish button is there for the admin.
            assert await step(browser.count, "#publish") == 1
