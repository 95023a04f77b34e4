"""Duty (值班) on the real stack: dispatch publishes its directory and rosters on gridlink.directory;
notify, reading them, @-mentions the person on duty in the group's 派单 with the work page's link,
sends them the 接单/退回 card through the fake WeCom, and (with sla's 接单 reminder at half its time)
@-mentions the backup when nobody claims (not when claimed); a resident who reported in a group hears
受理 there with the case number."""

from datetime import datetime, timedelta
from uuid import uuid4

import asyncpg
import httpx

from services.dispatch.app import create_app as create_dispatch
from services.dispatch.directory_publish import republish
from services.notify.app import create_app as create_notify
from services.sla.app import create_app as create_sla
from shared.events import (
    CaseFacts,
    CaseTransitioned,
    DirectoryPersonSaved,
    DirectoryRole,
    DutyShiftAdded,
    ReporterContactGiven,
    new_event,
    utcnow,
)
from shared.settings import PROJECT_ROOT
from shared.topics import CASES, DIRECTORY, REPORTER_CONTACTS, SLA, ensure_topics
from tests.support import bearer, case_dispatched, eventually, publish, read_topic, running

CONSOLE = "https://gw.example.gov.cn"


def roster_events(department: str, on_duty: str, backup: str) -> list[bytes]:
    """What dispatch publishes when an admin enters two handlers and their shift."""
    now = utcnow()
    people = [
        DirectoryPersonSaved(
            person_id=f"sub-{user}",
            name=name,
            wecom_user_id=user,
            roles=[DirectoryRole(role="handler", jurisdiction_code="330727", department_code=department)],
            saved_at=now,
        )
        for user, name in ((on_duty, "李强"), (backup, "王芳"))
    ]
    shift = DutyShiftAdded(
        shift_id=uuid4(),
        department_code=department,
        jurisdiction_code="330727",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=8),
        on_duty=f"sub-{on_duty}",
        backup=f"sub-{backup}",
    )
    return [
        new_event(p, producer="dispatch", jurisdiction_code="330727", key=f"person:{p.person_id}").to_bytes()
        for p in people
    ] + [new_event(shift, producer="dispatch", jurisdiction_code="330727", key=f"shift:{shift.shift_id}").to_bytes()]


async def roster_known(settings, on_duty: str) -> bool:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return bool(
            await conn.fetchval(
                "SELECT count(*) FROM notify.duty_shifts s JOIN notify.duty_people p ON p.person_id = s.on_duty "
                "WHERE p.wecom_user_id = $1",
                on_duty,
            )
        )
    finally:
        await conn.close()


def robot_texts(fake_wecom: str, key: str, needle: str) -> list[dict]:
    messages = httpx.get(f"{fake_wecom}/_fake/messages", params={"key": key}).json()
    return [
        m["body"]["text"] for m in messages if m["body"]["msgtype"] == "text" and needle in m["body"]["text"]["content"]
    ]


def acknowledged_event(dispatched, *, actor: str):
    """case.acknowledged by the lead department, as dispatch publishes it after a 接单."""
    facts = dispatched.payload.model_dump(include=set(CaseFacts.model_fields))
    step = CaseTransitioned(
        **facts | {"seq": dispatched.payload.seq + 1, "status": "acknowledged"},
        action="acknowledge",
        from_status="dispatched",
        actor=actor,
        detail={"department_code": dispatched.payload.department_code},
        at=utcnow(),
    )
    return new_event(
        step,
        producer="dispatch",
        jurisdiction_code="330727",
        key=str(dispatched.payload.case_id),
        event_type="case.acknowledged",
    )


def short_ack_policy(tmp_path) -> object:
    """The shipped policy with urgent cases acknowledged within 3 seconds (reminded at 1.5 s)."""
    text = (PROJECT_ROOT / "shared" / "data" / "sla_policies.yaml").read_text(encoding="utf-8")
    assert "acknowledge: {minutes: 10}" in text
    path = tmp_path / "sla.yaml"
    path.write_text(text.replace("acknowledge: {minutes: 10}", "acknowledge: {minutes: 0.05}"), encoding="utf-8")
    return path


async def test_dispatch_publishes_the_directory_and_rosters_without_mobiles(make_settings):
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    admin = bearer(settings, "admin")
    async with running(create_dispatch(settings)) as client:
        for person_id, user in (("sub-duty-1", "duty.one"), ("sub-duty-2", "duty.two")):
            saved = await client.put(
                f"/api/v1/directory/people/{person_id}",
                headers=admin,
                json={
                    "name": "值班员",
                    "wecom_user_id": user,
                    "mobile": "13812345678",
                    "roles": [{"role": "handler", "jurisdiction_code": "330727", "department_code": "zhujian"}],
                },
            )
            assert saved.status_code == 200, saved.text
        now = utcnow()
        added = await client.post(
            "/api/v1/directory/rosters/shifts",
            headers=admin,
            json={
                "department_code": "zhujian",
                "jurisdiction_code": "330727",
                "starts_at": now.isoformat(),
                "ends_at": (now + timedelta(hours=8)).isoformat(),
                "on_duty": "sub-duty-1",
                "backup": "sub-duty-2",
            },
        )
        assert added.status_code == 201, added.text
        removed = await client.delete(f"/api/v1/directory/rosters/shifts/{added.json()['shift_id']}", headers=admin)
        assert removed.status_code == 200
        events = await read_topic(settings, DIRECTORY.name, until=lambda ms: len(ms) >= 4)
    # Each person and each shift is its own key (partition): their order holds per key only.
    by_type: dict[str, list[dict]] = {}
    for e in events:
        by_type.setdefault(e["type"], []).append(e)
    assert {t: len(es) for t, es in by_type.items()} == {
        "directory.person_saved": 2,
        "duty.shift_added": 1,
        "duty.shift_removed": 1,
    }
    person = next(e for e in by_type["directory.person_saved"] if e["payload"]["person_id"] == "sub-duty-1")
    assert person["payload"]["wecom_user_id"] == "duty.one" and person["payload"]["roles"][0]["role"] == "handler"
    [shift], [removal] = by_type["duty.shift_added"], by_type["duty.shift_removed"]
    assert shift["payload"]["on_duty"] == "sub-duty-1" and shift["payload"]["backup"] == "sub-duty-2"
    assert shift["key"] == removal["key"] == f"shift:{added.json()['shift_id']}"  # compacted to the removal
    assert "13812345678" not in str(events) and "5678" not in str(events)  # never a mobile, not even masked


async def test_the_whole_directory_can_be_published_again(make_settings):
    """After an upgrade (people and shifts saved before the topic existed) or a rebuilt notify:
    every person and every shift not yet over goes out again, as it is now, never with a mobile."""
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    admin = bearer(settings, "admin")
    async with running(create_dispatch(settings)) as client:
        role = {"role": "handler", "jurisdiction_code": "330727", "department_code": "zhujian"}
        for person_id in ("sub-again-1", "sub-again-2"):
            body = {"name": "值班员", "wecom_user_id": person_id, "mobile": "13812345678", "roles": [role]}
            assert (await client.put(f"/api/v1/directory/people/{person_id}", headers=admin, json=body)).is_success
        now = utcnow()
        shifts = [(now - timedelta(days=2), now - timedelta(days=1)), (now, now + timedelta(hours=8))]
        for starts_at, ends_at in shifts:
            shift = {
                "department_code": "zhujian",
                "jurisdiction_code": "330727",
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
                "on_duty": "sub-again-1",
            }
            assert (await client.post("/api/v1/directory/rosters/shifts", headers=admin, json=shift)).is_success
        assert (await client.delete("/api/v1/directory/people/sub-again-2", headers=admin)).is_success
        before = await read_topic(settings, DIRECTORY.name, until=lambda ms: len(ms) >= 5)
        assert await republish(settings) == (2, 1)  # both people (one deactivated), the shift not yet over
        events = await read_topic(settings, DIRECTORY.name, until=lambda ms: len(ms) >= 8)
    seen = {e["event_id"] for e in before}
    again = [e for e in events if e["event_id"] not in seen]  # partitions interleave: not the list's tail
    assert sorted(e["type"] for e in again) == ["directory.person_saved", "directory.person_saved", "duty.shift_added"]
    people = {e["payload"]["person_id"]: e["payload"] for e in again if e["type"] == "directory.person_saved"}
    assert people["sub-again-1"]["active"] and not people["sub-again-2"]["active"]
    [shift_again] = [e for e in again if e["type"] == "duty.shift_added"]
    assert datetime.fromisoformat(shift_again["payload"]["ends_at"]) > now
    assert "13812345678" not in str(again) and "5678" not in str(again)


async def test_dispatch_mentions_the_person_on_duty_links_the_work_page_and_sends_the_card(make_settings, fake_wecom):
    settings = make_settings("notify", notify_console_public_url=CONSOLE)
    await ensure_topics(settings)
    on_duty, backup = f"duty-{uuid4().hex[:8]}", f"backup-{uuid4().hex[:8]}"
    case_no = f"20261205-{uuid4().int % 10**6:06d}"
    async with running(create_notify(settings)):
        await publish(settings, DIRECTORY.name, *roster_events("zhujian", on_duty, backup))
        await eventually(lambda: roster_known(settings, on_duty))
        event = case_dispatched("zhujian", case_no=case_no, jurisdiction_code="330727001001", seq=1)
        await publish(settings, CASES.name, event.to_bytes())

        async def told():
            texts = robot_texts(fake_wecom, "demo-zhujian", case_no)
            cards = [
                m["body"]
                for m in httpx.get(f"{fake_wecom}/_fake/app/messages").json()
                if m["body"]["msgtype"] == "template_card" and m["body"]["touser"] == on_duty
            ]
            return (texts, cards) if texts and cards else None

        [text], [card] = await eventually(told)
    assert text["mentioned_list"] == [on_duty] and "值班：李强" in text["content"]
    assert f"处置页面：{CONSOLE}/m/cases/{case_no}" in text["content"]
    buttons = card["template_card"]["button_list"]
    assert [b["key"] for b in buttons] == [f"accept:{case_no}", f"return:{case_no}"]
    assert card["template_card"]["task_id"] == f"case-{case_no}-10" and card["agentid"] == settings.wecom_agent_id


async def test_the_backup_is_mentioned_at_half_the_time_when_nobody_claims(make_settings, fake_wecom, tmp_path):
    """sla times the 接单 stage (on its own clock) and reminds it at half its time; notify's 【催接单】
    then @-mentions the backup beside the person on duty. A case claimed in time gets no reminder."""
    policy = short_ack_policy(tmp_path)
    notify_settings = make_settings("notify", sla_policy_path=policy)
    sla_settings = make_settings("sla", sla_policy_path=policy)
    await ensure_topics(notify_settings)
    on_duty, backup = f"duty-{uuid4().hex[:8]}", f"backup-{uuid4().hex[:8]}"
    unclaimed_no, claimed_no = (f"20261203-{uuid4().int % 10**6:06d}" for _ in range(2))
    async with running(create_notify(notify_settings)), running(create_sla(sla_settings)):
        await publish(notify_settings, DIRECTORY.name, *roster_events("zhujian", on_duty, backup))
        await eventually(lambda: roster_known(notify_settings, on_duty))
        unclaimed = case_dispatched("zhujian", case_no=unclaimed_no, seq=1)
        claimed = case_dispatched("zhujian", case_no=claimed_no, seq=1)
        acknowledged = acknowledged_event(claimed, actor=f"sub-{on_duty}")
        await publish(notify_settings, CASES.name, unclaimed.to_bytes(), claimed.to_bytes(), acknowledged.to_bytes())

        async def backup_told():
            return robot_texts(fake_wecom, "demo-zhujian", f"案件 {unclaimed_no}，派单后仍未接单") or None

        [text] = await eventually(backup_told)
        told_at = utcnow()
        warnings = await read_topic(
            sla_settings, SLA.name, until=lambda ms: any(m["type"] == "sla.warning" for m in ms)
        )
    assert text["mentioned_list"] == [on_duty, backup] and "备班：王芳" in text["content"]
    # Half of the 3 seconds, counted from 派单 on the stage's clock.
    [warning] = [w for w in warnings if w["type"] == "sla.warning" and w["payload"]["stage"] == "acknowledge"]
    assert warning["payload"]["case_no"] == unclaimed_no
    fired_at = datetime.fromisoformat(warning["payload"]["fired_at"])
    assert (
        timedelta(seconds=1.5) <= fired_at - unclaimed.payload.dispatched_at < told_at - unclaimed.payload.dispatched_at
    )
    assert not robot_texts(
        fake_wecom, "demo-zhujian", f"案件 {claimed_no}，派单后仍未接单"
    )  # claimed in time: no backup


async def test_a_resident_who_reported_in_the_group_hears_back_there_with_the_case_number(make_settings, fake_wecom):
    settings = make_settings("notify")
    await ensure_topics(settings)
    case_no = f"20261204-{uuid4().int % 10**6:06d}"
    resident = f"wo-{uuid4().hex[:8]}"
    case = case_dispatched("zhujian", case_no=case_no, seq=1)
    given = new_event(
        ReporterContactGiven(
            report_id=case.payload.report_id,
            case_id=case.payload.case_id,
            wecom_userid=resident,
            group_id="wr330727001001001",  # the grid's residents group (shared/data/groups.csv)
            case_no=case_no,
        ),
        producer="intake",
        jurisdiction_code="330727",
        key=str(case.payload.case_id),
    )
    acknowledged = acknowledged_event(case, actor="sub-li")
    async with running(create_notify(settings)):
        await publish(settings, REPORTER_CONTACTS.name, given.to_bytes())

        def heard(needle: str):
            async def check():
                return robot_texts(fake_wecom, "grp-330727001001001-00", needle) or None

            return check

        [accepted] = await eventually(heard(f"已受理，案件编号 {case_no}"))
        await publish(settings, CASES.name, case.to_bytes(), acknowledged.to_bytes())
        [taken] = await eventually(heard(f"（案件 {case_no}）已由住房和城乡建设局接单"))
    assert "我要查询" in accepted["content"]
    assert accepted["mentioned_list"] == taken["mentioned_list"] == [resident]
