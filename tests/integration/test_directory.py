"""The directory (通讯录) and duty rosters (值班表) in dispatch, against real PostgreSQL: admins manage
the people of their division (roles incl. 网格长 and 网长, WeCom user ids, mobiles kept encrypted
and shown masked), import them from a CSV all or nothing, keep each department's duty roster
(on duty and backup, no overlaps), and every change is audited."""

import asyncpg

from services.dispatch.app import create_app as dispatch_app
from shared.phones import decrypt_phone
from tests.support import bearer, running

COUNTY = "330727"
HEADER = "person_id,name,wecom_user_id,mobile,role,jurisdiction_code,department_code\n"


def handler(name: str, wecom: str, mobile: str | None = None, department: str = "zhujian") -> dict:
    person = {
        "name": name,
        "wecom_user_id": wecom,
        "roles": [{"role": "handler", "jurisdiction_code": COUNTY, "department_code": department}],
    }
    return person | ({"mobile": mobile} if mobile else {})


async def test_admins_keep_the_directory_and_every_change_is_audited(make_settings, database_url):
    settings = make_settings("dispatch")
    admin = bearer(settings, "admin", subject="admin-1")
    async with running(dispatch_app(settings)) as dispatch:
        saved = await dispatch.put(
            "/api/v1/directory/people/p-li", json=handler("李强", "liqiang", "13800001234"), headers=admin
        )
        assert saved.status_code == 200, saved.text
        assert saved.json()["mobile_masked"] == "138****1234" and "13800001234" not in saved.text
        # Kept encrypted: the database has the ciphertext, which only dispatch's key reads.
        conn = await asyncpg.connect(database_url, server_settings={"search_path": "dispatch"})
        try:
            row = await conn.fetchrow("SELECT mobile_encrypted, mobile_hash FROM people WHERE person_id = 'p-li'")
            assert b"13800001234" not in bytes(row["mobile_encrypted"])
            assert (
                decrypt_phone(bytes(row["mobile_encrypted"]), settings.directory_mobile_encryption_key) == "13800001234"
            )
            trail = await conn.fetch("SELECT detail::text FROM directory_audit")
            assert trail and all("13800001234" not in r["detail"] for r in trail)
        finally:
            await conn.close()

        found = await dispatch.get("/api/v1/directory/people", params={"mobile": "13800001234"}, headers=admin)
        assert [p["person_id"] for p in found.json()["people"]] == ["p-li"]
        leader = {
            "name": "何飞",
            "wecom_user_id": "hefei",
            "roles": [
                {"role": "grid_worker", "jurisdiction_code": "330727001001001"},
                {"role": "grid_leader", "jurisdiction_code": "330727001001"},
            ],
        }
        assert (await dispatch.put("/api/v1/directory/people/p-he", json=leader, headers=admin)).status_code == 200
        leaders = await dispatch.get("/api/v1/directory/people", params={"role": "grid_leader"}, headers=admin)
        assert [p["person_id"] for p in leaders.json()["people"]] == ["p-he"]

        # Refusals: not an admin, another county's admin, a WeCom id someone else has.
        dispatcher = bearer(settings, "dispatcher")
        assert (
            await dispatch.put("/api/v1/directory/people/p-x", json=handler("某", "x1"), headers=dispatcher)
        ).status_code == 403
        elsewhere = bearer(settings, "admin", jurisdiction_code="330781")
        assert (await dispatch.get("/api/v1/directory/people/p-li", headers=elsewhere)).status_code == 404
        assert (
            await dispatch.put("/api/v1/directory/people/p-li", json=handler("李强", "lq2"), headers=elsewhere)
        ).status_code == 403
        taken = await dispatch.put("/api/v1/directory/people/p-zhang", json=handler("张伟", "liqiang"), headers=admin)
        assert taken.status_code == 409 and "已属于 p-li" in taken.json()["detail"]
        assert (
            await dispatch.put("/api/v1/directory/people/p-wang", json=handler("王五", "wangwu"), headers=admin)
        ).status_code == 200

        # CSV import: every error with its line and nobody imported; then the good file.
        bad = (
            HEADER
            + "p-a,甲,a1,13900000001,group_owner,330727001001001,\n"
            + "p-b,乙,b1,139,handler,330727,\n"
            + "p-c,丙,c1,,admin,330781,\n"
        )
        refused = await dispatch.post(
            "/api/v1/directory/people/import", content=bad.encode(), headers=admin | {"content-type": "text/csv"}
        )
        assert refused.status_code == 422, refused.text
        assert [e["line"] for e in refused.json()["errors"]] == [3, 4]
        assert (await dispatch.get("/api/v1/directory/people/p-a", headers=admin)).status_code == 404
        good = HEADER + "p-a,甲,a1,13900000001,group_owner,330727001001001,\np-b,乙,b1,,handler,330727,chengguan\n"
        imported = await dispatch.post(
            "/api/v1/directory/people/import", content=good.encode(), headers=admin | {"content-type": "text/csv"}
        )
        assert imported.json() == {"imported": 2, "person_ids": ["p-a", "p-b"]}
        assert (await dispatch.get("/api/v1/directory/people/p-a", headers=admin)).json()["roles"][0][
            "role"
        ] == "group_owner"
        not_utf8 = await dispatch.post("/api/v1/directory/people/import", content="姓名".encode("gbk"), headers=admin)
        assert not_utf8.status_code == 422

        # The 住建局 duty roster: on duty and backup; overlaps, strangers and other departments refused.
        shift = {
            "department_code": "zhujian",
            "jurisdiction_code": COUNTY,
            "starts_at": "2026-12-02T08:30:00+08:00",
            "ends_at": "2026-12-02T17:30:00+08:00",
            "on_duty": "p-li",
            "backup": "p-wang",
        }
        added = await dispatch.post("/api/v1/directory/rosters/shifts", json=shift, headers=admin)
        assert added.status_code == 201, added.text
        overlap = shift | {"starts_at": "2026-12-02T17:00:00+08:00", "ends_at": "2026-12-02T20:00:00+08:00"}
        assert (await dispatch.post("/api/v1/directory/rosters/shifts", json=overlap, headers=admin)).status_code == 409
        later = overlap | {"starts_at": "2026-12-02T17:30:00+08:00", "on_duty": "p-wang", "backup": "p-li"}
        assert (await dispatch.post("/api/v1/directory/rosters/shifts", json=later, headers=admin)).status_code == 201
        for who in ("p-b", "p-nobody"):  # 城管's handler; nobody
            wrong = await dispatch.post(
                "/api/v1/directory/rosters/shifts",
                json=later
                | {"starts_at": "2026-12-03T08:00:00+08:00", "ends_at": "2026-12-03T09:00:00+08:00", "on_duty": who},
                headers=admin,
            )
            assert wrong.status_code == 422, who

        staff = bearer(settings, "handler", department_code="zhujian")
        duty = await dispatch.get(
            "/api/v1/directory/rosters/zhujian/on-duty",
            params={"jurisdiction_code": COUNTY, "at": "2026-12-02T10:00:00+08:00"},
            headers=staff,
        )
        assert (duty.json()["on_duty_wecom_user_id"], duty.json()["backup_name"]) == ("liqiang", "王五")
        evening = await dispatch.get(
            "/api/v1/directory/rosters/zhujian/on-duty",
            params={"jurisdiction_code": COUNTY, "at": "2026-12-02T18:00:00+08:00"},
            headers=staff,
        )
        assert evening.json()["on_duty"] == "p-wang"
        night = await dispatch.get(
            "/api/v1/directory/rosters/zhujian/on-duty",
            params={"jurisdiction_code": COUNTY, "at": "2026-12-02T23:00:00+08:00"},
            headers=staff,
        )
        assert night.status_code == 404 and "没有排班" in night.json()["detail"]
        week = await dispatch.get(
            "/api/v1/directory/rosters/zhujian",
            params={"jurisdiction_code": COUNTY, "since": "2026-12-02T00:00:00+08:00"},
            headers=staff,
        )
        assert len(week.json()["shifts"]) == 2
        other = bearer(settings, "handler", department_code="chengguan")
        assert (
            await dispatch.get("/api/v1/directory/rosters/zhujian", params={"jurisdiction_code": COUNTY}, headers=other)
        ).status_code == 403
        assert (
            await dispatch.get(
                "/api/v1/directory/rosters/zhujian/on-duty",
                params={"jurisdiction_code": COUNTY},
                headers=bearer(settings, "grid_worker", "330727001001001"),
            )
        ).status_code == 403

        removed = await dispatch.delete(f"/api/v1/directory/rosters/shifts/{added.json()['shift_id']}", headers=admin)
        assert removed.json() == {"shift_id": added.json()["shift_id"], "removed": True}
        assert (
            await dispatch.delete(f"/api/v1/directory/rosters/shifts/{added.json()['shift_id']}", headers=admin)
        ).status_code == 404
        gone = await dispatch.delete("/api/v1/directory/people/p-b", headers=admin)
        assert gone.json()["active"] is False

        trail = (await dispatch.get("/api/v1/directory/audit", headers=admin)).json()["entries"]
        actions = [e["action"] for e in reversed(trail)]
        assert actions == [
            "person.saved",
            "person.saved",
            "person.saved",
            "person.imported",
            "person.imported",
            "shift.added",
            "shift.added",
            "shift.removed",
            "person.deactivated",
        ]
        assert {e["actor"] for e in trail} == {"admin:admin-1"}
        first = (await dispatch.get("/api/v1/directory/audit", params={"subject": "p-li"}, headers=admin)).json()[
            "entries"
        ]
        assert first[0]["detail"]["mobile"] == "138****1234"
        assert (await dispatch.get("/api/v1/directory/audit", headers=dispatcher)).status_code == 403
