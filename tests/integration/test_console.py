"""The console against real services (dispatch and media over HTTP on their own ports), Kafka and
PostgreSQL: logging in and its refusals, the queue's tabs and search, action forms and their
refusals in Chinese, supervision, a service that does not answer, and the live feed (each event
only to the people allowed to see its case, and a session that expires mid-stream)."""

import asyncio
import json
import re
import uuid
from datetime import timedelta

import asyncpg
import httpx

from services.console import sessions
from services.console.app import create_app as console_app
from services.console.live import visible
from services.dispatch.app import create_app as dispatch_app
from services.dispatch.domain import CaseState, can_see
from shared.auth import Actor, issue_token
from shared.events import CaseDispatched, new_event, utcnow
from shared.topics import CASES, REPORTS, ensure_topics
from tests.integration.test_dispatch import VILLAGE, report
from tests.support import eventually, publish, running, serving

HTML = {"accept": "text/html"}


async def log_in(client: httpx.AsyncClient, person: str) -> httpx.Response:
    page = await client.get("/login", headers=HTML)
    csrf = re.search(r'name="csrf_token" value="(\w+)"', page.text)[1]
    return await client.post("/login", data={"person": person, "csrf_token": csrf, "next": "/"})


def csrf_of(client: httpx.AsyncClient) -> str:
    return client.cookies["gl_csrf"]


async def test_login_queue_actions_and_refusals(make_settings):
    dispatch_settings = make_settings("dispatch", auth_dev_issuer=True)
    await ensure_topics(dispatch_settings)
    first = report("manhole", case_no="20261202-000101", description="幸福路井盖松动")
    second = report("road_damage", case_no="20261202-000102", description="人民路路面坑洼")
    await publish(dispatch_settings, REPORTS.name, first.to_bytes(), second.to_bytes())
    case_id = first.payload.case_id
    async with serving(dispatch_app(dispatch_settings)) as dispatch_url:
        settings = make_settings("console", auth_dev_issuer=True, console_dispatch_url=dispatch_url)
        async with running(console_app(settings)) as client:
            assert (await client.get("/readyz")).json()["ready"]
            # Login refusals: a stale form, nobody chosen.
            page = await client.get("/login", headers=HTML)
            assert "王敏" in page.text and "何飞" in page.text
            stale = await client.post("/login", data={"person": "dispatcher", "csrf_token": "old"})
            assert stale.status_code == 403 and "页面已过期" in stale.text
            nobody = await log_in(client, "nobody")
            assert nobody.status_code == 422 and "请选择" in nobody.text

            # The dispatcher's queue: tabs and search.
            logged_in = await log_in(client, "dispatcher")
            assert logged_in.status_code == 303 and logged_in.headers["location"] == "/"
            assert "gl_session" in client.cookies
            assert (await client.get("/login?next=/supervision", headers=HTML)).headers["location"] == "/supervision"

            async def queued():
                text = (await client.get("/", headers=HTML)).text
                return text if "20261202-000101" in text and "20261202-000102" in text else None

            text = await eventually(queued)
            assert "井盖缺失/破损/塌陷" in text and "住房和城乡建设局" in text and "紧急" in text
            found = (await client.get("/", params={"tab": "resolved", "q": "人民路"}, headers=HTML)).text
            assert "20261202-000102" in found and "20261202-000101" not in found
            for tab in ("working", "resolved", "overdue"):
                assert "暂无案件" in (await client.get("/", params={"tab": tab}, headers=HTML)).text
            assert (await client.get("/", params={"tab": "nonsense"})).status_code == 422

            # Forms: a refusal in Chinese on its form, a non-number, an unknown action, success.
            page = await client.get(f"/cases/{case_id}", headers=HTML)
            assert page.status_code == 200 and 'id="action-transfer"' in page.text
            form = {"csrf_token": csrf_of(client), "idempotency_key": "k-1"}
            refused = await client.post(f"/cases/{case_id}/actions/cancel", data=form)
            assert refused.status_code == 409 and "请填写「理由或备注」" in refused.text
            not_a_number = await client.post(
                f"/cases/{case_id}/actions/approve_extension", data=form | {"minutes": "x"}
            )
            assert not_a_number.status_code == 422 and "「同意延期」未完成" in not_a_number.text
            assert (await client.post(f"/cases/{case_id}/actions/fly", data=form)).status_code == 404
            no_csrf = await client.post(f"/cases/{case_id}/actions/cancel", data={"reason": "重复"})
            assert no_csrf.status_code == 403 and no_csrf.json()["type"].endswith("csrf")
            stale = await client.post(f"/cases/{case_id}/actions/cancel", data={"csrf_token": "old"}, headers=HTML)
            assert stale.status_code == 403 and "页面已过期，请刷新页面后重新提交" in stale.text
            moved = await client.post(
                f"/cases/{case_id}/actions/transfer",
                data=form | {"department_code": "chengguan", "co_department_codes": ["huanwei"], "reason": "属城管"},
            )
            assert moved.status_code == 303 and moved.headers["location"] == f"/cases/{case_id}?done=transfer"
            page = await client.get(moved.headers["location"], headers=HTML)
            assert "已转派" in page.text and "城市管理局" in page.text and "环境卫生服务中心" in page.text

            # Supervision: the dispatcher sees who is late and by how much; a handler is refused.
            db = await asyncpg.connect(dispatch_settings.database_url)
            try:
                await db.execute(
                    "INSERT INTO dispatch.supervised_breaches VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    uuid.uuid4(),
                    case_id,
                    "330727001",
                    VILLAGE,
                    "acknowledge",
                    "zhujian",
                    "manhole",
                    utcnow() - timedelta(hours=2, minutes=5),
                    utcnow() - timedelta(hours=2),
                )
            finally:
                await db.close()
            supervision = await client.get("/supervision", headers=HTML)
            assert "超时 2 小时 5 分" in supervision.text and "住房和城乡建设局" in supervision.text
            assert "井盖缺失" in supervision.text and "城关街道" in supervision.text

            out = await client.post("/logout", data={"csrf_token": csrf_of(client)})
            assert out.status_code == 303 and "gl_session" not in client.cookies
            await log_in(client, "zhujian")
            refused = await client.get("/supervision", headers=HTML)
            assert refused.status_code == 403 and "只有调度员、督查员和管理员" in refused.text
            assert (await client.get(f"/cases/{uuid.uuid4()}", headers=HTML)).status_code == 404

        # The services no longer take the session's token: back to the login page.
        other = make_settings("console", console_dispatch_url=dispatch_url, auth_jwt_secret="another-key")
        async with running(console_app(other)) as client:
            actor = Actor(subject="d", role="dispatcher", jurisdiction_code="330727")
            token = issue_token(secret="another-key", actor=actor)
            for path in ("/", f"/cases/{case_id}", "/supervision"):
                client.cookies.set("gl_session", token)
                answer = await client.get(path, headers=HTML)
                assert answer.headers["location"] == f"/login?next={path}"
                assert 'gl_session=""' in answer.headers["set-cookie"]  # refused by the services: forgotten
            client.cookies.set("gl_session", token)
            client.cookies.set("gl_csrf", sessions.csrf_for("another-key", token))
            form = {"csrf_token": client.cookies["gl_csrf"], "reason": "x"}
            answer = await client.post(f"/cases/{case_id}/actions/cancel", data=form, headers=HTML)
            assert answer.headers["location"] == "/login?next=/"  # no page to return to
            client.cookies.set("gl_session", token)
            assert (await client.get("/login", headers=HTML)).status_code == 303  # the session itself is valid
            # A form posted after the session ended: login, then back to the page it came from.
            client.cookies.clear()
            page = f"{client.base_url}/cases/{case_id}"
            expired = await client.post(f"/cases/{case_id}/actions/cancel", headers=HTML | {"referer": page})
            assert expired.status_code == 303 and expired.headers["location"] == f"/login?next=/cases/{case_id}"


async def test_pages_say_so_when_a_service_does_not_answer(make_settings):
    settings = make_settings(
        "console", console_dispatch_url="http://127.0.0.1:9", console_media_url="http://127.0.0.1:9"
    )
    async with running(console_app(settings)) as client:
        # The demo login needs dispatch's issuer, which is off here: only the identity provider.
        page = (await client.get("/login", headers=HTML)).text
        assert 'id="oidc-login"' in page and "演示人员" not in page
        off = await client.post("/login", data={"person": "dispatcher", "csrf_token": client.cookies["gl_csrf"]})
        assert off.status_code == 422  # no demo people to be
        actor = Actor(subject="d", role="dispatcher", jurisdiction_code="330727")
        token = issue_token(secret=settings.auth_jwt_secret, actor=actor)
        client.cookies.set("gl_session", token)
        for path in ("/", f"/cases/{uuid.uuid4()}", "/supervision", f"/media/{uuid.uuid4()}"):
            page = await client.get(path, headers=HTML)
            assert page.status_code == 502 and "暂时无法访问" in page.text, path
        assert (await client.get("/static/console.js")).status_code == 200
        assert (await client.get("/static/secret.py")).status_code == 404

    on = make_settings("console", auth_dev_issuer=True, console_dispatch_url="http://127.0.0.1:9")
    async with running(console_app(on)) as client:
        answer = await log_in(client, "dispatcher")
        assert answer.status_code == 502 and "登录失败" in answer.text

    # Neither the identity provider nor the demo login: the page says whom to ask.
    nowhere = make_settings("console", auth_oidc_issuer="", console_dispatch_url="http://127.0.0.1:9")
    async with running(console_app(nowhere)) as client:
        assert "未配置统一身份认证" in (await client.get("/login", headers=HTML)).text
        assert (await client.get("/auth/start", headers=HTML)).status_code == 404
    # A provider that does not answer: the login page says so.
    down = make_settings("console", auth_oidc_issuer="http://127.0.0.1:9", console_dispatch_url="http://127.0.0.1:9")
    async with running(console_app(down)) as client:
        answer = await client.get("/auth/start", headers=HTML)
        assert answer.status_code == 502 and "统一身份认证服务暂时无法访问" in answer.text


def test_the_live_feed_follows_dispatchs_rule_of_who_sees_a_case():
    people = [
        Actor("a", "dispatcher", "330727"),
        Actor("b", "dispatcher", "330727002"),
        Actor("c", "handler", "330727", "zhujian"),
        Actor("d", "handler", "330727", "huanwei"),
        Actor("e", "grid_worker", VILLAGE + "001"),
        Actor("f", "grid_worker", VILLAGE + "002"),
    ]
    for grid in (None, VILLAGE + "001"):
        for co in ([], ["huanwei"]):
            event = dispatched_event(grid=grid, co=co)
            facts = event.payload
            state = CaseState(
                case_id=str(facts.case_id),
                status=facts.status,
                jurisdiction_code=facts.jurisdiction_code,
                department_code=facts.department_code,
                co_department_codes=tuple(facts.co_department_codes),
                grid_code=facts.grid_code,
            )
            for actor in people:
                assert visible(actor, facts) == can_see(actor=actor, case=state), (actor, grid, co)


def dispatched_event(*, grid: str | None = None, co: list[str] | None = None, priority: str = "urgent"):
    case_id = uuid.uuid4()
    payload = CaseDispatched(
        case_id=case_id,
        report_id=uuid.uuid4(),
        seq=1,
        status="dispatched",
        jurisdiction_code=VILLAGE,
        grid_code=grid,
        category="manhole",
        category_name="井盖缺失/破损/塌陷",
        priority=priority,
        department_code="zhujian",
        department_name="住房和城乡建设局",
        co_department_codes=co or [],
        description="井盖翻起",
        case_no="20261202-000200",
        responsibility_list_version="demo",
        rule="manhole",
        dispatched_at=utcnow(),
    )
    return new_event(payload, producer="dispatch", jurisdiction_code=VILLAGE, key=str(case_id))


async def test_live_feed_goes_only_to_who_may_see_the_case(make_settings):
    settings = make_settings("console", console_heartbeat_s=0.3)
    app = console_app(settings)

    def cookie(department: str, ttl_s: int = 3600) -> dict[str, str]:
        actor = Actor(subject=department, role="handler", jurisdiction_code="330727", department_code=department)
        return {"gl_session": issue_token(secret=settings.auth_jwt_secret, actor=actor, ttl_s=ttl_s)}

    async def listen(cookies: dict[str, str], received: list[str], stop: asyncio.Event) -> None:
        async with (
            httpx.AsyncClient(base_url=origin, cookies=cookies, timeout=10) as http,
            http.stream("GET", "/events", headers={"accept": "text/event-stream"}) as stream,
        ):
            async for line in stream.aiter_lines():
                received.append(line)
                if stop.is_set() or line == "event: expired":
                    return

    async with serving(app) as origin:
        zhujian, chengguan, stop = [], [], asyncio.Event()
        listeners = [
            asyncio.create_task(listen(cookie("zhujian"), zhujian, stop)),
            asyncio.create_task(listen(cookie("chengguan"), chengguan, stop)),
        ]
        await eventually(lambda: asyncio.sleep(0, len(app.state.hub.subscribers) == 2))
        event = dispatched_event()
        await publish(settings, CASES.name, b"not an event", event.to_bytes())

        async def heard():
            return next((json.loads(x[6:]) for x in zhujian if x.startswith("data: {") and "case_id" in x), None)

        message = await eventually(heard)
        assert message["case_no"] == "20261202-000200" and message["urgent_new"] and message["status_label"] == "待接单"
        assert "住房和城乡建设局" in message["row"] and "紧急" in message["row"]
        await eventually(lambda: asyncio.sleep(0, ": keep-alive" in chengguan))  # alive, and told nothing
        assert not any("case_id" in line for line in chengguan)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*listeners), 10)

        # A session that ends while the page is open: the page is told to log in again.
        expiring: list[str] = []
        await asyncio.wait_for(listen(cookie("zhujian", ttl_s=3), expiring, asyncio.Event()), 10)
        assert expiring[-1] == "event: expired"
        async with httpx.AsyncClient(base_url=origin) as http:
            anonymous = await http.get("/events", headers={"accept": "text/event-stream"})
        assert anonymous.status_code == 401 and anonymous.json()["detail"] == "登录已失效，请重新登录。"
