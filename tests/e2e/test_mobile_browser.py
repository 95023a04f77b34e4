"""The mobile work page (移动工作台) in real headless Chromium at a phone's width (390 px), logged in
through WeCom's OAuth2 against the fake WeCom server, on real Kafka, PostgreSQL, MinIO and every
service involved: the 住建局 handler opens the 派单 link, sees the case, acknowledges it, takes an
整改后 photo (the phone's location goes with it as evidence) and resolves it (办结); a grid worker
sees the new report in their grid and settles it on the spot (即知即改). Screenshots of each page
land in .cache/run/screenshots/."""

import asyncio
import functools
import io

import httpx
import pytest
from PIL import Image, ImageFilter

from services.console.app import create_app as console_app
from services.dispatch.app import create_app as dispatch_app
from services.intake.app import create_app as intake_app
from services.media.app import create_app as media_app
from services.sla.app import create_app as sla_app
from tests.browser import chromium, needs_chromium
from tests.e2e.test_console_browser import SCREENSHOTS, text_shown
from tests.support import bearer, eventually, serving

pytestmark = needs_chromium
PHONE = {"width": 390, "height": 844}
WHERE = {"latitude": 29.0829, "longitude": 120.0546, "accuracy": 12}  # the handler, by the manhole


@pytest.fixture
def browser():
    with chromium(width=PHONE["width"], height=PHONE["height"]) as browser:
        browser.cdp("Emulation.setDeviceMetricsOverride", deviceScaleFactor=1, mobile=True, **PHONE)
        yield browser


def jpeg(path, colour) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (160, 120), colour).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue())
    return str(path)


def phone_photo(path) -> str:
    """A photo as a phone takes it: 3000×2250, well over the 1 MB the console takes in one form."""
    noise = Image.effect_noise((3000, 2250), 20).convert("RGB").filter(ImageFilter.GaussianBlur(1))
    noise.save(path, format="JPEG", quality=95)
    assert path.stat().st_size > 1024 * 1024
    return str(path)


async def mobile_console(make_settings, http: httpx.AsyncClient, *, admin: dict, fake_wecom: str, urls: dict):
    """The console of the mobile pages, with the directory (通讯录) knowing the handler 李强 and the
    grid worker 何飞 by their WeCom user ids (the fake's OAuth2 names them)."""
    people = {
        "demo-zhujian": ("李强", "liqiang", "handler", "330727", "zhujian"),
        "gw330727001002001": ("何飞", "hefei", "grid_worker", "330727001002001", None),
    }
    for person_id, (name, userid, role, place, department) in people.items():
        saved = await http.put(
            f"{urls['dispatch']}/api/v1/directory/people/{person_id}",
            json={
                "name": name,
                "wecom_user_id": userid,
                "roles": [{"role": role, "jurisdiction_code": place, "department_code": department}],
            },
            headers=admin,
        )
        assert saved.status_code == 200, saved.text
    return console_app(
        make_settings(
            "console",
            **{f"console_{service}_url": url for service, url in urls.items()},
            console_wecom_oauth_url=fake_wecom,
            console_wecom_api_url=fake_wecom,
        )
    )


async def test_handler_and_grid_worker_on_the_mobile_work_page(make_settings, fake_wecom, browser, tmp_path):
    intake_settings = make_settings("intake")
    dispatch_settings = make_settings("dispatch")
    media_settings = make_settings("media", intake_incoming_bucket=intake_settings.intake_incoming_bucket)
    after_photo = phone_photo(tmp_path / "整改后.jpg")
    settled_photo = jpeg(tmp_path / "即知即改.jpg", (200, 180, 60))
    step = asyncio.to_thread  # WebDriver calls block; the servers run on this loop meanwhile
    shown = functools.partial(text_shown, browser)
    admin = bearer(dispatch_settings, "admin")

    async with (
        serving(intake_app(intake_settings)) as intake_url,
        serving(dispatch_app(dispatch_settings)) as dispatch_url,
        serving(media_app(media_settings)) as media_url,
        serving(sla_app(make_settings("sla"))) as sla_url,
        httpx.AsyncClient() as http,
    ):
        console = await mobile_console(
            make_settings,
            http,
            admin=admin,
            fake_wecom=fake_wecom,
            urls={"dispatch": dispatch_url, "media": media_url, "sla": sla_url, "intake": intake_url},
        )
        async with serving(console) as origin:
            await step(browser.cdp, "Browser.grantPermissions", permissions=["geolocation"], origin=origin)
            await step(browser.cdp, "Emulation.setGeolocationOverride", **WHERE)

            async def report(description: str, category: str, lat: float, lng: float) -> tuple[str, str]:
                body = {"description": description, "category": category, "lat": lat, "lng": lng, "channel": "api"}
                answer = await http.post(f"{intake_url}/api/v1/reports", json=body)
                assert answer.status_code == 201, answer.text
                case_id = answer.json()["case_id"]

                async def dispatched():
                    found = await http.get(f"{dispatch_url}/api/v1/cases/{case_id}", headers=admin)
                    return found.status_code == 200 and found.json()["status"] == "dispatched"

                await eventually(dispatched, timeout=30)
                return case_id, answer.json()["case_no"]

            async def fits_the_phone():
                width = await step(browser.script, "return document.documentElement.scrollWidth;")
                assert width <= PHONE["width"], width

            # The handler opens the link in the 派单 message: WeCom logs them in silently.
            case_id, case_no = await report("幸福路小区北门的井盖翻起来了，晚上很危险", "manhole", 29.0829, 120.0546)
            await http.post(f"{fake_wecom}/_fake/oauth/user", json={"userid": "liqiang"})
            await step(browser.open, f"{origin}/m/cases/{case_no}")
            await shown("h1", case_no, timeout=30)
            assert "李强" in await step(browser.text, ".m-top .who")
            assert "井盖" in await step(browser.text, ".description")
            assert "接单" in await step(browser.text, "#actions")
            assert await step(browser.count, "svg.map polygon.grid-this") == 1
            assert "剩余" in await shown(".clocks", "剩余", timeout=30)
            await fits_the_phone()
            await step(browser.screenshot, SCREENSHOTS / "mobile-case.png")
            await step(browser.script, "document.querySelector('.clocks').scrollIntoView();")
            await step(browser.screenshot, SCREENSHOTS / "mobile-case-deadlines-map.png")

            await step(browser.click, "#action-acknowledge button[type=submit]")
            await shown(".done", "已接单")
            assert await step(browser.count, "#action-resolve") == 1  # now offered: the table and the state decide
            assert await step(browser.count, "#action-acknowledge") == 0

            # An 整改后 photo from the camera, with the phone's location.
            await shown(".geo-status", "已获取手机位置")
            await step(browser.type, "#photo-file", after_photo)
            await step(browser.screenshot, SCREENSHOTS / "mobile-photo-form.png")
            await step(browser.click, "#photo-form button[type=submit]")
            await shown(".done", "照片已上传", timeout=30)
            assert await step(browser.count, "a.photo-after") == 1
            evidence = (await http.get(f"{media_url}/api/v1/cases/{case_id}/media", headers=admin)).json()["items"]
            assert [m["role"] for m in evidence] == ["after"]
            assert (evidence[0]["width"], evidence[0]["height"]) == (1600, 1200)  # redrawn on the phone to fit
            assert evidence[0]["device_location"] == {"lat": 29.0829, "lng": 120.0546, "accuracy_m": 12.0}

            # 办结 with that photo.
            await step(browser.type, "#resolve-result", "已更换新井盖并加固，现场已清理")
            await step(browser.screenshot, SCREENSHOTS / "mobile-resolve-form.png")
            await step(browser.click, "#action-resolve button[type=submit]")
            await shown(".done", "已办结", timeout=30)
            assert "待回访" in await step(browser.text, "h1")
            await fits_the_phone()
            await step(browser.screenshot, SCREENSHOTS / "mobile-resolved.png")
            case = (await http.get(f"{dispatch_url}/api/v1/cases/{case_id}", headers=admin)).json()
            assert case["status"] == "resolved" and case["timeline"][-1]["actor"] == "handler:demo-zhujian"

            # A grid worker on another phone: a small problem reported in their grid, settled on the spot.
            await step(browser.command, "DELETE", "/cookie")
            small_id, small_no = await report("小区门口有一堆装修垃圾没人清理", "exposed_garbage", 29.0835, 120.0550)
            await http.post(f"{fake_wecom}/_fake/oauth/user", json={"userid": "hefei"})
            await step(browser.open, f"{origin}/m/")
            assert small_no in await shown("main", small_no, timeout=30)
            assert "待现场核实" in await step(browser.text, "main")  # the grid's new report, to check
            assert "没有待定位的上报" in await step(
                browser.text, "main"
            )  # intake's 待定位, placed on the map from here
            assert "何飞" in await step(browser.text, ".m-top .who")
            await fits_the_phone()
            await step(browser.screenshot, SCREENSHOTS / "mobile-grid-home.png")
            await step(browser.click, f'a[href="/m/cases/{small_no}"]')
            await shown("h1", small_no)
            assert await step(browser.count, "#action-settle") == 1
            await shown(".geo-status", "已获取手机位置")
            # 现场核实 comes first at a new report; 即知即改 is one tap away.
            await step(browser.click, "details:has(#action-settle) > summary")
            await step(browser.type, "#settle-result", "已现场清理装修垃圾")
            await step(browser.type, "#settle-after_media_ids", settled_photo)
            await step(browser.screenshot, SCREENSHOTS / "mobile-settle-form.png")
            await step(browser.click, "#action-settle button[type=submit]")
            await shown(".done", "已即知即改", timeout=30)
            assert await step(browser.count, "a.photo-after") == 1
            await step(browser.screenshot, SCREENSHOTS / "mobile-settled.png")
            small = (await http.get(f"{dispatch_url}/api/v1/cases/{small_id}", headers=admin)).json()
            assert small["status"] == "resolved"
            assert small["timeline"][-1]["action"] == "settle"
            assert small["timeline"][-1]["actor"] == "grid_worker:gw330727001002001"
            evidence = (await http.get(f"{media_url}/api/v1/cases/{small_id}/media", headers=admin)).json()["items"]
            assert evidence[0]["device_location"]["lat"] == 29.0829  # where the phone was


async def test_a_grid_worker_places_a_report_and_checks_new_ones_on_the_phone(
    make_settings, fake_wecom, browser, county, tmp_path
):
    """何飞, a grid worker, on the phone: a report that came with only an address is placed with the
    phone's position (after the phone first refused it, and a position outside the county), then
    two new reports in the grid are checked on site (现场核实): one real, with a photo, one not there
    (不属实), which cancels its case and stops its clocks. A handler may not place reports."""
    intake_settings = make_settings("intake")
    dispatch_settings = make_settings("dispatch")
    media_settings = make_settings("media", intake_incoming_bucket=intake_settings.intake_incoming_bucket)
    grid = county.grids["330727001002001"]  # 何飞's grid
    here = {"latitude": round(grid.centroid[0], 6), "longitude": round(grid.centroid[1], 6), "accuracy": 9}
    report_photo = jpeg(tmp_path / "路灯.jpg", (40, 60, 90))
    check_photo = jpeg(tmp_path / "现场.jpg", (150, 90, 60))
    step = asyncio.to_thread
    shown = functools.partial(text_shown, browser)
    admin = bearer(dispatch_settings, "admin")

    async with (
        serving(intake_app(intake_settings)) as intake_url,
        serving(dispatch_app(dispatch_settings)) as dispatch_url,
        serving(media_app(media_settings)) as media_url,
        serving(sla_app(make_settings("sla"))) as sla_url,
        httpx.AsyncClient() as http,
    ):
        console = await mobile_console(
            make_settings,
            http,
            admin=admin,
            fake_wecom=fake_wecom,
            urls={"dispatch": dispatch_url, "media": media_url, "sla": sla_url, "intake": intake_url},
        )

        async def report(**body) -> dict:
            answer = await http.post(f"{intake_url}/api/v1/reports", json=body | {"channel": "api"})
            assert answer.status_code == 201, answer.text
            case_id = answer.json()["case_id"]

            async def dispatched():
                found = await http.get(f"{dispatch_url}/api/v1/cases/{case_id}", headers=admin)
                return found.status_code == 200 and found.json()["status"] == "dispatched"

            await eventually(dispatched, timeout=30)
            return answer.json()

        async def fits_the_phone():
            width = await step(browser.script, "return document.documentElement.scrollWidth;")
            assert width <= PHONE["width"], width

        # A resident's photo, uploaded as the H5 form does, and a report with only an address.
        with open(report_photo, "rb") as photo:
            uploaded = await http.post(f"{media_url}/api/v1/media", files={"file": ("路灯.jpg", photo, "image/jpeg")})
        assert uploaded.status_code == 201, uploaded.text
        lamp = await report(
            description="后街的路灯坏了好几天，晚上一片黑",
            category="signboard_lighting",
            address="莲源社区后街 3 号楼旁",
            media_ids=[uploaded.json()["media_id"]],
        )
        real = await report(
            description="幸福路边井盖破了一个角", category="manhole", lat=here["latitude"], lng=here["longitude"]
        )
        false = await report(
            description="小区门口堆了很多建筑垃圾",
            category="exposed_garbage",
            lat=here["latitude"],
            lng=here["longitude"],
        )

        async with serving(console) as origin:
            await http.post(f"{fake_wecom}/_fake/oauth/user", json={"userid": "hefei"})
            await step(browser.open, f"{origin}/m/")
            to_check = await shown("#to-check", false["case_no"], timeout=30)
            assert "待现场核实（2）" in to_check and real["case_no"] in to_check
            assert lamp["case_no"] in await step(browser.text, "#to-locate")
            assert "待回访" not in await step(browser.text, "main")  # nothing resolved: no 回访 list yet
            await fits_the_phone()
            await step(browser.screenshot, SCREENSHOTS / "mobile-grid-home-to-check.png")

            # 定位 on the phone: the report, its photo, and the map of 何飞's area.
            await step(browser.click, f'#to-locate a[href="/m/locate/{lamp["report_id"]}"]')
            await shown("h1", "定位上报")
            assert "莲源社区后街 3 号楼旁" in await step(browser.text, "main")
            assert await step(browser.count, "img.thumb") == 1  # the resident's photo: how to find the place

            # The photo comes through the console from media: on a busy machine it is still loading.
            async def photo_width():
                return await step(browser.script, "return document.querySelector('img.thumb').naturalWidth;")

            assert await eventually(photo_width, timeout=20) == 160
            # The phone refuses its position: say how to allow it, or to pick on the map.
            await step(
                browser.cdp,
                "Browser.setPermission",
                permission={"name": "geolocation"},
                setting="denied",
                origin=origin,
            )
            await step(browser.click, "#use-my-position")
            refused = await shown("#position-status", "没有允许")
            assert "设置" in refused and "地图上点出位置" in refused
            await fits_the_phone()
            await step(browser.screenshot, SCREENSHOTS / "mobile-locate-refused.png")
            # Allowed, but somewhere else (Hangzhou): not in the county, nothing filled in.
            await step(browser.cdp, "Browser.grantPermissions", permissions=["geolocation"], origin=origin)
            await step(
                browser.cdp, "Emulation.setGeolocationOverride", latitude=30.2741, longitude=120.1551, accuracy=20
            )
            await step(browser.click, "#use-my-position")
            assert "不在示范县范围内" in await shown("#position-status", "不在示范县")
            assert await step(browser.script, "return document.getElementById('lat').value;") == ""
            # A point typed into another grid's area: intake refuses it, the phone says so.
            other = county.grids["330727001001001"].centroid
            await step(browser.type, "#lat", f"{other[0]:.6f}")
            await step(browser.type, "#lng", f"{other[1]:.6f}")
            await step(browser.click, "#place")
            assert "不在您负责的区域" in await shown(".error", "区域")
            # At the place: 用我的位置 fills the point in and marks it on the map.
            await step(browser.cdp, "Emulation.setGeolocationOverride", **here)
            await step(
                browser.script, "document.getElementById('lat').value = ''; document.getElementById('lng').value = '';"
            )
            await step(browser.click, "#use-my-position")
            assert "已填入您的位置（误差约 9 米）" in await shown("#position-status", "已填入")
            assert await step(browser.count, "#pick circle.picked") == 1
            assert await step(browser.count, "#pick.outside") == 0
            await fits_the_phone()
            await step(browser.screenshot, SCREENSHOTS / "mobile-locate.png")
            await step(browser.script, "document.getElementById('pick').scrollIntoView();")
            await step(browser.screenshot, SCREENSHOTS / "mobile-locate-map.png")
            await step(browser.click, "#place")
            assert lamp["case_no"] in await shown(".done", "已定位", timeout=30)
            placed = await http.get(f"{intake_url}/api/v1/reports/{lamp['report_id']}", headers=admin)
            assert placed.json()["grid_code"] == grid.code and not placed.json()["needs_locating"]

            # 现场核实, real: with a photo of the broken corner and the phone's position.
            await step(browser.open, f"{origin}/m/cases/{real['case_no']}")
            await shown("h1", real["case_no"])
            assert await step(browser.count, "details.action[open] #action-check") == 1  # the first thing to do
            await shown(".geo-status", "已获取手机位置")
            await step(browser.click, "#check-finding-confirmed")
            await step(browser.type, "#check-reason", "井盖一角破损，已设警示")
            await step(browser.type, "#check-before_media_ids", check_photo)
            await fits_the_phone()
            await step(browser.script, "document.getElementById('action-check').scrollIntoView();")
            await step(browser.screenshot, SCREENSHOTS / "mobile-check-form.png")
            await step(browser.click, "#action-check button[type=submit]")
            assert "情况属实" in await shown(".done", "已现场核实", timeout=30)
            assert await step(browser.count, "#action-check") == 0  # once per case
            assert "情况属实" in await step(browser.text, ".timeline")
            await step(browser.screenshot, SCREENSHOTS / "mobile-checked.png")
            case = (await http.get(f"{dispatch_url}/api/v1/cases/{real['case_id']}", headers=admin)).json()
            assert case["status"] == "dispatched" and case["checked_at"]
            last = case["timeline"][-1]
            assert (last["action"], last["actor"], last["reason"]) == (
                "check",
                "grid_worker:gw330727001002001",
                "井盖一角破损，已设警示",
            )
            assert last["detail"]["finding"] == "confirmed" and len(last["detail"]["before_media_ids"]) == 1
            assert last["detail"]["device_location"]["lat"] == here["latitude"]
            items = (await http.get(f"{media_url}/api/v1/cases/{real['case_id']}/media", headers=admin)).json()
            taken = [m for m in items["items"] if m["media_id"] == last["detail"]["before_media_ids"][0]]
            assert taken[0]["role"] == "before" and taken[0]["device_location"]["lat"] == here["latitude"]

            # 现场核实, not there: without a word of what was found it is refused; with it, cancelled.
            await step(browser.open, f"{origin}/m/cases/{false['case_no']}")
            await shown("h1", false["case_no"])
            await step(browser.click, "#check-finding-unfounded")
            await step(browser.click, "#action-check button[type=submit]")
            assert "核实情况" in await shown("#action-check .error", "核实情况", timeout=30)
            assert await step(browser.script, "return document.getElementById('check-finding-unfounded').checked;")
            await step(browser.type, "#check-reason", "现场已清理干净，未见建筑垃圾")
            await step(browser.click, "#action-check button[type=submit]")
            assert "情况不属实，案件已撤销" in await shown(".done", "已现场核实", timeout=30)
            assert "已撤销" in await step(browser.text, "h1")
            assert "情况不属实" in await step(browser.text, ".timeline")
            await fits_the_phone()
            await step(browser.screenshot, SCREENSHOTS / "mobile-checked-unfounded.png")

            async def clocks_stopped():
                answer = await http.get(f"{sla_url}/api/v1/cases/{false['case_id']}/timers", headers=admin)
                timers = answer.json()["timers"]
                return timers if timers and all(t["stopped_at"] for t in timers) else None

            assert {t["stop_reason"] for t in await eventually(clocks_stopped, timeout=30)} == {"checked"}
            await step(browser.open, f"{origin}/m/")
            assert "待现场核实（1）" in await shown("#to-check", "待现场核实")
            assert false["case_no"] not in await step(browser.text, "main")

            # A handler may not place reports: the phone says who may.
            await step(browser.command, "DELETE", "/cookie")
            await http.post(f"{fake_wecom}/_fake/oauth/user", json={"userid": "liqiang"})
            await step(browser.open, f"{origin}/m/locate/{lamp['report_id']}")
            assert "网格员" in await shown(".error-page", "只有网格员")
            assert "无法使用" in await step(browser.text, "h1")
