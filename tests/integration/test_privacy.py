"""Reporters' personal data (PIPL), against real PostgreSQL and Kafka: each kind is anonymised once
its retention is over (by the services' own loops, or the privacy commands), staff reads are
recorded and shown to supervisors only, and phone ciphertext follows a key rotation."""

import asyncio
import json
from uuid import UUID, uuid4

import asyncpg
import pytest

from services.intake import privacy as intake_privacy
from services.intake.app import create_app as intake_app
from services.notify import privacy as notify_privacy
from services.notify.app import load_directory
from services.notify.handlers import make_handlers
from shared.events import ReporterContactGiven, new_event, utcnow
from shared.phones import PhoneKeys
from shared.sla_policy import load_sla_policy
from shared.topics import ensure_topics
from tests.support import bearer, eventually, running

HERE = (29.0800, 120.0400)
KEY = "open311-test-key-0123456789abcdef"
OLD_KEY, NEW_KEY = "o" * 32, "n" * 32


async def _db(settings, schema: str):
    return await asyncpg.connect(settings.database_url, server_settings={"search_path": schema})


async def _open311(client, *, phone: str, account: str, lat: float) -> str:
    posted = await client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": KEY,
            "jurisdiction_id": "330727",
            "service_code": "signboard_lighting",
            "lat": str(lat),
            "long": str(HERE[1]),
            "description": f"路灯不亮（{account}）",
            "phone": phone,
            "account_id": account,
            "first_name": "三",
            "last_name": "张",
        },
    )
    assert posted.status_code == 201, posted.text
    return posted.json()[0]["service_request_id"]


async def test_intake_anonymises_each_kind_after_its_retention_in_its_own_loop(make_settings):
    settings = make_settings(
        "intake",
        intake_open311_api_keys=[KEY],
        retention_days_phones=30,
        retention_days_openids=90,
        retention_days_locations=0,  # kept
        retention_interval_s=0.2,
    )
    async with running(intake_app(settings)) as client:
        old = await _open311(client, phone="13811112222", account="citizen-old", lat=HERE[0] + 0.000_123)
        middle = await _open311(client, phone="13811113333", account="citizen-mid", lat=HERE[0] + 0.01)
        new = await _open311(client, phone="13811114444", account="citizen-new", lat=HERE[0] + 0.02)
        db = await _db(settings, "intake")
        try:
            # As if submitted 100 and 60 days ago.
            for report, days in ((old, 100), (middle, 60)):
                await db.execute(
                    "UPDATE reports SET submitted_at = now() - make_interval(days => $2) WHERE report_id = $1",
                    UUID(report),
                    days,
                )

            async def anonymised():
                rows = await db.fetch("SELECT * FROM reports")
                by_id = {str(r["report_id"]): r for r in rows}
                return by_id if by_id[middle]["reporter_phone_token"] is None else None

            rows = await eventually(anonymised)
        finally:
            await db.close()
    # Phones (30 days): gone from both older reports; account ids (90 days): only from the oldest.
    for report in (old, middle):
        assert rows[report]["reporter_phone_hash"] is None and rows[report]["reporter_phone_masked"] is None
    assert rows[new]["reporter_phone_token"] and rows[new]["reporter_phone_masked"] == "138****4444"
    assert rows[old]["reporter_ref"] is None
    assert (rows[middle]["reporter_ref"], rows[new]["reporter_ref"]) == ("open311:citizen-mid", "open311:citizen-new")
    # Locations are kept (retention 0); names given to Open311 are never stored at all.
    assert rows[old]["lat"] == pytest.approx(HERE[0] + 0.000_123) and rows[old]["input_lat"] is not None
    assert not any("张" in json.dumps(dict(r), default=str) for r in rows.values())


async def test_exact_locations_are_coarsened_and_a_second_run_changes_nothing(make_settings):
    settings = make_settings("intake", intake_open311_api_keys=[KEY], retention_days_locations=7)
    async with running(intake_app(settings)) as client:
        old = await _open311(client, phone="13811115555", account="c-1", lat=HERE[0] + 0.000_456)
    db = await _db(settings, "intake")
    try:
        await db.execute("UPDATE reports SET submitted_at = now() - interval '8 days'")
        first = await intake_privacy.anonymise_once(db, settings=settings, now=utcnow())
        again = await intake_privacy.anonymise_once(db, settings=settings, now=utcnow())
        row = await db.fetchrow("SELECT * FROM reports WHERE report_id = $1", UUID(old))
    finally:
        await db.close()
    assert first == {"phones": 0, "openids": 0, "locations": 1} and again == {"phones": 0, "openids": 0, "locations": 0}
    assert (row["lat"], row["lng"]) == (round(HERE[0], 3), round(HERE[1], 3))
    assert row["input_lat"] is None and row["input_lng"] is None


async def test_staff_reads_of_personal_data_are_recorded_and_shown_to_supervisors_only(make_settings):
    settings = make_settings("intake")
    async with running(intake_app(settings)) as client:
        body = {"description": "幸福路井盖翻起来了", "category": "manhole", "reporter_phone": "13912345678"}
        placed = (await client.post("/api/v1/reports", json={**body, "lat": HERE[0], "lng": HERE[1]})).json()
        town = placed["town_code"]
        dispatcher = bearer(settings, "dispatcher", jurisdiction_code=town)
        assert (await client.get(f"/api/v1/reports/{placed['report_id']}", headers=dispatcher)).status_code == 200
        county_worker = bearer(settings, "dispatcher")
        assert (await client.get(f"/api/v1/reports/{placed['report_id']}", headers=county_worker)).status_code == 200
        unplaced = (await client.post("/api/v1/reports", json={**body, "address": "幸福路12号"})).json()
        listed = await client.get("/api/v1/reports-to-locate", headers=county_worker)
        assert unplaced["report_id"] in listed.text

        audit = "/api/v1/personal-data-reads"
        assert (await client.get(audit, headers=dispatcher)).status_code == 403
        county = (await client.get(audit, headers=bearer(settings, "supervisor"))).json()["reads"]
        assert [(r["route"], r["report_id"]) for r in county] == [
            ("GET /api/v1/reports-to-locate", unplaced["report_id"]),
            ("GET /api/v1/reports/{report_id}", placed["report_id"]),
            ("GET /api/v1/reports/{report_id}", placed["report_id"]),
        ]
        assert county[1]["actor"].startswith("dispatcher:") and county[0]["case_id"] == unplaced["case_id"]
        # A town's supervisor sees the reads by its own staff, filtered by case too.
        own = await client.get(
            audit, params={"case_id": placed["case_id"]}, headers=bearer(settings, "supervisor", jurisdiction_code=town)
        )
        assert [r["jurisdiction_code"] for r in own.json()["reads"]] == [town]
        by_reader = await client.get(audit, params={"reader": county[0]["actor"]}, headers=bearer(settings, "admin"))
        assert {r["actor"] for r in by_reader.json()["reads"]} == {county[0]["actor"]}


async def test_rotating_the_phone_key_reencrypts_what_intake_and_notify_keep(make_settings):
    before = {"phone_encryption_key": OLD_KEY, "phone_encryption_key_id": "k1"}
    after = {
        "phone_encryption_key": NEW_KEY,
        "phone_encryption_key_id": "k2",
        "phone_encryption_old_keys": {"k1": OLD_KEY},
    }
    intake_before = make_settings("intake", **before)
    async with running(intake_app(intake_before)) as client:
        body = {"description": "幸福路井盖翻起来了", "category": "manhole", "reporter_phone": "13912345678"}
        assert (await client.post("/api/v1/reports", json={**body, "lat": HERE[0], "lng": HERE[1]})).status_code == 201
    intake_after = intake_before.model_copy(update=after)
    db = await _db(intake_after, "intake")
    try:
        assert (await db.fetchval("SELECT reporter_phone_token FROM reports")).startswith("k1:")
        assert await intake_privacy.rekey(db, settings=intake_after) == 1
        assert await intake_privacy.rekey(db, settings=intake_after) == 0  # nothing left on the old key
        token = await db.fetchval("SELECT reporter_phone_token FROM reports")
    finally:
        await db.close()
    assert token.startswith("k2:") and PhoneKeys(current_id="k2", keys={"k2": NEW_KEY}).decrypt(token) == "13912345678"

    notify_before = make_settings("notify", **before)
    await ensure_topics(notify_before)
    case_id = uuid4()
    contact = ReporterContactGiven(
        report_id=uuid4(), case_id=case_id, phone_encrypted=notify_before.phone_keys().encrypt("13800001111")
    )
    db = await _db(notify_before, "notify")
    try:
        await _notify_handles(notify_before, db, contact)
        await db.execute(
            "INSERT INTO notifications (notification_id, source_event_id, case_id, channel, target, template, body) "
            "VALUES ($1, $2, $3, 'sms', $4, 'case.update', '{}')",
            uuid4(),
            uuid4(),
            case_id,
            notify_before.phone_keys().encrypt("13800001111"),
        )
        notify_after = notify_before.model_copy(update=after)
        assert await notify_privacy.rekey(db, settings=notify_after) == 2
        phone = await db.fetchval("SELECT phone FROM reporters")
        target = await db.fetchval("SELECT target FROM notifications")
    finally:
        await db.close()
    only_new = PhoneKeys(current_id="k2", keys={"k2": NEW_KEY})
    assert only_new.decrypt(phone) == only_new.decrypt(target) == "13800001111"


async def _notify_handles(settings, db, payload) -> None:
    handlers = make_handlers(
        settings=settings,
        directory=load_directory(settings.directory_path),
        sla_policy=load_sla_policy(settings.sla_policy_path),
    )
    event = new_event(payload, producer="intake", jurisdiction_code="330727", key=str(payload.case_id))
    async with db.transaction():
        await handlers[event.type](db, event)


async def test_notify_forgets_contacts_and_finished_targets_after_their_retention(make_settings):
    settings = make_settings("notify", retention_days_phones=30, retention_days_openids=30)
    await ensure_topics(settings)
    keys = settings.phone_keys()
    old_phone, old_openid, recent = uuid4(), uuid4(), uuid4()
    db = await _db(settings, "notify")
    try:
        await _notify_handles(
            settings,
            db,
            ReporterContactGiven(report_id=uuid4(), case_id=old_phone, phone_encrypted=keys.encrypt("13800002222")),
        )
        await _notify_handles(settings, db, ReporterContactGiven(report_id=uuid4(), case_id=old_openid, openid="o-old"))
        await _notify_handles(
            settings,
            db,
            ReporterContactGiven(report_id=uuid4(), case_id=recent, phone_encrypted=keys.encrypt("13800003333")),
        )
        rows = [
            (old_phone, "sms", keys.encrypt("13800002222"), "sent"),
            (old_openid, "wechat_template", "o-old", "failed"),
            (old_phone, "sms", keys.encrypt("13800002222"), "pending"),  # not finished: still needed
            (old_phone, "wecom_robot", "robot-key-1", "sent"),  # a department's robot: not a reporter
        ]
        for case_id, channel, target, status in rows:
            await db.execute(
                "INSERT INTO notifications (notification_id, source_event_id, case_id, channel, target, template, "
                "body, status, created_at) VALUES ($1, $2, $3, $4, $5, 't', '{}', $6, now() - interval '40 days')",
                uuid4(),
                uuid4(),
                case_id,
                channel,
                target,
                status,
            )
        await db.execute("UPDATE reporters SET created_at = now() - interval '40 days' WHERE case_id <> $1", recent)
        done = await notify_privacy.anonymise_once(db, settings=settings, now=utcnow())
        reporters = {r["case_id"] for r in await db.fetch("SELECT case_id FROM reporters")}
        targets = {(r["channel"], r["status"]): r["target"] for r in await db.fetch("SELECT * FROM notifications")}
    finally:
        await db.close()
    assert done == {"phones": 1, "openids": 1} and reporters == {recent}
    assert targets[("sms", "sent")].startswith("forgotten:") and targets[("wechat_template", "failed")].startswith(
        "forgotten:"
    )
    assert targets[("sms", "pending")].startswith("k1:") and targets[("wecom_robot", "sent")] == "robot-key-1"


def test_the_privacy_commands_run_against_the_services_database(make_settings, monkeypatch, capsys):
    settings = make_settings("intake")
    asyncio.run(_migrate(settings))
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", settings.database_url)
    intake_privacy.main(["anonymise"])
    assert capsys.readouterr().out.strip() == "phones: 0, openids: 0, locations: 0"
    intake_privacy.main(["rekey"])
    assert capsys.readouterr().out.strip() == "rekeyed: 0"
    notify_privacy.main(["anonymise"])
    assert capsys.readouterr().out.strip() == "phones: 0, openids: 0"
    notify_privacy.main(["rekey"])
    assert capsys.readouterr().out.strip() == "rekeyed: 0"


async def _migrate(settings) -> None:
    from pathlib import Path

    from shared.db import apply_migrations, create_pool

    for service in ("intake", "notify"):
        pool = await create_pool(settings.model_copy(update={"service_name": service}))
        try:
            await apply_migrations(pool, schema=service, service_dir=Path("services") / service)
        finally:
            await pool.close()
