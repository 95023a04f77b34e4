"""通报 on the real stack (Kafka, PostgreSQL, the fake WeCom): a department's third missed deadline
within the policy's window produces one notice — not one per breach after it — which reaches the
county leadership group and the department's head (notify) and stands on the supervision list
(dispatch)."""

from datetime import timedelta
from uuid import uuid4

import httpx

from services.dispatch.app import create_app as dispatch_app
from services.notify.app import create_app as notify_app
from services.sla.app import create_app as sla_app
from shared.topics import CASES, SLA, ensure_topics
from tests.integration.test_sla import T0, Clock, dispatched, facts
from tests.support import bearer, eventually, publish, read_topic, running


async def test_repeated_breaches_produce_one_notice_to_the_leadership_and_the_supervision_list(
    make_settings, fake_wecom, tmp_path
):
    leadership, group = f"lead-{uuid4().hex[:8]}", f"zj-{uuid4().hex[:8]}"
    directory = tmp_path / "directory.yaml"
    directory.write_text(
        "departments:\n"
        f'  zhujian:\n    robot_key: "{group}"\n    mentioned_mobiles: ["13900000301"]\n'
        '    head: {wecom_userid: "zj-head-' + group + '", mobile: "13900000300"}\n'
        f'leadership:\n  robot_key: "{leadership}"\n  mentioned_mobiles: ["13900009801"]\n'
    )
    sla = make_settings("sla")
    notify = make_settings("notify", directory_path=directory)
    dispatch = make_settings("dispatch")
    await ensure_topics(sla)
    clock = Clock(T0)
    cases = {name: uuid4() for name in "abcd"}
    starts = {"a": T0, "b": T0, "c": T0 + timedelta(minutes=5), "d": T0 + timedelta(minutes=10)}
    await publish(sla, CASES.name, *(dispatched(case_id, at=starts[name]) for name, case_id in cases.items()))
    async with (
        running(sla_app(sla, clock=clock)) as sla_client,
        running(notify_app(notify)),
        running(dispatch_app(dispatch)) as dispatch_client,
    ):
        sla_client.headers.update(bearer(sla, "dispatcher"))
        # The rule is policy data, shown with the rest of the policy.
        assert (await sla_client.get("/api/v1/policy")).json()["notices"] == {"breaches": 3, "days": 30}

        async def timers_started():
            got = [(await sla_client.get(f"/api/v1/cases/{c}/timers")).json()["timers"] for c in cases.values()]
            return all(got)

        await eventually(timers_started)

        def of(kind):
            return lambda messages: [m for m in messages if m["type"] == kind]

        # Two acknowledgements missed (a, b): 督办, no 通报 yet.
        clock.now = T0 + timedelta(minutes=11)
        await read_topic(sla, SLA.name, until=lambda ms: len(of("sla.breached")(ms)) >= 2)
        # The third (c) makes three within 30 days: one 通报. The fourth (d) adds none.
        clock.now = T0 + timedelta(minutes=16)
        await read_topic(sla, SLA.name, until=lambda ms: len(of("sla.breached")(ms)) >= 3)
        clock.now = T0 + timedelta(minutes=21)
        events = await read_topic(sla, SLA.name, until=lambda ms: len(of("sla.breached")(ms)) >= 4)
        [notice] = of("sla.notice_issued")(events)
        assert (notice["key"], notice["payload"]["breaches"], notice["payload"]["days"]) == ("zhujian", 3, 30)
        assert notice["payload"]["case_nos"] == [facts(cases[n])["case_no"] for n in "abc"]

        # On the supervision list of the county (dispatch).
        async def listed():
            answer = await dispatch_client.get("/api/v1/supervision", headers=bearer(dispatch, "supervisor"))
            assert answer.status_code == 200, answer.text
            return answer.json()["notices"] or None

        [row] = await eventually(listed)
        assert (row["department_code"], row["breaches"], row["notice_id"]) == (
            "zhujian",
            3,
            notice["payload"]["notice_id"],
        )

        # The leadership group and the department's head are told (notify).
        async def told():
            robot = httpx.get(f"{fake_wecom}/_fake/messages", params={"key": leadership}).json()
            app = [
                m
                for m in httpx.get(f"{fake_wecom}/_fake/app/messages").json()
                if m["body"]["touser"] == f"zj-head-{group}"
            ]
            return (robot, app) if robot and app else None

        robot, app = await eventually(told)
    assert len(robot) == 1 and "【通报】部门（zhujian）近30天内3次办理超时" in robot[0]["body"]["text"]["content"]
    assert len(app) == 1 and "请部门负责人组织整改" in app[0]["body"]["text"]["content"]
