"""Notify's delivery against real Kafka, PostgreSQL and the fake WeCom/WeChat server: every event
type reaches the right people, each robot stays within its limit across restarts, retryable
errors are retried and permanent ones end as notification.failed plus a dead letter."""

import asyncio
from datetime import timedelta
from uuid import uuid4

import asyncpg
import httpx

from services.notify.app import create_app, load_directory
from services.notify.handlers import make_handlers
from shared.events import (
    CaseTransitioned,
    Event,
    MediaAttached,
    QueryCodeRequested,
    ReporterContactGiven,
    ReporterVerified,
    ReportSubmittedV1,
    SlaBreached,
    SlaWarning,
    new_event,
    utcnow,
)
from shared.phones import phone_token
from shared.sla_policy import load_sla_policy
from shared.topics import CASES, DEAD_LETTERS, MEDIA, NOTIFICATIONS, REPORTER_CONTACTS, SLA, ensure_topics
from tests.support import bearer, case_dispatched, eventually, publish, read_topic, running


def transition(event_type: str, case_id, *, status: str = "dispatched", reason: str | None = None, **detail):
    return new_event(
        CaseTransitioned(
            status=status,
            reason=reason,
            case_id=case_id,
            report_id=uuid4(),
            category="manhole",
            category_name="井盖缺失",
            priority="urgent",
            department_code="zhujian",
            department_name="住房和城乡建设局",
            description="幸福路井盖翻起来了",
            action=event_type.split(".")[1],
            from_status="dispatched",
            actor="user:zj01",
            detail=detail,
            at=utcnow(),
        ),
        producer="test",
        jurisdiction_code="330727",
        key=str(case_id),
        event_type=event_type,
    )


def one_robot_directory(tmp_path, robot_key: str):
    path = tmp_path / "directory.yaml"
    path.write_text(f'departments:\n  zhujian:\n    robot_key: "{robot_key}"\n    mentioned_mobiles: ["13900000301"]\n')
    return path


async def notifications(client, case_id):
    return (await client.get(f"/api/v1/cases/{case_id}/notifications")).json()["notifications"]


def fake_messages(fake_wecom: str, key: str) -> list[dict]:
    return httpx.get(f"{fake_wecom}/_fake/messages", params={"key": key}).json()


async def test_warning_and_breach_reach_the_department_and_the_supervisor(make_settings, fake_wecom):
    settings = make_settings("notify")
    await ensure_topics(settings)
    now, case_id = utcnow(), uuid4()
    timing = dict(
        case_id=case_id,
        stage="acknowledge",
        department_code="zhujian",
        started_at=now - timedelta(minutes=10),
        due_at=now,
    )
    warning = new_event(
        SlaWarning(**timing, reminder=1, fired_at=now - timedelta(minutes=3)),
        producer="test",
        jurisdiction_code="330727",
        key=str(case_id),
    )
    breach = new_event(SlaBreached(**timing), producer="test", jurisdiction_code="330727", key=str(case_id))
    await publish(settings, SLA.name, warning.to_bytes(), breach.to_bytes())
    short = str(case_id)[:8]
    async with running(create_app(settings)) as client:
        client.headers.update(bearer(settings, "dispatcher"))

        async def all_sent():
            rows = await notifications(client, case_id)
            return rows if len(rows) == 3 and all(r["status"] == "sent" for r in rows) else None

        rows = await eventually(all_sent)
        assert {(r["template"], r["recipient"]) for r in rows} == {
            ("sla.warning", "部门群（zhujian）"),
            ("sla.breached", "部门群（zhujian）"),
            ("sla.breached", "督查室群"),
        }
    [reminded] = [
        m
        for m in fake_messages(fake_wecom, "demo-zhujian")
        if short in m["body"]["text"]["content"] and "【催接单】" in m["body"]["text"]["content"]  # 接单's 催办
    ]
    assert "还剩3分钟" in reminded["body"]["text"]["content"]
    [to_supervisor] = [m for m in fake_messages(fake_wecom, "demo-supervisor") if short in m["body"]["text"]["content"]]
    assert "【督办】" in to_supervisor["body"]["text"]["content"]
    assert to_supervisor["body"]["text"]["mentioned_mobile_list"] == ["13900009901", "13900009902"]


async def test_acknowledged_and_resolved_reach_the_reporter_and_the_command_centre(make_settings, fake_wecom):
    settings = make_settings("notify", wechat_base_url=fake_wecom, sms_base_url=fake_wecom)
    await ensure_topics(settings)
    case_id, openid = uuid4(), f"oReporter-{uuid4().hex[:8]}"
    db = await asyncpg.connect(settings.database_url)
    try:  # as the report.submitted handler records it once intake passes the reporter's openid on
        await db.execute(
            "INSERT INTO notify.reporters (case_id, report_id, openid) VALUES ($1, $2, $3)", case_id, uuid4(), openid
        )
    finally:
        await db.close()
    acknowledged = transition("case.acknowledged", case_id)
    resolved = transition("case.resolved", case_id, comparison_url="https://media.example/cmp.jpg")
    attached = [
        new_event(
            MediaAttached(
                media_id=uuid4(),
                case_id=case_id,
                role=role,
                content_type="image/jpeg",
                sha256="0" * 64,
                attached_at=utcnow(),
            ),
            producer="test",
            jurisdiction_code="330727",
            key=str(case_id),
        )
        for role in ("before", "after", "after")
    ]
    await publish(settings, MEDIA.name, *(e.to_bytes() for e in attached))
    async with running(create_app(settings)) as client:
        client.headers.update(bearer(settings, "dispatcher"))

        async def evidence_recorded():
            db = await asyncpg.connect(settings.database_url)
            try:
                return await db.fetchval("SELECT count(*) FROM notify.case_evidence WHERE case_id = $1", case_id) == 3
            finally:
                await db.close()

        await eventually(evidence_recorded)
        await publish(settings, CASES.name, acknowledged.to_bytes(), resolved.to_bytes())

        async def all_sent():
            rows = await notifications(client, case_id)
            return rows if len(rows) == 3 and all(r["status"] == "sent" for r in rows) else None

        rows = await eventually(all_sent)
        assert {(r["template"], r["channel"], r["recipient"]) for r in rows} == {
            ("case.acknowledged", "wechat_template", "反映人（公众号）"),
            ("case.verification", "wechat_template", "反映人（公众号）"),
            ("case.resolved", "wecom_robot", "部门群（grid_center）"),
        }
        assert openid not in str(rows)  # the reporter's openid never leaves notify
    to_reporter = [
        m["body"] for m in httpx.get(f"{fake_wecom}/_fake/mp/messages").json() if m["body"]["touser"] == openid
    ]
    assert ["已接单", "已办结，待回访"] == [m["data"]["keyword2"]["value"] for m in to_reporter]
    [card] = [
        m
        for m in fake_messages(fake_wecom, "demo-grid_center")
        if m["body"]["msgtype"] == "news" and str(case_id)[:8] in m["body"]["news"]["articles"][0]["title"]
    ]
    assert card["body"]["news"]["articles"][0]["picurl"] == "https://media.example/cmp.jpg"
    assert "整改前1张，整改后2张" in card["body"]["news"]["articles"][0]["description"]


async def test_a_report_found_unfounded_on_site_is_answered_with_why(make_settings, fake_wecom):
    """件件有回音: 现场核实 不属实 cancels the case, and its reporter hears why; a check that found the
    problem real tells them nothing new."""
    settings = make_settings("notify", wechat_base_url=fake_wecom)
    await ensure_topics(settings)
    unfounded_id, real_id = uuid4(), uuid4()
    openids = {case_id: f"oReporter-{uuid4().hex[:8]}" for case_id in (unfounded_id, real_id)}
    db = await asyncpg.connect(settings.database_url)
    try:
        for case_id, openid in openids.items():
            await db.execute(
                "INSERT INTO notify.reporters (case_id, report_id, openid) VALUES ($1, $2, $3)",
                case_id,
                uuid4(),
                openid,
            )
    finally:
        await db.close()
    unfounded = transition("case.checked", unfounded_id, status="cancelled", reason="现场井盖完好", finding="unfounded")
    real = transition("case.checked", real_id, finding="confirmed")
    await publish(settings, CASES.name, real.to_bytes(), unfounded.to_bytes())
    async with running(create_app(settings)) as client:
        client.headers.update(bearer(settings, "dispatcher"))

        async def sent():
            rows = await notifications(client, unfounded_id)
            return rows if rows and rows[0]["status"] == "sent" else None

        [row] = await eventually(sent)
        assert (row["template"], row["recipient"]) == ("case.cancelled", "反映人（公众号）")
        assert await notifications(client, real_id) == []
    [told] = [
        m["body"]
        for m in httpx.get(f"{fake_wecom}/_fake/mp/messages").json()
        if m["body"]["touser"] == openids[unfounded_id]
    ]
    assert told["data"]["keyword2"]["value"] == "已撤销"
    assert "经网格员现场核实，情况不属实：现场井盖完好" in told["data"]["first"]["value"]


async def test_each_robot_gets_at_most_twenty_a_minute_even_across_a_restart(make_settings, fake_wecom, tmp_path):
    robot = f"rl-{uuid4().hex[:8]}"
    # The plain limit, with 派单 digests off (they are tested in test_notify_digest.py).
    settings = make_settings("notify", directory_path=one_robot_directory(tmp_path, robot), notify_digest=False)
    await ensure_topics(settings)
    events = [case_dispatched() for _ in range(23)]
    await publish(settings, CASES.name, *(e.to_bytes() for e in events))

    async def statuses():
        db = await asyncpg.connect(settings.database_url)
        try:
            return await db.fetch("SELECT status, last_error, next_attempt_at FROM notify.notifications")
        finally:
            await db.close()

    async with running(create_app(settings)):

        async def twenty_sent():
            rows = await statuses()
            return rows if len(rows) == 23 and sum(r["status"] == "sent" for r in rows) == 20 else None

        await eventually(twenty_sent)
    async with running(create_app(settings)):  # a restart must not grant a fresh minute
        await asyncio.sleep(1.5)
        rows = await statuses()
    held = [r for r in rows if r["status"] != "sent"]
    assert len(held) == 3 and all(r["status"] == "pending" for r in held)
    assert all(r["next_attempt_at"] > utcnow() + timedelta(seconds=50) for r in held)
    assert all(r["last_error"] is None for r in rows)  # never throttled by WeCom: no 45009
    assert len(fake_messages(fake_wecom, robot)) == 20
    db = await asyncpg.connect(settings.database_url)
    try:  # the robot's window holds the sends dated when WeCom answered them, not when they were claimed
        window = await db.fetchval("SELECT sent_at FROM notify.robot_windows WHERE robot_key = $1", robot)
        answered = await db.fetch("SELECT sent_at FROM notify.notifications WHERE status = 'sent'")
    finally:
        await db.close()
    assert sorted(window) == sorted(r["sent_at"] for r in answered)


async def test_busy_answers_are_retried_and_throttling_holds_the_robot(make_settings, fake_wecom, tmp_path):
    robot = f"busy-{uuid4().hex[:8]}"
    settings = make_settings("notify", directory_path=one_robot_directory(tmp_path, robot))
    await ensure_topics(settings)
    httpx.post(f"{fake_wecom}/_fake/failures", params={"key": robot, "errcode": -1, "times": 2})
    event = case_dispatched()
    await publish(settings, CASES.name, event.to_bytes())
    async with running(create_app(settings)) as client:
        client.headers.update(bearer(settings, "dispatcher"))

        async def sent():
            rows = await notifications(client, event.payload.case_id)
            return rows if rows and rows[0]["status"] == "sent" else None

        [row] = await eventually(sent)
        assert row["attempts"] == 3
        httpx.post(f"{fake_wecom}/_fake/failures", params={"key": robot, "errcode": 45009, "times": 1})
        throttled = case_dispatched()
        await publish(settings, CASES.name, throttled.to_bytes())

        async def held():
            rows = await notifications(client, throttled.payload.case_id)
            return rows if rows and rows[0]["attempts"] == 1 else None

        [row] = await eventually(held)
        assert row["status"] == "pending" and "45009" in row["last_error"]
    db = await asyncpg.connect(settings.database_url)
    try:
        blocked_until = await db.fetchval("SELECT blocked_until FROM notify.robot_windows WHERE robot_key = $1", robot)
        next_attempt = await db.fetchval(
            "SELECT next_attempt_at FROM notify.notifications WHERE case_id = $1", throttled.payload.case_id
        )
    finally:
        await db.close()
    assert blocked_until > utcnow() + timedelta(seconds=50) and next_attempt >= blocked_until - timedelta(seconds=1)


async def test_a_permanent_failure_is_announced_and_dead_lettered(make_settings, fake_wecom, tmp_path):
    robot = f"gone-{uuid4().hex[:8]}"
    settings = make_settings("notify", directory_path=one_robot_directory(tmp_path, robot))
    await ensure_topics(settings)
    httpx.post(
        f"{fake_wecom}/_fake/failures",
        params={"key": robot, "errcode": 93000, "times": 1, "errmsg": "invalid webhook url"},
    )
    event = case_dispatched()
    await publish(settings, CASES.name, event.to_bytes(), event.to_bytes())  # redelivered too
    async with running(create_app(settings)) as client:
        client.headers.update(bearer(settings, "dispatcher"))

        async def failed():
            rows = await notifications(client, event.payload.case_id)
            return rows if rows and rows[0]["status"] == "failed" else None

        [row] = await eventually(failed)
        assert row["attempts"] == 1 and "93000" in row["last_error"]
        letters = await read_topic(settings, DEAD_LETTERS.name, until=lambda ms: len(ms) >= 1)
        announced = await read_topic(settings, NOTIFICATIONS.name, until=lambda ms: len(ms) >= 1)
    [letter] = letters
    assert letter["reason"] == "notification_failed" and "93000" in letter["error"]
    assert letter["notification_id"] == str(row["notification_id"]) and letter["target"] == robot
    assert [e["type"] for e in announced] == ["notification.failed"]
    assert fake_messages(fake_wecom, robot) == []


async def test_reporters_are_told_on_the_channel_their_report_came_from(make_settings, fake_wecom):
    settings = make_settings("notify", wechat_base_url=fake_wecom, sms_base_url=fake_wecom)
    await ensure_topics(settings)
    handlers = make_handlers(
        settings=settings,
        directory=load_directory(settings.directory_path),
        sla_policy=load_sla_policy(settings.sla_policy_path),
    )
    by_wecom, by_phone, anonymous, by_claimed_phone = uuid4(), uuid4(), uuid4(), uuid4()
    key = settings.phone_keys()
    userid = f"staff-{uuid4().hex[:6]}"
    db = await asyncpg.connect(settings.database_url, server_settings={"search_path": "notify"})
    try:
        # Reports published before contacts had their private topic carried them (still read).
        for case_id, contact in ((by_wecom, {"reporter_wecom_userid": userid}), (anonymous, {})):
            report = ReportSubmittedV1(
                report_id=uuid4(),
                case_id=case_id,
                description="路灯不亮",
                channel="h5",
                submitted_at=utcnow(),
                **contact,
            )
            event = Event(
                type="report.submitted",
                schema_version=1,
                producer="intake",
                jurisdiction_code="330727",
                key=str(case_id),
                payload=report,
            )
            async with db.transaction():
                await handlers["report.submitted"](db, event)
        # Now intake gives them as reporter.contact_given, on the topic only notify reads.
        for case_id, phone in ((by_phone, "13800005678"), (by_claimed_phone, "13800009999")):
            given = ReporterContactGiven(report_id=uuid4(), case_id=case_id, phone_encrypted=phone_token(phone, key))
            event = new_event(given, producer="intake", jurisdiction_code="330727", key=str(case_id))
            async with db.transaction():
                await handlers["reporter.contact_given"](db, event)
        assert await db.fetchval("SELECT count(*) FROM reporters") == 3  # nothing to keep for the anonymous one
        # The owner of 13800005678 proved it (through 我要查询); nobody proved 13800009999.
        verified = Event(
            type="reporter.verified",
            schema_version=1,
            producer="intake",
            jurisdiction_code="330727",
            key="0" * 16,
            payload=ReporterVerified(phone_hash="ab" * 32, case_ids=[by_phone], verified_at=utcnow()),
        )
        async with db.transaction():
            await handlers["reporter.verified"](db, verified)
    finally:
        await db.close()
    await publish(
        settings, CASES.name, *(transition("case.acknowledged", c).to_bytes() for c in (by_wecom, by_phone, anonymous))
    )
    async with running(create_app(settings)) as client:
        client.headers.update(bearer(settings, "dispatcher"))

        async def sent(case_id):
            rows = await notifications(client, case_id)
            return rows if rows and rows[0]["status"] == "sent" else None

        [app_row] = await eventually(lambda: sent(by_wecom))
        [sms_row] = await eventually(lambda: sent(by_phone))
        assert await notifications(client, anonymous) == []
        assert await notifications(client, by_claimed_phone) == []  # a phone only claimed is never texted
    assert (app_row["channel"], app_row["recipient"]) == ("wecom_app", "企业微信成员")
    assert (sms_row["channel"], sms_row["recipient"]) == ("sms", "反映人（短信）")
    # Neither the WeCom user id nor the phone (not even encrypted) is ever returned.
    assert userid not in str(app_row) and "target" not in sms_row
    [app_message] = [m for m in httpx.get(f"{fake_wecom}/_fake/app/messages").json() if m["body"]["touser"] == userid]
    assert "已由住房和城乡建设局接单" in app_message["body"]["text"]["content"]
    sms = [
        m for m in httpx.get(f"{fake_wecom}/_fake/sms/messages").json() if m["params"].get("case") == str(by_phone)[:8]
    ]
    assert len(sms) == 1 and sms[0]["params"]["status"] == "已接单" and sms[0]["phone"] == "13800005678"
    assert not [m for m in httpx.get(f"{fake_wecom}/_fake/sms/messages").json() if m["phone"] == "13800009999"]


async def test_query_codes_are_texted_to_the_phone_that_asked(make_settings, fake_wecom):
    settings = make_settings("notify", sms_base_url=fake_wecom)
    await ensure_topics(settings)
    request = QueryCodeRequested(
        request_id=uuid4(),
        phone_encrypted=phone_token("13900007777", settings.phone_keys()),
        phone_masked="139****7777",
        code="493021",
        expires_at=utcnow() + timedelta(minutes=5),
    )
    await publish(
        settings,
        REPORTER_CONTACTS.name,
        new_event(request, producer="intake", jurisdiction_code="330727", key=str(request.request_id)).to_bytes(),
    )
    async with running(create_app(settings)):

        async def texted():
            return [m for m in httpx.get(f"{fake_wecom}/_fake/sms/messages").json() if m["phone"] == "13900007777"]

        [sms] = await eventually(texted)
    assert sms["params"]["code"] == "493021" and sms["params"]["minutes"] in ("4", "5")
