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
        # The directory (通讯录) knows both by their WeCom user ids.
        people = {
            "demo-zhujian": ("李强", "liqiang", "handler", "330727", "zhujian"),
            "gw330727001002001": ("何飞", "hefei", "grid_worker", "330727001002001", None),
        }
        for person_id, (name, userid, role, place, department) in people.items():
            saved = await http.put(
                f"{dispatch_url}/api/v1/directory/people/{person_id}",
                json={
                    "name": name,
                    "wecom_user_id": userid,
                    "roles": [{"role": role, "jurisdiction_code": place, "department_code": department}],
                },
                headers=admin,
            )
            assert saved.status_code == 200, saved.text
        console = console_app(
            make_settings(
                "console",
                console_dispatch_url=dispatch_url,
                console_media_url=media_url,
                console_sla_url=sla_url,
                console_intake_url=intake_url,
                console_wecom_oauth_url=fake_wecom,
                console_wecom_api_url=fake_wecom,
            )
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
            assert "本网格待办" in await step(browser.text, "main")
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
