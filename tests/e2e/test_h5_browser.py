"""The H5 form (我要反映) in real headless Chromium, driven through chromedriver's W3C WebDriver
API: the page locates the resident (geolocation), takes a photo and a description, and the
report reaches intake with its photo, which media then keeps as the case's before evidence."""

import asyncio
import io
import os
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
import uvicorn
from PIL import Image

from devtools.local_servers import free_port
from services.intake.app import create_app as intake_app
from services.media.app import create_app as media_app
from tests.browser import chromium, needs_chromium
from tests.support import bearer, eventually, running, serving

HERE = (29.0829, 120.0546)
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".cache" / "run" / "screenshots"

pytestmark = needs_chromium


@pytest.fixture
def browser():
    with chromium() as browser:
        yield browser


async def test_a_resident_reports_from_the_h5_page(make_settings, browser, tmp_path):
    intake_settings = make_settings("intake")
    media_settings = make_settings("media", intake_incoming_bucket=intake_settings.intake_incoming_bucket)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(intake_app(intake_settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    photo = tmp_path / "井盖.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (96, 72), (70, 70, 70)).save(buffer, format="JPEG")
    photo.write_bytes(buffer.getvalue())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        async with running(media_app(media_settings)) as media:
            origin = f"http://127.0.0.1:{port}"
            step = asyncio.to_thread  # WebDriver calls block; the servers run on this loop meanwhile
            await step(browser.cdp, "Browser.grantPermissions", origin=origin, permissions=["geolocation"])
            await step(
                browser.cdp, "Emulation.setGeolocationOverride", latitude=HERE[0], longitude=HERE[1], accuracy=10
            )
            await step(browser.open, f"{origin}/h5/")
            await step(browser.click, "#locate")

            async def located():
                text = await step(browser.text, "#location-text")
                return text if text.startswith("已定位") else None

            assert "网格员" in await eventually(located)
            await step(browser.type, "#photos", os.fspath(photo))
            await step(browser.type, "#description", "小区北门人行道上的井盖缺了一块，晚上很危险")
            await step(browser.type, "#phone", "13912345678")
            await step(browser.click, "#submit")

            async def case_no():
                return await step(browser.text, "#case-no")

            number = await eventually(case_no)
            # A phone was given: the page says how to get updates by SMS (prove the phone once).
            assert "验证这个手机号" in await step(browser.text, "#sms-hint")
            await step(browser.screenshot, SCREENSHOTS / "report-done-sms-hint.png")
            db = await asyncpg.connect(intake_settings.database_url)
            try:
                case_id = await db.fetchval("SELECT case_id FROM intake.reports WHERE case_no = $1", number)
            finally:
                await db.close()

            async def before_photo():
                r = await media.get(f"/api/v1/cases/{case_id}/media", headers=bearer(media_settings, "dispatcher"))
                return r.json()["items"] if r.status_code == 200 and r.json()["items"] else None

            [item] = await eventually(before_photo)
            assert item["role"] == "before" and item["content_type"] == "image/jpeg"
    finally:
        server.should_exit = True
        await serving


async def test_a_broken_or_foreign_confirmation_link_says_what_to_do(make_settings):
    """The 办结确认 page on a phone: a link that lost part of its address, and a link that is not
    this report's, each say in Chinese what to do, and the buttons stay usable."""
    with chromium(width=390, height=760) as phone:
        async with serving(intake_app(make_settings("intake"))) as origin:
            step = asyncio.to_thread
            await step(phone.open, f"{origin}/h5/confirm?r=3f2a")  # cut short when copied
            await step(phone.click, "#solved")

            async def said() -> str | None:
                return await step(phone.text, "#error") or None

            assert await eventually(said) == "这个确认链接不完整，请从回访消息中重新打开链接。"
            assert await step(phone.script, "return document.querySelector('#solved').disabled") is False
            await step(phone.screenshot, SCREENSHOTS / "confirm-broken-link.png")
            await step(phone.open, f"{origin}/h5/confirm?r={uuid4()}&t={'a' * 32}")
            await step(phone.click, "#unsolved")
            assert "请使用回访消息中发给您的链接" in await eventually(said)
