"""我要查询 in real headless Chromium: after repeated code requests the page shows the image
CAPTCHA the API asks for, with a refresh button, and a solved one lets the request through."""

import asyncio
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
import uvicorn

from devtools.local_servers import free_port
from services.intake.app import create_app as intake_app
from services.intake.domain import captcha_answer_hash
from tests.browser import chromium, needs_chromium
from tests.support import eventually

pytestmark = needs_chromium
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".cache" / "run" / "screenshots"


@pytest.fixture
def browser():
    with chromium(width=390, height=900) as browser:  # a phone's width
        yield browser


async def _answer(settings, captcha_id: str) -> str:
    """What a person reads in the picture (found from the stored keyed hash; the sums are small)."""
    db = await asyncpg.connect(settings.database_url, server_settings={"search_path": "intake"})
    try:
        stored = bytes(await db.fetchval("SELECT answer_hash FROM captchas WHERE captcha_id = $1::uuid", captcha_id))
    finally:
        await db.close()
    key, cid = settings.phone_hash_key, UUID(captcha_id)
    return next(str(n) for n in range(100) if captcha_answer_hash(str(n), key=key, captcha_id=cid) == stored)


async def test_the_query_page_asks_for_the_captcha_when_the_api_does(make_settings, browser):
    settings = make_settings("intake", intake_query_code_cooldown_s=0, intake_captcha_after_attempts_per_phone=1)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(intake_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    step = asyncio.to_thread  # WebDriver calls block; the server runs on this loop meanwhile
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        await step(browser.open, f"http://127.0.0.1:{port}/h5/query")
        await step(browser.click, "#by-phone summary")
        await step(browser.type, "#code-phone", "13912345678")
        await step(browser.click, "#send-code")

        async def message():
            return await step(browser.text, "#code-error")

        assert "如该手机号提交过反映" in await eventually(message)
        assert await step(browser.script, "return document.getElementById('captcha').hidden") is True

        await step(browser.click, "#send-code")  # a second request: the API wants a CAPTCHA now

        async def shown_captcha():
            src = await step(browser.script, "return document.getElementById('captcha-image').src")
            hidden = await step(browser.script, "return document.getElementById('captcha').hidden")
            return src if not hidden and src.startswith("data:image/png;base64,") else None

        first = await eventually(shown_captcha)
        assert "图形验证码" in await step(browser.text, "#code-error")
        await step(browser.script, "document.getElementById('code-error').scrollIntoView({block: 'end'})")
        await step(browser.screenshot, SCREENSHOTS / "query-captcha-required.png")

        await step(browser.click, "#captcha-refresh")

        async def refreshed():
            src = await shown_captcha()
            return src if src and src != first else None

        await eventually(refreshed)
        captcha_id = await step(browser.script, "return document.getElementById('captcha-image').dataset.captchaId")
        await step(browser.type, "#captcha-answer", await _answer(settings, captcha_id))
        await step(browser.screenshot, SCREENSHOTS / "query-captcha-filled.png")
        await step(browser.click, "#send-code")

        async def sent_again():
            text = await message()
            return text if "如该手机号提交过反映" in text else None

        assert await eventually(sent_again)
        await step(browser.script, "document.getElementById('code-error').scrollIntoView({block: 'end'})")
        await step(browser.screenshot, SCREENSHOTS / "query-captcha-solved.png")
    finally:
        server.should_exit = True
        await serving
