"""Intake with triage, location, duplicates, the public query, rate limits, corrections and WeChat
messages, against real PostgreSQL and Kafka."""

import asyncio
import json
from datetime import timedelta
from uuid import uuid4

import asyncpg
import pytest

from services.intake.app import create_app
from services.intake.retrain import main as retrain_main
from services.intake.retrain import run as retrain
from shared.auth import Actor, issue_token
from shared.events import CaseTransitioned, MessageReceived, TriageCorrected, new_event, utcnow
from shared.geo import wgs84_to_gcj02
from shared.phones import phone_from_token
from shared.topics import CASES, MESSAGES, REPORTER_CONTACTS, REPORTS
from tests.support import bearer, eventually, publish, read_topic, running

HERE = (29.0812, 120.0431)  # WGS-84, inside the demo county


async def _fetch(settings, sql, *args):
    db = await asyncpg.connect(settings.database_url)
    try:
        return await db.fetch(sql, *args)
    finally:
        await db.close()


async def test_report_without_category_is_triaged_located_and_published(make_settings, county):
    settings = make_settings("intake")
    async with running(create_app(settings)) as client:
        r = await client.post(
            "/api/v1/reports",
            json={
                "description": "南门菜场后面的井盖不见了，晚上黑乎乎的，差点有人掉下去",
                "lat": HERE[0],
                "lng": HERE[1],
                "reporter_phone": "13912345678",
            },
        )
        assert r.status_code == 201, r.text
        answer = r.json()
        grid = county.find_grid(*HERE)
        assert answer["category"] == "manhole" and answer["priority"] == "urgent"
        assert (answer["grid_code"], answer["village_code"], answer["town_code"]) == (
            grid.grid_code,
            grid.village_code,
            grid.town_code,
        )
        assert answer["case_no"] and answer["attached_to_case"] is False and "已受理" in answer["message"]
        [event] = await read_topic(settings, REPORTS.name, until=lambda ms: len(ms) >= 1)
        payload = event["payload"]
        assert (event["type"], event["schema_version"]) == ("report.submitted", 2)
        assert payload["category"] == "manhole" and payload["category_source"] == "triage"
        assert payload["priority"] == "urgent" and 0 < payload["confidence"] <= 1
        # The model that judged it travels with the report (an optional field older consumers ignore).
        version = payload["triage_model_version"]
        assert version and len(version) == 12
        # Intake placed it once: the event carries the place, and the envelope names its division.
        assert payload["place"] == {
            "division_code": grid.village_code,
            "town_code": grid.town_code,
            "village_code": grid.village_code,
            "grid_code": grid.grid_code,
            "lat": HERE[0],
            "lng": HERE[1],
            "datum": "wgs84",
        }
        assert event["jurisdiction_code"] == grid.village_code and payload["case_no"] == answer["case_no"]
        # Other departments read the report topic: nothing on it reaches the reporter. Notify alone
        # gets the phone (encrypted) on the private contacts topic.
        assert payload["reporter_phone_encrypted"] is None and payload["reporter_phone_masked"] == "139****5678"
        [given] = await read_topic(settings, REPORTER_CONTACTS.name, until=lambda ms: len(ms) >= 1)
        assert given["type"] == "reporter.contact_given" and given["key"] == payload["case_id"]
        assert given["payload"]["report_id"] == payload["report_id"] and given["payload"]["openid"] is None
        assert phone_from_token(given["payload"]["phone_encrypted"], settings.phone_keys()) == "13912345678"
        view = (
            await client.get(f"/api/v1/reports/{answer['report_id']}", headers=bearer(settings, "dispatcher"))
        ).json()
        assert view["reporter_phone"] == "139****5678" and view["needs_manual_triage"] is False
        assert view["triage_model_version"] == version
    [row] = await _fetch(settings, "SELECT * FROM intake.reports")
    assert row["reporter_phone_token"].startswith(f"{settings.phone_encryption_key_id}:")
    assert "13912345678" not in row["reporter_phone_token"]
    assert row["triage_model_version"] == version
    stored = json.loads(row["triage"])
    assert stored["category"] == "manhole" and stored["model_version"] == version
    assert stored["top_terms"] and stored["urgent_cues"] and stored["urgency"] >= 0.5


async def test_gcj02_is_converted_and_outside_points_are_refused(make_settings, county):
    settings = make_settings("intake")
    gcj = wgs84_to_gcj02(*HERE)
    async with running(create_app(settings)) as client:
        r = await client.post(
            "/api/v1/reports",
            json={
                "description": "路灯坏了三盏",
                "category": "signboard_lighting",
                "lat": gcj[0],
                "lng": gcj[1],
                "coord_system": "gcj02",
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["grid_code"] == county.find_grid(*HERE).grid_code
        stored = (
            await client.get(f"/api/v1/reports/{r.json()['report_id']}", headers=bearer(settings, "dispatcher"))
        ).json()
        assert stored["lat"] == pytest.approx(HERE[0], abs=1e-7) and stored["lng"] == pytest.approx(HERE[1], abs=1e-7)

        outside = await client.post(
            "/api/v1/reports", json={"description": "西湖边上有垃圾", "lat": 30.25, "lng": 120.15}
        )
        assert outside.status_code == 422
        assert outside.headers["content-type"] == "application/problem+json"
        assert outside.json()["type"].endswith("outside-county") and "辖区" in outside.json()["detail"]
        bad_datum = await client.post(
            "/api/v1/reports", json={"description": "路灯坏了", "lat": HERE[0], "lng": HERE[1], "coord_system": "bd09"}
        )
        assert bad_datum.status_code == 422 and "coord_system" in [e["field"] for e in bad_datum.json()["errors"]]
        nowhere = await client.post("/api/v1/reports", json={"description": "路灯坏了"})
        assert nowhere.status_code == 422
        located = await client.get("/api/v1/locate", params={"lat": HERE[0], "lng": HERE[1]})
        assert located.json()["grid_code"] == county.find_grid(*HERE).grid_code and located.json()["town_name"]
    rows = await _fetch(settings, "SELECT * FROM intake.reports")
    assert len(rows) == 1 and rows[0]["coord_system"] == "gcj02" and rows[0]["input_lat"] == pytest.approx(gcj[0])


async def test_address_only_report_is_flagged_for_the_grid_worker(make_settings):
    settings = make_settings("intake")
    async with running(create_app(settings)) as client:
        r = await client.post(
            "/api/v1/reports",
            json={"description": "老街口的路灯一到晚上就不亮", "address": "城关街道老街与人民路交叉口"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["needs_locating"] is True and r.json()["grid_code"] is None
        assert "网格员将根据您填写的地址核实位置" in r.json()["message"]
        [event] = await read_topic(settings, REPORTS.name, until=lambda ms: len(ms) >= 1)
        assert event["payload"]["needs_locating"] is True and event["payload"]["address"].startswith("城关街道")
        # Not placed yet: it is in the county this intake serves, until a grid worker locates it.
        assert event["payload"]["place"] == {
            "division_code": "330727",
            "town_code": None,
            "village_code": None,
            "grid_code": None,
            "lat": None,
            "lng": None,
            "datum": "wgs84",
        }
        assert event["jurisdiction_code"] == "330727"


async def test_repeat_reports_join_the_open_case_until_it_is_closed(make_settings, county):
    settings = make_settings("intake", intake_duplicate_distance_m=60)
    body = {
        "description": "幸福路口的井盖翻起来了",
        "category": "manhole",
        "lat": HERE[0],
        "lng": HERE[1],
        "reporter_phone": "13800000001",
    }
    async with running(create_app(settings)) as client:
        first = (await client.post("/api/v1/reports", json=body)).json()
        # ~30 m away, another reporter, another channel: the same problem.
        second = (
            await client.post(
                "/api/v1/reports",
                json={
                    **body,
                    "lat": HERE[0] + 0.00027,
                    "reporter_phone": "13800000002",
                    "channel": "h5",
                    "description": "井盖还是翻着的，刚才又有人差点踩空",
                },
            )
        ).json()
        assert second["attached_to_case"] is True and second["status"] == "attached"
        assert (second["case_id"], second["case_no"]) == (first["case_id"], first["case_no"])
        assert first["case_no"] in second["message"] and "已并入" in second["message"]
        # Farther than the distance, or another category: a case of its own.
        far = (await client.post("/api/v1/reports", json={**body, "lat": HERE[0] + 0.002})).json()
        other = (
            await client.post("/api/v1/reports", json={**body, "category": "road_damage", "description": "路面有个坑"})
        ).json()
        assert far["case_id"] != first["case_id"] and other["case_id"] != first["case_id"]

        events = await read_topic(settings, REPORTS.name, until=lambda ms: len(ms) >= 4)
        assert sorted(e["type"] for e in events) == ["report.attached"] + ["report.submitted"] * 3
        attached = next(e for e in events if e["type"] == "report.attached")
        assert attached["key"] == first["case_id"] and 20 < attached["payload"]["distance_m"] < 40
        assert attached["jurisdiction_code"] == county.find_grid(HERE[0] + 0.00027, HERE[1]).village_code
        # The second reporter follows the case too: notify gets their contact for the case they joined.
        contacts = await read_topic(settings, REPORTER_CONTACTS.name, until=lambda ms: len(ms) >= 4)
        joined = [c["payload"] for c in contacts if c["payload"]["case_id"] == first["case_id"]]
        assert [(c["report_id"], c["attached"]) for c in joined] == [
            (first["report_id"], False),
            (second["report_id"], True),
        ]
        assert phone_from_token(joined[1]["phone_encrypted"], settings.phone_keys()) == "13800000002"

        # The case is closed (dispatch says so on the case topic): the next report opens a new case.
        closed = CaseTransitioned(
            case_id=first["case_id"],
            report_id=first["report_id"],
            status="closed",
            category="manhole",
            category_name="井盖",
            priority="urgent",
            department_code="zhujian",
            department_name="住建局",
            description=body["description"],
            action="close",
            from_status="verified",
            actor="dispatcher:1",
            at=utcnow(),
        )
        await publish(
            settings,
            CASES.name,
            new_event(
                closed, producer="dispatch", jurisdiction_code="330727", key=first["case_id"], event_type="case.closed"
            ).to_bytes(),
        )

        async def status_closed():
            return (
                await client.get(f"/api/v1/reports/{first['report_id']}", headers=bearer(settings, "dispatcher"))
            ).json()["status"] == "closed"

        await eventually(status_closed)
        again = (await client.post("/api/v1/reports", json=body)).json()
        assert again["attached_to_case"] is False and again["case_id"] != first["case_id"]


async def test_public_query_shows_only_the_reporters_own_reports(make_settings):
    settings = make_settings("intake")
    body = {
        "description": "小区门口垃圾桶满了没人清",
        "category": "garbage_collection",
        "lat": HERE[0],
        "lng": HERE[1],
        "reporter_phone": "13800000001",
    }
    async with running(create_app(settings)) as client:
        first = (await client.post("/api/v1/reports", json=body)).json()
        second = (
            await client.post(
                "/api/v1/reports", json={**body, "reporter_phone": "13800000002", "description": "垃圾桶还是满的"}
            )
        ).json()
        assert second["case_no"] == first["case_no"]

        mine = await client.post("/api/v1/query", json={"case_no": first["case_no"], "phone": "13800000002"})
        assert mine.status_code == 200, mine.text
        data = mine.json()
        assert data["status_text"] == "已受理" and data["category_name"].startswith("垃圾清运")
        assert [r["description"] for r in data["reports"]] == ["垃圾桶还是满的"]
        assert data["reports"][0]["reporter_phone"] == "138****0002"
        assert "13800000001" not in mine.text and "138****0001" not in mine.text

        stranger = await client.post("/api/v1/query", json={"case_no": first["case_no"], "phone": "13900000009"})
        missing = await client.post("/api/v1/query", json={"case_no": "20000101-999999", "phone": "13800000001"})
        assert stranger.status_code == missing.status_code == 404
        assert stranger.json()["detail"] == missing.json()["detail"]
        assert stranger.headers["content-type"] == "application/problem+json"
        bad = await client.post("/api/v1/query", json={"case_no": first["case_no"], "phone": "110"})
        assert bad.status_code == 422


async def test_rate_limits_per_ip_and_per_phone(make_settings):
    settings = make_settings("intake", intake_rate_limit_ip_per_minute=3, intake_rate_limit_phone_per_hour=2)
    body = {"description": "路灯不亮", "category": "signboard_lighting", "lat": HERE[0], "lng": HERE[1]}
    async with running(create_app(settings)) as client:
        phone = {**body, "reporter_phone": "13700000000"}
        assert [(await client.post("/api/v1/reports", json=phone)).status_code for _ in range(2)] == [201, 201]
        over_phone = await client.post("/api/v1/reports", json=phone)
        assert over_phone.status_code == 429 and over_phone.json()["type"].endswith("rate-limited")
        assert over_phone.headers["content-type"] == "application/problem+json"
        over_ip = await client.post("/api/v1/reports", json=body)
        assert over_ip.status_code == 429  # the fourth request from this IP within the minute
    rows = await _fetch(settings, "SELECT count(*) AS n FROM intake.reports")
    assert rows[0]["n"] == 2


async def test_triage_endpoint_and_corrections_by_http_and_by_event(make_settings):
    settings = make_settings("intake", triage_corrections_poll_s=0.1)
    async with running(create_app(settings)) as client:
        r = await client.post("/api/v1/triage", json={"text": "楼道里一股很冲的煤气味"})
        assert r.status_code == 200
        assert {k: r.json()[k] for k in ("category", "department", "priority")} == {
            "category": "gas_leak",
            "department": "gas",
            "priority": "urgent",
        }
        assert 0 < r.json()["confidence"] <= 1
        # The dispatcher sees why: the terms that decided, the danger cues, the model.
        assert any("煤气" in t for t in r.json()["top_terms"]) and r.json()["urgent_cues"]
        assert r.json()["model_version"] and r.json()["urgency"] >= 0.5
        calm = (await client.post("/api/v1/triage", json={"text": "吓死人了，楼下烧烤油烟好大"})).json()
        assert (calm["category"], calm["priority"], calm["urgent_cues"]) == ("cooking_fume", "normal", [])
        assert (await client.post("/api/v1/triage", json={"text": ""})).status_code == 422

        slang = "三岔口那几只猫眼又眨巴了"
        before = (await client.post("/api/v1/triage", json={"text": slang})).json()
        zhang = Actor(subject="zhang", role="dispatcher", jurisdiction_code="330727")
        dispatcher = {"authorization": "Bearer " + issue_token(secret=settings.auth_jwt_secret, actor=zhang)}
        handler = {
            "authorization": "Bearer "
            + issue_token(
                secret=settings.auth_jwt_secret,
                actor=Actor(subject="wu", role="handler", jurisdiction_code="330727", department_code="zhujian"),
            )
        }
        correction = {"text": "猫眼眨巴了", "category": "signboard_lighting"}
        assert (await client.post("/api/v1/triage/corrections", json=correction)).status_code == 401
        assert (await client.post("/api/v1/triage/corrections", json=correction, headers=handler)).status_code == 403
        for text in ("猫眼眨巴了好几只", "北街猫眼又眨巴了"):
            c = await client.post(
                "/api/v1/triage/corrections", headers=dispatcher, json={"text": text, "category": "signboard_lighting"}
            )
            assert c.status_code == 201, c.text
        # A correction from another system arrives as an event (dispatch publishes it).
        event = new_event(
            TriageCorrected(
                text="猫眼全眨巴了没人修",
                category="signboard_lighting",
                corrected_by="dispatcher:li",
                corrected_at=utcnow(),
            ),
            producer="dispatch",
            jurisdiction_code="330727",
            key="k",
        )
        await publish(settings, REPORTS.name, event.to_bytes())

        async def learned_three():
            return (await _fetch(settings, "SELECT count(*) AS n FROM intake.triage_corrections"))[0]["n"] == 3

        await eventually(learned_three)

        async def learned():
            now = (await client.post("/api/v1/triage", json={"text": slang})).json()
            return now if now["category"] == "signboard_lighting" and not now["needs_manual_triage"] else None

        now = await eventually(learned)
        assert now["confidence"] > before["confidence"]
        unknown = await client.post(
            "/api/v1/triage/corrections", headers=dispatcher, json={"text": "x", "category": "ufo"}
        )
        assert unknown.status_code == 422 and unknown.json()["type"].endswith("unknown-category")
    # A restarted intake learns the stored corrections before its first request.
    async with running(create_app(settings)) as client:
        again = (await client.post("/api/v1/triage", json={"text": slang})).json()
        assert again["category"] == "signboard_lighting"


async def test_wechat_messages_from_one_sender_become_one_report(make_settings, county):
    settings = make_settings("intake", intake_message_window_s=1.0, intake_message_tick_s=0.1)
    gcj = wgs84_to_gcj02(*HERE)
    # The app first (its triage model may train for seconds): the messages' window starts after.
    app = create_app(settings)
    t0 = utcnow()

    def message(sender, msg_type, at, source="wecom_app", **fields):
        return new_event(
            MessageReceived(
                message_id=uuid4(),
                source=source,
                msg_id=str(uuid4()),
                from_user=sender,
                to_user="grid-app",
                msg_type=msg_type,
                sent_at=at,
                **fields,
            ),
            producer="notify",
            jurisdiction_code="330727",
            key=sender,
        ).to_bytes()

    grid = county.grids[county.find_grid(*HERE).grid_code]

    async with running(app):
        await publish(
            settings,
            MESSAGES.name,
            message("wang", "text", t0, content="东门菜场口燃气管子在漏气，味道很大"),
            message("wang", "image", t0 + timedelta(seconds=2), media_id="MEDIA_1"),
            message(
                "wang",
                "location",
                t0 + timedelta(seconds=3),
                lat=gcj[0],
                lng=gcj[1],
                datum="gcj02",
                label="城关街道东门菜场",
            ),
            message("li", "text", t0, content="谢谢网格员"),
            # In the grid's own residents' group (a WeCom group robot): the grid is known.
            message(
                "zhao",
                "text",
                t0,
                source="wecom_aibot",
                group_id=grid.group.group_id,
                content="3号楼楼道里堆满了纸箱，还有人在里面抽烟",
            ),
        )

        async def three_reports():
            rows = await _fetch(settings, "SELECT * FROM intake.reports ORDER BY description")
            return rows if len(rows) == 3 else None

        rows = await eventually(three_reports)
    wang = next(r for r in rows if r["reporter_ref"] == "wecom_app:wang")
    assert wang["description"] == "东门菜场口燃气管子在漏气，味道很大"
    assert wang["category"] == "gas_leak" and wang["priority"] == "urgent"
    assert wang["grid_code"] == county.find_grid(*HERE).grid_code and list(wang["external_media"]) == ["MEDIA_1"]
    assert wang["lat"] == pytest.approx(HERE[0], abs=1e-7) and wang["channel"] == "wechat_group"
    li = next(r for r in rows if r["reporter_ref"] == "wecom_app:li")
    assert li["needs_locating"] and li["needs_manual_triage"]
    zhao = next(r for r in rows if r["reporter_ref"] == "wecom_aibot:zhao")
    assert zhao["grid_code"] == grid.code and zhao["needs_locating"] and zhao["lat"] is None
    assert zhao["category"] == "fire_hazard"
    events = await read_topic(settings, REPORTS.name, until=lambda ms: len(ms) >= 3)
    assert {e["payload"]["reporter_wecom_userid"] for e in events} == {None}  # other departments read these
    contacts = await read_topic(settings, REPORTER_CONTACTS.name, until=lambda ms: len(ms) >= 3)
    assert {(c["payload"]["case_id"], c["payload"]["wecom_userid"]) for c in contacts} == {
        (str(r["case_id"]), r["reporter_ref"].split(":")[1]) for r in rows
    }


async def test_h5_pages_are_served_in_chinese(make_settings):
    settings = make_settings("intake")
    async with running(create_app(settings)) as client:
        page = await client.get("/h5/")
        assert page.status_code == 200 and 'lang="zh-CN"' in page.text
        assert 'capture="environment"' in page.text and 'accept="image/*"' in page.text
        assert "__CONFIG__" not in page.text and '"idempotency_key": "h5-' in page.text
        query = await client.get("/h5/query")
        assert "我要查询" in query.text and 'type="tel"' in query.text and "获取验证码" in query.text
        js = await client.get("/h5/static/report.js")
        assert "navigator.geolocation" in js.text and "/api/v1/reports" in js.text
        assert (await client.get("/h5/static/../app.py")).status_code == 404


async def test_query_by_phone_with_a_one_time_code_sent_through_notify(make_settings):
    settings = make_settings("intake")
    body = {
        "description": "小区门口垃圾桶满了没人清",
        "category": "garbage_collection",
        "lat": HERE[0],
        "lng": HERE[1],
        "reporter_phone": "13800000001",
    }
    async with running(create_app(settings)) as client:
        mine = (await client.post("/api/v1/reports", json=body)).json()
        theirs = (
            await client.post(
                "/api/v1/reports", json={**body, "reporter_phone": "13800000002", "description": "垃圾桶还是满的"}
            )
        ).json()
        assert theirs["case_no"] == mine["case_no"]

        sent = await client.post("/api/v1/query/codes", json={"phone": "13800000001"})
        never_reported = await client.post("/api/v1/query/codes", json={"phone": "13900000000"})
        assert sent.status_code == never_reported.status_code == 202
        assert sent.json() == never_reported.json()

        events = await read_topic(
            settings, REPORTER_CONTACTS.name, until=lambda ms: any(m["type"] == "query.code_requested" for m in ms)
        )
        reports = await read_topic(settings, REPORTS.name, until=lambda ms: len(ms) >= 2)
        assert {m["type"] for m in reports} == {"report.submitted", "report.attached"}  # no codes, no phones
        assert all(m["payload"].get("reporter_phone_encrypted") is None for m in reports)
        [requested] = [m["payload"] for m in events if m["type"] == "query.code_requested"]
        assert requested["phone_masked"] == "138****0001" and "13800000001" not in json.dumps(requested)
        phone = phone_from_token(requested["phone_encrypted"], settings.phone_keys())
        assert phone == "13800000001"
        code = requested["code"]
        wrong = "000000" if code != "000000" else "111111"

        denied = await client.post("/api/v1/query/by-phone", json={"phone": "13800000001", "code": wrong})
        assert denied.status_code == 403 and denied.headers["content-type"] == "application/problem+json"
        answer = await client.post("/api/v1/query/by-phone", json={"phone": "13800000001", "code": code})
        assert answer.status_code == 200, answer.text
        [case] = answer.json()["cases"]
        assert case["case_no"] == mine["case_no"] and case["status_text"] == "已受理"
        assert [r["description"] for r in case["reports"]] == ["小区门口垃圾桶满了没人清"]
        assert "垃圾桶还是满的" not in answer.text and "138****0002" not in answer.text
        # One use only.
        again = await client.post("/api/v1/query/by-phone", json={"phone": "13800000001", "code": code})
        assert again.status_code == 403


async def test_grid_worker_places_an_address_only_report(make_settings, county):
    settings = make_settings("intake")
    grid = county.find_grid(*HERE)
    worker = bearer(settings, "grid_worker", jurisdiction_code=grid.village_code)
    elsewhere = next(g for g in county.grids.values() if g.village_code != grid.village_code)
    stranger = bearer(settings, "grid_worker", jurisdiction_code=elsewhere.village_code)
    async with running(create_app(settings)) as client:
        report = (
            await client.post(
                "/api/v1/reports",
                json={"description": "老街口的路灯一到晚上就不亮", "address": "城关街道老街与人民路交叉口"},
            )
        ).json()
        assert (await client.get("/api/v1/reports-to-locate")).status_code == 401
        waiting = (await client.get("/api/v1/reports-to-locate", headers=worker)).json()["reports"]
        assert [r["report_id"] for r in waiting] == [report["report_id"]]

        gcj = wgs84_to_gcj02(*HERE)
        where = {"lat": gcj[0], "lng": gcj[1], "coord_system": "gcj02"}
        refused = await client.post(f"/api/v1/reports/{report['report_id']}/location", json=where, headers=stranger)
        assert refused.status_code == 403  # names where the point fell and what to do next
        assert county.grids[grid.grid_code].name in refused.json()["detail"] and "重新点选" in refused.json()["detail"]
        placed = await client.post(f"/api/v1/reports/{report['report_id']}/location", json=where, headers=worker)
        assert placed.status_code == 200, placed.text
        assert placed.json()["grid_code"] == grid.grid_code and placed.json()["needs_locating"] is False
        assert placed.json()["lat"] == pytest.approx(HERE[0], abs=1e-7)
        assert (await client.get("/api/v1/reports-to-locate", headers=worker)).json()["reports"] == []
        # Placed now: the grid worker may not move it again (a correction is the centre's), not even here.
        moved = await client.post(f"/api/v1/reports/{report['report_id']}/location", json=where, headers=worker)
        assert moved.status_code == 403 and "调度员" in moved.json()["detail"]
        dispatcher = bearer(settings, "dispatcher")
        corrected = await client.post(f"/api/v1/reports/{report['report_id']}/location", json=where, headers=dispatcher)
        assert corrected.status_code == 200
        outside = await client.post(
            f"/api/v1/reports/{report['report_id']}/location", headers=dispatcher, json={"lat": 30.25, "lng": 120.15}
        )
        assert outside.status_code == 422 and outside.json()["type"].endswith("outside-county")

        events = await read_topic(
            settings, REPORTS.name, until=lambda ms: sum(m["type"] == "report.located" for m in ms) >= 2
        )
        located, corrected = [m for m in events if m["type"] == "report.located"]  # placed, then corrected
        assert corrected["payload"]["located_by"].startswith("dispatcher:")
        assert located["key"] == report["case_id"] and located["payload"]["grid_code"] == grid.grid_code
        assert located["jurisdiction_code"] == grid.village_code  # where the report now is
        assert located["payload"]["located_by"].startswith("grid_worker:")


async def test_an_answer_to_the_review_question_is_a_rating_not_a_new_report(make_settings):
    settings = make_settings("intake", intake_message_window_s=0.5, intake_message_tick_s=0.1)
    t0 = utcnow()

    def message(sender, content, at):
        return new_event(
            MessageReceived(
                message_id=uuid4(),
                source="wecom_app",
                msg_id=str(uuid4()),
                from_user=sender,
                to_user="grid-app",
                msg_type="text",
                sent_at=at,
                content=content,
            ),
            producer="notify",
            jurisdiction_code="330727",
            key=sender,
        ).to_bytes()

    async with running(create_app(settings)):
        await publish(settings, MESSAGES.name, message("wang", "东门菜场口燃气管子在漏气，味道很大", t0))

        async def reported():
            rows = await _fetch(settings, "SELECT * FROM intake.reports WHERE reporter_ref = 'wecom_app:wang'")
            return rows[0] if rows else None

        report = await eventually(reported)
        # The case is 办结 and waits for the reporter's 回访 answer.
        resolved = CaseTransitioned(
            case_id=report["case_id"],
            report_id=report["report_id"],
            status="resolved",
            category="gas_leak",
            category_name="燃气泄漏",
            priority="urgent",
            department_code="gas",
            department_name="燃气公司",
            description=report["description"],
            action="resolve",
            from_status="in_progress",
            actor="handler:gas",
            at=utcnow(),
        )
        await publish(
            settings,
            CASES.name,
            new_event(resolved, producer="dispatch", jurisdiction_code="330727", key=str(report["case_id"])).to_bytes(),
        )

        async def waiting():
            rows = await _fetch(settings, "SELECT status FROM intake.reports WHERE report_id = $1", report["report_id"])
            return rows[0]["status"] == "resolved"

        await eventually(waiting)
        later = utcnow()
        # wang answers 3 (不满意); li, whose case waits for nothing, sends "1": an ordinary message.
        await publish(settings, MESSAGES.name, message("wang", "3", later), message("li", "1", later))
        events = await read_topic(
            settings, REPORTS.name, until=lambda ms: any(m["type"] == "reporter.rated" for m in ms)
        )
        [answer] = [m for m in events if m["type"] == "reporter.rated"]
        assert answer["key"] == str(report["case_id"])
        assert (answer["payload"]["rating"], answer["payload"]["channel"]) == ("dissatisfied", "wechat_group")

        async def li_reported():
            rows = await _fetch(settings, "SELECT * FROM intake.reports WHERE reporter_ref = 'wecom_app:li'")
            return rows or None

        assert len(await eventually(li_reported)) == 1
        wangs = await _fetch(settings, "SELECT * FROM intake.reports WHERE reporter_ref = 'wecom_app:wang'")
        assert len(wangs) == 1  # the answer did not become a report


async def test_retraining_from_corrections_replaces_the_model_only_if_not_worse(make_settings, monkeypatch, capsys):
    settings = make_settings("intake", triage_corrections_poll_s=0.1)
    slang = "三岔口那几只猫眼又眨巴了"
    # Nothing to learn yet: the job says so and records nothing.
    assert await retrain(settings) is None
    async with running(create_app(settings)) as client:
        shipped = (await client.post("/api/v1/triage", json={"text": slang})).json()["model_version"]
        dispatcher = bearer(settings, "dispatcher")
        for text in ("猫眼眨巴了好几只", "北街猫眼又眨巴了", "猫眼全眨巴了没人修"):
            c = await client.post(
                "/api/v1/triage/corrections", headers=dispatcher, json={"text": text, "category": "signboard_lighting"}
            )
            assert c.status_code == 201, c.text

        decision = await retrain(settings)
        # Through the newest stored correction (ids may skip: our own consumer's duplicate insert of
        # the published correction takes a sequence value and stores nothing).
        [stored] = await _fetch(settings, "SELECT count(*) AS n, max(id) AS last FROM intake.triage_corrections")
        assert stored["n"] == 3 and decision is not None and decision.corrections_through == stored["last"]
        # The corrections do not make the model worse on the held-out voice: it is accepted.
        assert decision.accepted and "not worse" in decision.reason, decision
        assert decision.version != shipped
        assert decision.candidate.category_accuracy >= decision.current.category_accuracy

        async def switched():
            now = (await client.post("/api/v1/triage", json={"text": slang})).json()
            return now if now["model_version"] == decision.version else None

        now = await eventually(switched, timeout=60)
        # The model learned the slang itself, not only the correction memory.
        assert now["category"] == "signboard_lighting" and "调度员纠正" not in now["top_terms"]
        report = await client.post(
            "/api/v1/reports", json={"description": "路口的猫眼眨巴了三只", "lat": HERE[0], "lng": HERE[1]}
        )
        assert report.status_code == 201, report.text
    [model] = await _fetch(settings, "SELECT * FROM intake.triage_models")
    assert model["accepted"] and model["version"] == decision.version
    assert model["corrections_through"] == decision.corrections_through
    assert json.loads(model["candidate_scores"])["n"] == json.loads(model["current_scores"])["n"] > 0
    [row] = await _fetch(settings, "SELECT triage_model_version FROM intake.reports")
    assert row["triage_model_version"] == decision.version
    # Run again with nothing new: nothing to do (the command line says so).
    monkeypatch.setattr("services.intake.retrain.IntakeSettings", lambda **_: settings)
    await asyncio.to_thread(retrain_main)  # the command runs its own event loop
    assert "nothing to do" in capsys.readouterr().out
    # A restarted intake starts with the accepted model.
    async with running(create_app(settings)) as client:
        again = (await client.post("/api/v1/triage", json={"text": slang})).json()
        assert again["model_version"] == decision.version


async def test_the_reporter_confirms_the_resolution_with_one_tap_and_nobody_else_can(make_settings):
    settings = make_settings("intake")
    async with running(create_app(settings)) as client:
        body = {
            "description": "南门桥头的路灯一直不亮",
            "category": "signboard_lighting",
            "lat": HERE[0],
            "lng": HERE[1],
        }
        mine = (await client.post("/api/v1/reports", json={**body, "reporter_phone": "13911112222"})).json()
        theirs = (
            await client.post(
                "/api/v1/reports",
                json={
                    **body,
                    "category": "garbage_collection",
                    "description": "垃圾桶满了",
                    "reporter_phone": "13933334444",
                },
            )
        ).json()
        contacts = await read_topic(settings, REPORTER_CONTACTS.name, until=lambda ms: len(ms) >= 2)
        tokens = {c["payload"]["report_id"]: c["payload"]["confirm_token"] for c in contacts}
        token, other_token = tokens[mine["report_id"]], tokens[theirs["report_id"]]
        # The link notify sends opens the page; the page posts the tap.
        page = await client.get("/h5/confirm", params={"r": mine["report_id"], "t": token})
        assert page.status_code == 200 and "办结确认" in page.text

        async def confirm(report_id, secret, expect, **extra):
            r = await client.post("/api/v1/confirmations", json={"report_id": report_id, "token": secret} | extra)
            assert r.status_code == expect, r.text
            if expect >= 400:
                assert r.headers["content-type"].startswith("application/problem+json")
            return r.json()

        # Not yet 办结: nothing to confirm.
        early = await confirm(mine["report_id"], token, 409)
        assert early["type"].endswith("not-awaiting-confirmation") and "不是待确认的办结" in early["detail"]
        resolved = CaseTransitioned(
            case_id=mine["case_id"],
            report_id=mine["report_id"],
            status="resolved",
            category="signboard_lighting",
            category_name="路灯",
            priority="normal",
            department_code="power",
            department_name="供电公司",
            description=body["description"],
            action="resolve",
            from_status="in_progress",
            actor="handler:power",
            at=utcnow(),
        )
        await publish(
            settings,
            CASES.name,
            new_event(resolved, producer="dispatch", jurisdiction_code="330727", key=mine["case_id"]).to_bytes(),
        )

        async def waiting():
            rows = await _fetch(settings, "SELECT status FROM intake.reports WHERE report_id = $1", mine["report_id"])
            return rows[0]["status"] == "resolved"

        await eventually(waiting)
        # Someone else's link, a made-up secret, a report that does not exist: the same refusal.
        for report_id, secret in (
            (mine["report_id"], other_token),
            (mine["report_id"], "x" * 32),
            (str(uuid4()), token),
        ):
            refused = await confirm(report_id, secret, 403)
            assert refused["type"].endswith("not-reporter") and "只有反映人本人可以确认办结" in refused["detail"]
        await asyncio.sleep(0.5)
        assert not [
            m
            for m in await read_topic(settings, REPORTS.name, until=lambda ms: len(ms) >= 2)
            if m["type"] == "reporter.rated"
        ]  # nothing was published for the refusals
        done = await confirm(mine["report_id"], token, 202)
        assert done == {"case_no": mine["case_no"], "message": "感谢确认，问题已解决。"}
        events = await read_topic(
            settings, REPORTS.name, until=lambda ms: any(m["type"] == "reporter.rated" for m in ms)
        )
        [rated] = [m for m in events if m["type"] == "reporter.rated"]
        assert rated["key"] == mine["case_id"]
        assert (rated["payload"]["report_id"], rated["payload"]["rating"]) == (mine["report_id"], "satisfied")
