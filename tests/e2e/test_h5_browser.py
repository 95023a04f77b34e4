"""The H5 form (我要反映) in real headless Chromium, driven through chromedriver's W3C WebDriver
API: the page locates the resident (geolocation), takes a photo and a description, and the
report reaches intake with its photo, which media then keeps as the case's before evidence."""

import asyncio
import io
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from PIL import Image

from devtools.local_servers import free_port
from services.intake.app import create_app as intake_app
from services.media.app import create_app as media_app
from tests.support import bearer, eventually, running

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C web element identifier
HERE = (29.0829, 120.0546)

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="Debian's chromium and chromium-driver are not installed"
)


class Browser:
    """Just the WebDriver commands the page tests need."""

    def __init__(self, http: httpx.Client, session: str):
        self.http, self.session = http, session

    def command(self, method: str, path: str, body: dict | None = None):
        response = self.http.request(method, f"/session/{self.session}{path}", json=body)
        response.raise_for_status()
        return response.json()["value"]

    def cdp(self, cmd: str, **params):
        return self.command("POST", "/goog/cdp/execute", {"cmd": cmd, "params": params})

    def open(self, url: str):
        self.command("POST", "/url", {"url": url})

    def element(self, css: str) -> str:
        return self.command("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def click(self, css: str):
        self.command("POST", f"/element/{self.element(css)}/click", {})

    def type(self, css: str, text: str):
        self.command("POST", f"/element/{self.element(css)}/value", {"text": text})

    def text(self, css: str) -> str:
        return self.command("GET", f"/element/{self.element(css)}/text")


@pytest.fixture
def browser():
    port, profile = free_port(), tempfile.mkdtemp(prefix="gridlink-chromium-")
    driver = subprocess.Popen(
        [str(CHROMEDRIVER), f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if http.get("/status").json()["value"]["ready"]:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chromedriver did not start")
            time.sleep(0.1)
        # The flags keep Chromium off the network this machine cannot reach anyway.
        args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--lang=zh-CN",
        ]
        session = http.post(
            "/session",
            json={
                "capabilities": {
                    "alwaysMatch": {
                        "browserName": "chrome",
                        "goog:chromeOptions": {"binary": str(CHROMIUM), "args": args},
                    }
                }
            },
        ).json()
        browser = Browser(http, session["value"]["sessionId"])
        yield browser
        http.delete(f"/session/{browser.session}")
    finally:
        http.close()
        driver.terminate()
        driver.wait(20)
        shutil.rmtree(profile, ignore_errors=True)


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
