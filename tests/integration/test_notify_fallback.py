"""Notifications that always arrive, against real Kafka, PostgreSQL and the fake WeCom/WeChat/SMS
server: when a channel fails, or a template message is not confirmed in time, the next channel takes
over — once, and never where the first did arrive."""

import asyncio
import importlib.util
import secrets
from datetime import timedelta
from uuid import uuid4

import asyncpg
import httpx

from services.notify.app import create_app
from shared.events import ReporterContactGiven, ReporterVerified, SlaBreached, new_event, utcnow
from shared.phones import phone_token
from shared.settings import PROJECT_ROOT
from shared.topics import CASES, REPORTER_CONTACTS, SLA, ensure_topics
from tests.integration.test_notify_delivery import notifications, transition
from tests.support import bearer, eventually, publish, running

_spec = importlib.util.spec_from_file_location("fake_wecom", PROJECT_ROOT / "deploy" / "local" / "fake_wecom.py")
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)


def a_mobile() -> str:
    """A number no other test texts (the fake allows 5 SMS a minute per number)."""
    return "139" + "".join(secrets.choice("0123456789") for _ in range(8))


def sms_to(fake_wecom: str, phone: str) -> list[dict]:
    return [m for m in httpx.get(f"{fake_wecom}/_fake/sms/messages").json() if m["phone"] == phone]


async def test_a_failed_wecom_send_falls_back_to_sms_exactly_once(make_settings, fake_wecom, tmp_path):
    robot, mobile = f"broken-{uuid4().hex[:8]}", a_mobile()
    directory = tmp_path / "directory.yaml"
    directory.write_text(f'departments:\n  zhujian:\n    robot_key: "{robot}"\n    mentioned_mobiles: ["{mobile}"]\n')
    settings = make_settings("notify", directory_path=directory, sms_base_url=fake_wecom)
    await ensure_topics(settings)
    # The group's robot was removed from the group: WeCom refuses it for good.
    httpx.post(
        f"{fake_wecom}/_fake/failures",
        params={"key": robot, "errcode": 93000, "times": 1, "errmsg": "invalid webhook url"},
    ).raise_for_status()
    now, case_id = utcnow(), uuid4()
    breach = new_event(
        SlaBreached(
            case_id=case_id,
            stage="resolve",
            department_code="zhujian",
            started_at=now - timedelta(hours=1),
            due_at=now,
            case_no="GL20261202-0042",
        ),
        producer="sla",
        jurisdiction_code="330727",
        key=str(case_id),
    )
    await publish(settings, SLA.name, breach.to_bytes(), breach.to_bytes())  # redelivered too
    async with running(create_app(settings)) as client:
        client.headers.update(bearer(settings, "dispatcher"))

        async def taken_over():
            rows = await notifications(client, case_id)
            return rows if len(rows) == 2 and all(r["status"] in ("sent", "failed") for r in rows) else None

        rows = {r["channel"]: r for r in await eventually(taken_over)}
        # Further delivery rounds (and the redelivered event) add nothing.
        await asyncio.sleep(1.0)
        assert len(await notifications(client, case_id)) == 2
    robot_row, sms_row = rows["wecom_robot"], rows["sms_staff"]
    assert (robot_row["status"], robot_row["receipt"]) == ("failed", "failed") and "93000" in robot_row["last_error"]
    assert (sms_row["status"], sms_row["receipt"], sms_row["fallback_of"]) == (
        "sent",
        "confirmed",
        robot_row["notification_id"],
    )
    assert sms_row["recipient"] == "工作人员（短信）" and mobile not in str(sms_row)
    [sms] = sms_to(fake_wecom, mobile)
    assert sms["params"] == {"case": "GL20261202-0042", "notice": "督办"}
    assert httpx.get(f"{fake_wecom}/_fake/messages", params={"key": robot}).json() == []


async def test_a_reporter_is_texted_once_when_the_official_account_fails_or_does_not_confirm(make_settings, fake_wecom):
    settings = make_settings(
        "notify", wechat_base_url=fake_wecom, sms_base_url=fake_wecom, notify_receipt_timeout_s=5.0
    )
    await ensure_topics(settings)
    keys = settings.phone_keys()
    refused, blocked, confirmed, silent = (uuid4() for _ in range(4))
    reporters = {
        case_id: (f"oReader-{uuid4().hex[:8]}", a_mobile()) for case_id in (refused, blocked, confirmed, silent)
    }
    contacts = [
        new_event(
            ReporterContactGiven(
                report_id=uuid4(), case_id=case_id, openid=openid, phone_encrypted=phone_token(phone, keys)
            ),
            producer="intake",
            jurisdiction_code="330727",
            key=str(case_id),
        )
        for case_id, (openid, phone) in reporters.items()
    ]
    verified = new_event(
        ReporterVerified(phone_hash="cd" * 32, case_ids=list(reporters), verified_at=utcnow()),
        producer="intake",
        jurisdiction_code="330727",
        key="0" * 16,
    )
    await publish(settings, REPORTER_CONTACTS.name, *(e.to_bytes() for e in contacts), verified.to_bytes())
    async with running(create_app(settings)) as client:
        client.headers.update(bearer(settings, "dispatcher"))

        async def known():
            db = await asyncpg.connect(settings.database_url)
            try:
                return await db.fetchval("SELECT count(*) FROM notify.verified_reporter_cases") == 4
            finally:
                await db.close()

        await eventually(known)
        # The official account refuses the first case's message outright (system error, for good).
        httpx.post(
            f"{fake_wecom}/_fake/failures", params={"key": "wechat_template", "errcode": 40003, "times": 1}
        ).raise_for_status()
        await publish(settings, CASES.name, transition("case.acknowledged", refused).to_bytes())
        await eventually(lambda: channel_rows(client, refused, {"sms"}))
        await publish(
            settings, CASES.name, *(transition("case.acknowledged", c).to_bytes() for c in (blocked, confirmed, silent))
        )

        async def awaiting(case_id):
            rows = await notifications(client, case_id)
            return rows if rows and rows[0]["receipt"] == "awaiting" else None

        for case_id in (blocked, confirmed):
            await eventually(lambda case_id=case_id: awaiting(case_id))
        sent = {m["body"]["touser"]: m["msgid"] for m in httpx.get(f"{fake_wecom}/_fake/mp/messages").json()}
        # The account reports: one reader blocked it, one got it; the fourth report never comes.
        for case_id, status in ((blocked, "failed:user block"), (confirmed, "success")):
            openid = reporters[case_id][0]
            params, body = fake.callback_request(
                fake.template_finish_xml(openid=openid, msgid=sent[openid], status=status), source="wechat_mp"
            )
            answer = await client.post("/api/v1/callbacks/wechat", params=params, content=body.encode())
            assert answer.status_code == 200, answer.text
        await eventually(lambda: channel_rows(client, blocked, {"sms"}))
        await eventually(lambda: channel_rows(client, silent, {"sms"}), timeout=25)
        await asyncio.sleep(1.0)  # the confirmed one, past its receipt time too, stays the only message
        rows = {case_id: await notifications(client, case_id) for case_id in reporters}
    receipts = {case_id: {r["channel"]: r["receipt"] for r in case_rows} for case_id, case_rows in rows.items()}
    assert receipts == {
        refused: {"wechat_template": "failed", "sms": "confirmed"},
        blocked: {"wechat_template": "failed", "sms": "confirmed"},
        confirmed: {"wechat_template": "confirmed"},
        silent: {"wechat_template": "unconfirmed", "sms": "confirmed"},
    }
    for case_id, (_, phone) in reporters.items():
        texted = sms_to(fake_wecom, phone)
        assert len(texted) == (0 if case_id == confirmed else 1), (case_id, texted)
        assert all(m["params"] == {"case": str(case_id)[:8], "status": "已接单"} for m in texted)


async def channel_rows(client, case_id, channels: set[str]):
    """The case's notifications once every one of `channels` has one that is sent."""
    rows = await notifications(client, case_id)
    return rows if {r["channel"] for r in rows if r["status"] == "sent"} >= channels else None
