"""The pure rules behind 我要查询's SMS controls, the CAPTCHA picture, and the Retry-After header."""

import io
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
from fastapi import FastAPI
from PIL import Image

from services.intake.captcha import HEIGHT, WIDTH, data_url, new_challenge, render_png
from services.intake.domain import (
    captcha_answer_hash,
    china_day_start,
    code_request_refusal,
    needs_captcha,
)
from shared.problems import Problem, install_problem_handlers

NOW = datetime(2026, 12, 2, 6, 30, tzinfo=UTC)  # 14:30 in Beijing
LIMITS = dict(cooldown_s=60, daily_cap=5, hourly_budget=300)


def refusal(**counts):
    given = dict(last_request_at=None, requests_today=0, texted_last_hour=0, oldest_texted_last_hour=None) | counts
    return code_request_refusal(now=NOW, **given, **LIMITS)


def test_a_first_code_of_the_day_is_sent():
    assert refusal() is None
    assert refusal(last_request_at=NOW - timedelta(seconds=61), requests_today=4, texted_last_hour=299) is None


def test_the_cooldown_says_how_many_seconds_are_left():
    wait = refusal(last_request_at=NOW - timedelta(seconds=20))
    assert wait is not None
    assert (wait.kind, wait.retry_after_s) == ("code-cooldown", 40) and "40秒后再试" in wait.detail


def test_the_daily_cap_lasts_until_midnight_in_beijing():
    capped = refusal(last_request_at=NOW - timedelta(hours=1), requests_today=5)
    assert capped is not None and capped.kind == "code-daily-cap"
    assert capped.retry_after_s == int(timedelta(hours=9, minutes=30).total_seconds())  # 14:30 → 24:00
    assert "明天再试" in capped.detail and "案件编号" in capped.detail  # what else to do now


def test_the_service_budget_waits_for_the_oldest_code_of_the_hour_to_age_out():
    busy = refusal(texted_last_hour=300, oldest_texted_last_hour=NOW - timedelta(minutes=50))
    assert busy is not None and busy.kind == "sms-budget"
    assert busy.retry_after_s == 600 and "约10分钟后再试" in busy.detail


def test_the_beijing_day_starts_at_16_utc_the_day_before():
    assert china_day_start(NOW) == datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    assert china_day_start(datetime(2026, 12, 1, 16, 0, tzinfo=UTC)) == datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    assert china_day_start(datetime(2026, 12, 1, 15, 59, tzinfo=UTC)) == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)


def test_a_captcha_is_needed_after_repeated_attempts_from_an_address_or_for_a_phone():
    limits = dict(ip_threshold=10, phone_threshold=3)
    assert not needs_captcha(attempts_from_ip=9, attempts_for_phone=2, **limits)
    assert needs_captcha(attempts_from_ip=10, attempts_for_phone=0, **limits)
    assert needs_captcha(attempts_from_ip=0, attempts_for_phone=3, **limits)


def test_captcha_answers_are_hashed_per_captcha_and_take_full_width_digits():
    captcha_id = uuid4()
    right = captcha_answer_hash("15", key="k", captcha_id=captcha_id)
    assert captcha_answer_hash(" １５ ", key="k", captcha_id=captcha_id) == right
    assert captcha_answer_hash("15", key="k", captcha_id=uuid4()) != right
    assert captcha_answer_hash("16", key="k", captcha_id=captcha_id) != right
    assert b"15" not in right


def test_the_captcha_is_a_small_sum_drawn_as_a_png():
    for _ in range(50):
        text, answer = new_challenge()
        a, b = text.removesuffix(" = ?").split(" + ")
        assert int(a) + int(b) == int(answer) and 2 <= int(answer) <= 29
    png = render_png("7 + 8 = ?")
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (WIDTH, HEIGHT))
    assert data_url(png).startswith("data:image/png;base64,iVBOR")


async def test_a_refusal_that_knows_when_to_come_back_sends_retry_after():
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/busy")
    async def busy():
        raise Problem(429, "Too many", "请40秒后再试。", kind="code-cooldown", retry_after_s=40)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        answer = await client.get("/busy")
    assert answer.status_code == 429 and answer.headers["retry-after"] == "40"
    assert answer.json()["retry_after_s"] == 40
