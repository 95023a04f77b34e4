"""一事多报 against real Kafka, PostgreSQL and the fake WeCom/WeChat/SMS server: everyone whose report
joined a case — attached by intake, or through a case the dispatcher merged into it — hears of its
progress and result, not only the first reporter."""

from uuid import uuid4

import asyncpg
import httpx

from services.notify.app import create_app
from shared.events import ReporterContactGiven, ReporterVerified, new_event, utcnow
from shared.phones import phone_token
from shared.topics import CASES, REPORTER_CONTACTS, ensure_topics
from tests.integration.test_notify_delivery import notifications, transition
from tests.support import bearer, eventually, publish, running


async def test_every_merged_reporter_hears_of_the_case_they_joined(make_settings, fake_wecom):
    settings = make_settings("notify", wechat_base_url=fake_wecom, sms_base_url=fake_wecom)
    await ensure_topics(settings)
    keys = settings.phone_keys()
    kept, merged = uuid4(), uuid4()  # the dispatcher merges `merged` into `kept`
    first, joined, of_merged = (f"oReader-{uuid4().hex[:8]}" for _ in range(3))
    by_wecom = f"staff-{uuid4().hex[:6]}"
    texted_only = "13800" + str(uuid4().int)[:6]
    proved_own = "13900" + str(uuid4().int)[:6]

    def contact(case_id, *, attached=False, report_id=None, **channel):
        return new_event(
            ReporterContactGiven(report_id=report_id or uuid4(), case_id=case_id, attached=attached, **channel),
            producer="intake",
            jurisdiction_code="330727",
            key=str(case_id),
        )

    contacts = [
        contact(kept, openid=first, confirm_token="first-reporters-own-secret"),  # opened the case
        contact(kept, attached=True, openid=joined),  # 一事多报, attached by intake
        contact(kept, attached=True, wecom_userid=by_wecom),
        # A phone only typed into an attached report: the case's proof is its first reporter's, not theirs.
        contact(kept, attached=True, phone_encrypted=phone_token(texted_only, keys)),
        # One who proved the phone of their own attached report (我要查询): texted like the first.
        contact(kept, attached=True, report_id=(own_report := uuid4()), phone_encrypted=phone_token(proved_own, keys)),
        contact(merged, openid=of_merged),
    ]
    proved = new_event(
        ReporterVerified(phone_hash="ef" * 32, case_ids=[kept], verified_at=utcnow()),
        producer="intake",
        jurisdiction_code="330727",
        key="0" * 16,
    )
    proved_by_report = new_event(
        ReporterVerified(phone_hash="ab" * 32, case_ids=[], report_ids=[own_report], verified_at=utcnow()),
        producer="intake",
        jurisdiction_code="330727",
        key="1" * 16,
    )
    await publish(
        settings,
        REPORTER_CONTACTS.name,
        *(c.to_bytes() for c in contacts),
        proved.to_bytes(),
        proved_by_report.to_bytes(),
    )

    async def count(sql: str, n: int) -> bool:
        db = await asyncpg.connect(settings.database_url, server_settings={"search_path": "notify"})
        try:
            return await db.fetchval(sql) == n
        finally:
            await db.close()

    async with running(create_app(settings)) as client:
        client.headers.update(bearer(settings, "dispatcher"))
        await eventually(lambda: count("SELECT count(*) FROM reporters", 6))
        await publish(settings, CASES.name, transition("case.merged", merged, into_case_id=str(kept)).to_bytes())
        await eventually(lambda: count("SELECT count(*) FROM merged_cases", 1))
        await publish(
            settings,
            CASES.name,
            transition("case.acknowledged", kept).to_bytes(),
            transition("case.resolved", kept).to_bytes(),
        )

        async def delivered(case_id, n):
            rows = await notifications(client, case_id)
            return rows if len(rows) == n and all(r["status"] == "sent" for r in rows) else None

        # 接单 and 回访 to each of the three WeChat readers, the WeCom member and the proven phone, and
        # the 办结 to the centre.
        kept_rows = await eventually(lambda: delivered(kept, 11))
        [merge_notice] = await eventually(lambda: delivered(merged, 1))
    assert sorted((r["template"], r["channel"]) for r in kept_rows) == sorted(
        [("case.acknowledged", "wechat_template")] * 3
        + [("case.verification", "wechat_template")] * 3
        + [("case.acknowledged", "wecom_app"), ("case.verification", "wecom_app")]
        + [("case.acknowledged", "sms"), ("case.verification", "sms")]
        + [("case.resolved", "wecom_robot")]
    )
    assert (merge_notice["template"], merge_notice["channel"]) == ("case.merged", "wechat_template")
    mp = httpx.get(f"{fake_wecom}/_fake/mp/messages").json()
    heard = {
        openid: sorted(m["body"]["data"]["keyword2"]["value"] for m in mp if m["body"]["touser"] == openid)
        for openid in (first, joined, of_merged)
    }
    assert heard == {  # (messages sent concurrently arrive in any order)
        first: sorted(["已接单", "已办结，待回访"]),
        joined: sorted(["已接单", "已办结，待回访"]),
        of_merged: sorted(["已合并办理", "已接单", "已办结，待回访"]),
    }
    # The first reporter's 回访 carries their own one-tap confirmation link (intake gave its secret).
    [verification] = [
        m["body"] for m in mp if m["body"]["touser"] == first and "回访" in m["body"]["data"]["keyword2"]["value"]
    ]
    assert (
        verification["url"]
        == f"http://127.0.0.1:8001/h5/confirm?r={contacts[0].payload.report_id}&t=first-reporters-own-secret"
    )
    assert "一键确认" in verification["data"]["first"]["value"]
    [notice] = [
        m["body"]
        for m in mp
        if m["body"]["touser"] == of_merged and m["body"]["data"]["keyword2"]["value"] == "已合并办理"
    ]
    assert f"与案件 {str(kept)[:8]} 是同一问题" in notice["data"]["first"]["value"]
    app = [m["body"] for m in httpx.get(f"{fake_wecom}/_fake/app/messages").json() if m["body"]["touser"] == by_wecom]
    assert len(app) == 2
    sms = httpx.get(f"{fake_wecom}/_fake/sms/messages").json()
    assert not [m for m in sms if m["phone"] == texted_only]  # never proved: never texted
    assert len([m for m in sms if m["phone"] == proved_own]) == 2  # proved by their own report: 接单, 回访
