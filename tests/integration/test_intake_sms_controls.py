"""我要查询 cannot be used to text strangers: per-phone cooldown and daily cap, a service-wide SMS
budget, a self-hosted image CAPTCHA after repeated attempts, and phones proved by their owner
(reporter.verified) — against real PostgreSQL and Kafka."""

import asyncio
import base64
from datetime import timedelta
from uuid import UUID

import asyncpg

from services.intake.app import create_app
from services.intake.domain import captcha_answer_hash
from shared.events import utcnow
from shared.phones import phone_hash
from shared.topics import REPORTER_CONTACTS
from tests.support import read_topic, running

HERE = (29.0800, 120.0400)
REPORTER, STRANGER = "13800000001", "13900000000"


def _report(phone: str, description: str = "小区门口垃圾桶满了没人清", *, lat: float = HERE[0]) -> dict:
    return {
        "description": description,
        "category": "garbage_collection",
        "lat": lat,
        "lng": HERE[1],
        "reporter_phone": phone,
    }


async def _db(settings):
    return await asyncpg.connect(settings.database_url, server_settings={"search_path": "intake"})


async def _solve(settings, captcha_id: str) -> str:
    """What a person reads in the picture: found here from the stored keyed hash (sums are small)."""
    db = await _db(settings)
    try:
        stored = bytes(await db.fetchval("SELECT answer_hash FROM captchas WHERE captcha_id = $1::uuid", captcha_id))
    finally:
        await db.close()
    for n in range(0, 100):
        if captcha_answer_hash(str(n), key=settings.phone_hash_key, captcha_id=UUID(captcha_id)) == stored:
            return str(n)
    raise AssertionError("no small sum matches the stored hash")


def _refused(answer, status: int, kind: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith(kind)


async def test_a_phone_waits_between_codes_whether_or_not_it_ever_reported(make_settings):
    settings = make_settings("intake", intake_query_code_cooldown_s=60)
    async with running(create_app(settings)) as client:
        assert (await client.post("/api/v1/reports", json=_report(REPORTER))).status_code == 201
        for phone in (REPORTER, STRANGER):
            first = await client.post("/api/v1/query/codes", json={"phone": phone})
            assert first.status_code == 202 and "如该手机号提交过反映" in first.json()["message"]
            again = await client.post("/api/v1/query/codes", json={"phone": phone})
            _refused(again, 429, "code-cooldown")
            assert 55 <= int(again.headers["retry-after"]) <= 60
            assert "秒后再试" in again.json()["detail"]
        # Both phones are answered alike: the refusal does not tell who reported.
        assert (await client.post("/api/v1/query/codes", json={"phone": "13700000000"})).status_code == 202


async def test_a_phone_gets_a_few_codes_a_day(make_settings):
    settings = make_settings(
        "intake",
        intake_query_code_cooldown_s=0,
        intake_query_code_daily_cap=2,
        intake_captcha_after_attempts_per_phone=100,
        intake_captcha_after_attempts_per_ip=100,
    )
    async with running(create_app(settings)) as client:
        assert (await client.post("/api/v1/reports", json=_report(REPORTER))).status_code == 201
        for phone in (REPORTER, STRANGER):
            assert [
                (await client.post("/api/v1/query/codes", json={"phone": phone})).status_code for _ in range(2)
            ] == [
                202,
                202,
            ]
            third = await client.post("/api/v1/query/codes", json={"phone": phone})
            _refused(third, 429, "code-daily-cap")
            assert "请明天再试" in third.json()["detail"] and "案件编号" in third.json()["detail"]
            assert 0 < int(third.headers["retry-after"]) <= 86400
    db = await _db(settings)
    try:
        assert await db.fetchval("SELECT count(*) FROM query_codes") == 2  # texted to the reporter only
    finally:
        await db.close()


async def test_the_service_texts_at_most_its_hourly_budget_of_codes(make_settings):
    settings = make_settings(
        "intake",
        intake_sms_budget_per_hour=1,
        intake_captcha_after_attempts_per_phone=100,
        intake_captcha_after_attempts_per_ip=100,
    )
    async with running(create_app(settings)) as client:
        for phone in (REPORTER, "13800000002"):
            assert (await client.post("/api/v1/reports", json=_report(phone))).status_code == 201
        assert (await client.post("/api/v1/query/codes", json={"phone": REPORTER})).status_code == 202
        for phone in ("13800000002", STRANGER):  # reported or not: refused alike
            over = await client.post("/api/v1/query/codes", json={"phone": phone})
            _refused(over, 429, "sms-budget")
            assert 3500 <= int(over.headers["retry-after"]) <= 3600 and "分钟后再试" in over.json()["detail"]
    db = await _db(settings)
    try:
        assert await db.fetchval("SELECT count(*) FROM query_codes") == 1
    finally:
        await db.close()


async def test_repeated_attempts_need_a_solved_captcha_checked_once(make_settings):
    settings = make_settings(
        "intake",
        intake_query_code_cooldown_s=0,
        intake_captcha_after_attempts_per_phone=9,
        intake_captcha_after_attempts_per_ip=2,
        intake_rate_limit_phone_per_hour=100,
    )
    async with running(create_app(settings)) as client:
        assert (await client.post("/api/v1/reports", json=_report(REPORTER))).status_code == 201
        # One code and one wrong guess: the next request, whichever it is, needs a CAPTCHA.
        assert (await client.post("/api/v1/query/codes", json={"phone": REPORTER})).status_code == 202
        wrong = await client.post("/api/v1/query/by-phone", json={"phone": REPORTER, "code": "000000"})
        _refused(wrong, 403, "invalid-code")
        for path, body in (("/api/v1/query/codes", {}), ("/api/v1/query/by-phone", {"code": "123456"})):
            needed = await client.post(path, json={"phone": REPORTER, **body})
            _refused(needed, 403, "captcha-required")
            assert "图形验证码" in needed.json()["detail"]
        # From this address, another phone needs one too.
        _refused(await client.post("/api/v1/query/codes", json={"phone": STRANGER}), 403, "captcha-required")

        captcha = await client.get("/api/v1/captcha")
        assert captcha.status_code == 200
        shown = captcha.json()
        png = base64.b64decode(shown["image"].removeprefix("data:image/png;base64,"))
        assert (
            png.startswith(b"\x89PNG") and shown["question"] and shown["expires_in_s"] == settings.intake_captcha_ttl_s
        )
        answer = await _solve(settings, shown["captcha_id"])
        mistaken = str(int(answer) + 1)
        with_wrong = {"phone": REPORTER, "captcha_id": shown["captcha_id"], "captcha_answer": mistaken}
        _refused(await client.post("/api/v1/query/codes", json=with_wrong), 403, "captcha-required")
        # Checked once: after a wrong answer the right one does not open it either.
        with_right = {**with_wrong, "captcha_answer": answer}
        _refused(await client.post("/api/v1/query/codes", json=with_right), 403, "captcha-required")

        fresh = (await client.get("/api/v1/captcha")).json()
        solved = {
            "phone": REPORTER,
            "captcha_id": fresh["captcha_id"],
            "captcha_answer": await _solve(settings, fresh["captcha_id"]),
        }
        assert (await client.post("/api/v1/query/codes", json=solved)).status_code == 202
        _refused(await client.post("/api/v1/query/codes", json=solved), 403, "captcha-required")  # used

        # An expired CAPTCHA is refused even with its right answer.
        late = (await client.get("/api/v1/captcha")).json()
        db = await _db(settings)
        try:
            await db.execute(
                "UPDATE captchas SET expires_at = $2 WHERE captcha_id = $1::uuid",
                late["captcha_id"],
                utcnow() - timedelta(seconds=1),
            )
            assert await db.fetchval("SELECT count(*) FROM captchas WHERE answer_hash = $1", answer.encode()) == 0
        finally:
            await db.close()
        expired = {
            "phone": REPORTER,
            "captcha_id": late["captcha_id"],
            "captcha_answer": await _solve(settings, late["captcha_id"]),
        }
        _refused(await client.post("/api/v1/query/codes", json=expired), 403, "captcha-required")


async def test_entering_a_texted_code_proves_the_phone_for_its_cases_now_and_later(make_settings):
    settings = make_settings("intake")
    async with running(create_app(settings)) as client:
        opened = (await client.post("/api/v1/reports", json=_report(REPORTER))).json()
        # Someone else's report of the same problem joins that case: it is not theirs to be texted about.
        joined = (await client.post("/api/v1/reports", json=_report("13800000002", "垃圾桶还是满的"))).json()
        assert joined["case_id"] == opened["case_id"]
        assert (await client.post("/api/v1/query/codes", json={"phone": "13800000002"})).status_code == 202
        assert (await client.post("/api/v1/query/codes", json={"phone": REPORTER})).status_code == 202
        events = await read_topic(
            settings, REPORTER_CONTACTS.name, until=lambda ms: sum(m["type"] == "query.code_requested" for m in ms) == 2
        )
        codes = {
            m["payload"]["phone_masked"]: m["payload"]["code"] for m in events if m["type"] == "query.code_requested"
        }
        for phone in ("13800000002", REPORTER):
            answer = await client.post(
                "/api/v1/query/by-phone", json={"phone": phone, "code": codes[phone[:3] + "****" + phone[-4:]]}
            )
            assert answer.status_code == 200, answer.text
        # A case this proved phone opens later is covered at once.
        later = (
            await client.post("/api/v1/reports", json=_report(REPORTER, "路口积水很深", lat=HERE[0] + 0.01))
        ).json()
        assert later["case_id"] != opened["case_id"]

        def verified(ms):
            return [m for m in ms if m["type"] == "reporter.verified"]

        events = await read_topic(settings, REPORTER_CONTACTS.name, until=lambda ms: len(verified(ms)) == 3)
    hashed = phone_hash(REPORTER, settings.phone_hash_key).hex()
    mine = [m["payload"] for m in verified(events) if m["payload"]["phone_hash"] == hashed]
    assert [(p["case_ids"], p["report_ids"]) for p in mine] == [
        ([opened["case_id"]], [opened["report_id"]]),
        ([later["case_id"]], [later["report_id"]]),
    ]
    # The joined report's phone is proven for that report alone (its reporter follows the case), not the case.
    [theirs] = [m["payload"] for m in verified(events) if m["payload"]["phone_hash"] != hashed]
    assert (theirs["case_ids"], theirs["report_ids"]) == ([], [joined["report_id"]])
    assert all(REPORTER not in str(m) and "13800000002" not in str(m) for m in verified(events))


async def test_a_phone_asked_about_repeatedly_needs_a_captcha_while_others_from_the_address_do_not(make_settings):
    settings = make_settings(
        "intake",
        intake_query_code_cooldown_s=0,
        intake_captcha_after_attempts_per_phone=2,
        intake_captcha_after_attempts_per_ip=100,
    )
    async with running(create_app(settings)) as client:
        assert (await client.post("/api/v1/query/codes", json={"phone": STRANGER})).status_code == 202
        wrong = await client.post("/api/v1/query/by-phone", json={"phone": STRANGER, "code": "000000"})
        _refused(wrong, 403, "invalid-code")
        _refused(await client.post("/api/v1/query/codes", json={"phone": STRANGER}), 403, "captcha-required")
        # A neighbour behind the same address is not bothered.
        assert (await client.post("/api/v1/query/codes", json={"phone": REPORTER})).status_code == 202


async def test_simultaneous_code_requests_for_one_phone_send_one_code(make_settings):
    settings = make_settings("intake", intake_query_code_cooldown_s=60)
    async with running(create_app(settings)) as client:
        assert (await client.post("/api/v1/reports", json=_report(REPORTER))).status_code == 201
        answers = await asyncio.gather(
            *(client.post("/api/v1/query/codes", json={"phone": REPORTER}) for _ in range(5))
        )
        assert sorted(a.status_code for a in answers) == [202, 429, 429, 429, 429]
    db = await _db(settings)
    try:
        assert await db.fetchval("SELECT count(*) FROM query_codes") == 1
    finally:
        await db.close()
