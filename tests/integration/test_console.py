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
from services.sla.app import create_app as sla_app
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


async def test_queue_filters_and_pages_the_case_page_shows_clocks_and_map_the_map_counts_grids(
    make_settings, monkeypatch
):
    dispatch_settings = make_settings("dispatch", auth_dev_issuer=True)
    sla_settings = make_settings("sla")
    await ensure_topics(dispatch_settings)
    grid = VILLAGE + "001"
    placed = report("manhole", case_no="20261202-000301", description="井盖松动", grid=grid, address="幸福路 18 号")
    loose = report("road_damage", case_no="20261202-000302", description="路面坑洼", lat=None, lng=None)
    third = report("manhole", case_no="20261202-000303", description="又一个井盖", grid=grid)
    await publish(dispatch_settings, REPORTS.name, placed.to_bytes(), loose.to_bytes(), third.to_bytes())
    monkeypatch.setattr("services.console.pages.PAGE_SIZE", 2)
    async with (
        serving(dispatch_app(dispatch_settings)) as dispatch_url,
        serving(sla_app(sla_settings)) as sla_url,
    ):
        settings = make_settings(
            "console", auth_dev_issuer=True, console_dispatch_url=dispatch_url, console_sla_url=sla_url
        )
        async with running(console_app(settings)) as client:
            await log_in(client, "dispatcher")

            async def all_three():
                text = (await client.get("/", params={"tab": "all", "category": "manhole"}, headers=HTML)).text
                return text if "20261202-000301" in text and "20261202-000303" in text else None

            # Filters: the category keeps 井盖 cases; two per page here, the next page has the rest.
            first = await eventually(all_three)
            assert "20261202-000302" not in first and "selected>井盖" in first.replace('" selected', " selected")
            page_one = (await client.get("/", params={"tab": "all"}, headers=HTML)).text
            more = re.search(r'id="next-page" href="([^"]+)"', page_one)
            assert more and page_one.count('<tr data-case="') == 2
            page_two = (await client.get(more[1].replace("&amp;", "&"), headers=HTML)).text
            assert page_two.count('<tr data-case="') == 1 and "回到第一页" in page_two
            assert 'id="next-page"' not in page_two
            by_address = (await client.get("/", params={"q": "幸福路"}, headers=HTML)).text
            assert "20261202-000301" in by_address and "20261202-000303" not in by_address
            by_place = (await client.get("/", params={"tab": "all", "place": grid}, headers=HTML)).text
            assert "20261202-000302" not in by_place and "20261202-000303" in by_place
            urgent_only = (await client.get("/", params={"tab": "all", "priority": "urgent"}, headers=HTML)).text
            assert "20261202-000302" not in urgent_only  # 道路破损 is 一般
            tomorrow = (utcnow() + timedelta(days=2)).date().isoformat()
            future = (await client.get("/", params={"tab": "all", "since": tomorrow}, headers=HTML)).text
            assert "暂无案件" in future
            assert (await client.get("/", params={"place": "x"}, headers=HTML)).status_code == 422

            # The case page: its clocks counting down (from sla), and its grid on the map.
            async def clocked():
                text = (await client.get(f"/cases/{placed.payload.case_id}", headers=HTML)).text
                return text if "countdown" in text else None

            page = await eventually(clocked)
            assert "办理时限" in page and "接单" in page and "剩余" in page and "data-due=" in page
            assert '<svg class="map"' in page and 'class="grid-this"' in page and "map-marker" in page
            assert "幸福路 18 号" in page
            unplaced = (await client.get(f"/cases/{loose.payload.case_id}", headers=HTML)).text
            assert "尚未定位" in unplaced
            # By case number in the address bar; a wrong one is a page that says what to do.
            by_number = await client.get("/cases/20261202-000301", headers=HTML)
            assert by_number.status_code == 303 and by_number.headers["location"] == f"/cases/{placed.payload.case_id}"
            wrong = await client.get("/cases/20261299-999999", headers=HTML)
            assert (
                wrong.status_code == 404
                and "请核对案件编号" in wrong.text
                and "text/html" in wrong.headers["content-type"]
            )

            # The map: grids coloured by their open cases, a link to each grid's cases.
            drawn = (await client.get("/map", headers=HTML)).text
            assert drawn.count("<polygon") == 613 and drawn.count('class="grid-open"') == 1
            assert f"place={grid}" in drawn and "另有 1 件尚未定位" in drawn

        # sla not answering: the case page still shows the case, and says the clocks are unavailable.
        down = make_settings(
            "console", auth_dev_issuer=True, console_dispatch_url=dispatch_url, console_sla_url="http://127.0.0.1:9"
        )
        async with running(console_app(down)) as client:
            await log_in(client, "dispatcher")
            page = await client.get(f"/cases/{placed.payload.case_id}", headers=HTML)
            assert page.status_code == 200 and "时限服务暂时不可用" in page.text and "20261202-000301" in page.text


def test_the_live_feed_drops_a_transferred_case_and_flags_a_missed_deadline():
    from services.console.live import Hub
    from shared.events import SlaBreached

    hub = Hub(lambda event: {"case_id": str(event.payload.case_id)})
    zhujian = hub.subscribe(Actor("c", "handler", "330727", "zhujian"))
    chengguan = hub.subscribe(Actor("d", "handler", "330727", "chengguan"))
    event = dispatched_event()
    assert hub.deliver(event) == 1 and zhujian.queue.get_nowait() == {"case_id": str(event.payload.case_id)}
    moved = event.payload.model_copy(update={"department_code": "chengguan", "department_name": "城市管理局"})
    assert hub.deliver(new_event(moved, producer="dispatch", jurisdiction_code=VILLAGE, key="k")) == 2
    assert zhujian.queue.get_nowait() == {"type": "case.dispatched", "case_id": str(moved.case_id), "gone": True}
    assert chengguan.queue.get_nowait() == {"case_id": str(moved.case_id)}
    breach = SlaBreached(
        case_id=moved.case_id,
        stage="acknowledge",
        department_code="chengguan",
        started_at=utcnow(),
        due_at=utcnow(),
        jurisdiction_code=VILLAGE,
    )
    assert hub.deliver(new_event(breach, producer="sla", jurisdiction_code=VILLAGE, key="k")) == 1
    assert chengguan.queue.get_nowait()["overdue"] is True and zhujian.queue.empty()


async def test_a_supervisor_composes_previews_and_sends_a_broadcast_and_follows_it(make_settings):
    from services.notify.app import create_app as notify_app
    from services.notify.app import load_groups
    from services.notify.broadcasts import select_groups

    notify_settings = make_settings("notify")
    await ensure_topics(notify_settings)
    groups = load_groups(notify_settings.notify_groups_path)
    towns = {g.jurisdiction_code[:9] for g in groups}
    town = min(towns, key=lambda t: len(select_groups(groups, t)))  # the fewest groups: quick to send
    in_town = len(select_groups(groups, town))
    async with serving(notify_app(notify_settings)) as notify_url:
        settings = make_settings("console", console_notify_url=notify_url)
        async with running(console_app(settings)) as client:

            def be(role: str, department: str | None = None) -> None:
                actor = Actor(subject=role, role=role, jurisdiction_code="330727", department_code=department)
                token = issue_token(secret=settings.auth_jwt_secret, actor=actor)
                client.cookies.set("gl_session", token)
                client.cookies.set("gl_csrf", sessions.csrf_for(settings.auth_jwt_secret, token))

            be("supervisor")
            composer = await client.get("/broadcasts/new", headers=HTML)
            assert composer.status_code == 200 and f'value="{town}"' in composer.text and "政策宣传" in composer.text
            form = {"csrf_token": client.cookies["gl_csrf"], "msgtype": "text"}
            empty = await client.post("/broadcasts/preview", data=form | {"target": town}, headers=HTML)
            assert empty.status_code == 422 and "请填写要发布的内容" in empty.text
            nowhere = await client.post("/broadcasts/preview", data=form | {"content": "通知"}, headers=HTML)
            assert nowhere.status_code == 422 and "请至少选择一个发送范围" in nowhere.text
            # The whole county and a town in it: counted once, as the county.
            both = await client.post(
                "/broadcasts/preview", data=form | {"content": "【防汛提示】", "target": ["330727", town]}, headers=HTML
            )
            assert f'id="group-count">{len(groups)}<' in both.text
            preview = await client.post(
                "/broadcasts/preview", data=form | {"content": "【防汛提示】今晚有暴雨", "target": town}, headers=HTML
            )
            assert preview.status_code == 200 and f'id="group-count">{in_town}<' in preview.text
            assert "今晚有暴雨" in preview.text and "确认发送" in preview.text
            confirm = dict(
                re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', preview.text.split("预览：")[1])
            )
            sent = await client.post("/broadcasts", data=confirm)
            assert sent.status_code == 303 and sent.headers["location"].startswith("/broadcasts/progress?id=")
            again = await client.post("/broadcasts", data=confirm)  # a resubmitted form: the same broadcast
            assert again.headers["location"] == sent.headers["location"]
            progress = await client.get(sent.headers["location"], headers=HTML)
            assert progress.status_code == 200 and f"<td>{in_town}</td>" in progress.text

            async def finished():
                page = (await client.get(sent.headers["location"], headers=HTML)).text
                return page if "全部发送完毕" in page else None

            done = await eventually(finished, timeout=60)
            assert 'http-equiv="refresh"' not in done and f"<td>{in_town}</td><td>0</td><td>0</td>" in done
            too_long = await client.post("/broadcasts", data=confirm | {"content": "长" * 700, "idempotency_key": "x"})
            assert too_long.status_code == 422 and "内容过长" in too_long.text

            be("handler", "zhujian")  # a department's handler: not theirs to publish
            refused = await client.get("/broadcasts/new", headers=HTML)
            assert refused.status_code == 403 and "督查员或管理员" in refused.text
            assert "政策宣传" not in (await client.get("/map", headers=HTML)).text.split("</header>")[0]


async def test_an_admin_edits_the_responsibility_list_errors_shown_by_their_rows_and_compares_versions(make_settings):
    dispatch_settings = make_settings("dispatch", auth_dev_issuer=True)
    await ensure_topics(dispatch_settings)
    async with serving(dispatch_app(dispatch_settings)) as dispatch_url:
        settings = make_settings("console", auth_dev_issuer=True, console_dispatch_url=dispatch_url)
        async with running(console_app(settings)) as client:
            await log_in(client, "admin")
            page = await client.get("/responsibility-list", headers=HTML)
            assert page.status_code == 200 and "现行版本 demo-2026.1" in page.text and 'id="publish"' in page.text
            current = re.findall(
                r'<input name="scope" list="scopes" value="([^"]*)".*?<option value="([^"]*)" selected>',
                page.text,
                flags=re.S,
            )
            assert ("town", "manhole") in current or len(current) > 3

            # Read the table back as the browser would post it, then change it.
            def table(text: str) -> list[tuple[str, str, str, str]]:
                rows = []
                for tr in re.findall(r"<tr(?: class=\"invalid\")?><td><input name=\"scope\".*?</tr>", text, flags=re.S):
                    scope = re.search(r'name="scope" list="scopes" value="([^"]*)"', tr)[1]
                    category = (
                        re.search(r'name="category".*?<option value="([^"]*)" selected>', tr, flags=re.S) or [None, ""]
                    )[1]
                    lead_select = re.search(r'<select name="lead".*?</select>', tr, flags=re.S)
                    lead = (
                        (re.search(r'<option value="([^"]*)" selected>', lead_select[0]) or [None, ""])[1]
                        if lead_select
                        else ""
                    )
                    co = re.search(r'name="co" value="([^"]*)"', tr)[1]
                    rows.append((scope, category, lead, co))
                return rows

            rows = table(page.text)
            edited = [r for r in rows if r[1]] + [("东城街道", "noise", "chengguan", "公安局")]

            def posted(rows, version: str) -> dict:
                columns = list(zip(*rows, strict=True))
                return {"csrf_token": csrf_of(client), "version": version} | {
                    name: list(column)
                    for name, column in zip(("scope", "category", "lead", "co"), columns, strict=True)
                }

            form = posted(edited, "2026.2")
            # An unknown department typed into a row: the error is on that row, nothing is published.
            bad = posted(edited[:-1] + [("330727002", "noise", "chengguan", "城管局")], "2026.2")
            refused = await client.post("/responsibility-list", data=bad, headers=HTML)
            assert refused.status_code == 422 and "不认识的部门：城管局" in refused.text
            assert 'class="invalid"' in refused.text and "现行版本 demo-2026.1" in refused.text
            # Dispatch's own refusal (a version that exists) is shown too.
            exists = await client.post("/responsibility-list", data=posted(edited, "demo-2026.1"), headers=HTML)
            assert exists.status_code == 409 and "已存在" in exists.text
            published = await client.post("/responsibility-list", data=form, headers=HTML)
            assert published.status_code == 303 and published.headers["location"] == "/responsibility-list?done=2026.2"
            after = (await client.get(published.headers["location"], headers=HTML)).text
            assert "现行版本 2026.2" in after and "已发布新版本 2026.2" in after
            assert table(after)[: len(edited)] == [(s, c, lead, co) for s, c, lead, co in edited]
            diff = await client.get(
                "/responsibility-list/diff", params={"from": "demo-2026.1", "to": "2026.2"}, headers=HTML
            )
            assert diff.status_code == 200 and "新增" in diff.text and "城市管理局" in diff.text
            assert diff.text.count('<tr class="change-') == 1
            missing = await client.get("/responsibility-list/diff", params={"from": "x", "to": "2026.2"}, headers=HTML)
            assert missing.status_code == 404 and "没有版本「x」" in missing.text

            await client.post("/logout", data={"csrf_token": csrf_of(client)})
            await log_in(client, "dispatcher")  # reads the list, cannot edit it
            read_only = (await client.get("/responsibility-list", headers=HTML)).text
            assert "现行版本 2026.2" in read_only and 'id="publish"' not in read_only and "公安局" in read_only


async def test_the_before_and_after_comparison_comes_through_the_console(make_settings):
    from services.media.app import create_app as media_app
    from tests.integration.test_media import jpeg_bytes
    from tests.integration.test_media_evidence import auth, dispatch_case, submit_report, upload

    media_settings = make_settings("media")
    case_id, report_id, lonely = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with serving(media_app(media_settings)) as media_url, httpx.AsyncClient(base_url=media_url) as media:
        media.headers.update(auth(media_settings, role="handler", department="cgj"))
        before = await upload(media, jpeg_bytes(color=(200, 30, 30), size=(400, 300)))
        after = await upload(media, jpeg_bytes(color=(30, 200, 30), size=(300, 400)))
        await submit_report(media_settings, case_id=case_id, report_id=report_id, media_ids=[before["media_id"]])
        await submit_report(media_settings, case_id=lonely, media_ids=[])
        for case in (case_id, lonely):
            await dispatch_case(
                media_settings,
                case_id=case,
                report_id=report_id if case == case_id else uuid.uuid4(),
                department_code="cgj",
                jurisdiction_code="330727001002",
            )

        async def ready():
            answer = await media.post(
                f"/api/v1/cases/{case_id}/media", json={"media_id": after["media_id"], "role": "after"}
            )
            return answer.status_code in (200, 201)

        await eventually(ready)
        settings = make_settings("console", console_media_url=media_url)
        async with running(console_app(settings)) as client:
            actor = Actor(subject="h", role="handler", jurisdiction_code="330727", department_code="cgj")
            client.cookies.set("gl_session", issue_token(secret=settings.auth_jwt_secret, actor=actor))
            image = await client.get(f"/cases/{case_id}/comparison.jpg", headers=HTML)
            assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
            assert image.content[:3] == b"\xff\xd8\xff"
            no_pair = await client.get(f"/cases/{lonely}/comparison.jpg", headers=HTML)
            assert no_pair.status_code == 409 and "text/html" in no_pair.headers["content-type"]


async def test_scorecards_and_their_exports_come_through_the_console(make_settings):
    sla_settings = make_settings("sla")
    await ensure_topics(sla_settings)
    async with serving(sla_app(sla_settings)) as sla_url:
        settings = make_settings("console", console_sla_url=sla_url)
        async with running(console_app(settings)) as client:
            actor = Actor(subject="s", role="supervisor", jurisdiction_code="330727")
            client.cookies.set("gl_session", issue_token(secret=settings.auth_jwt_secret, actor=actor))
            page = await client.get("/scorecards", headers=HTML)
            assert page.status_code == 200 and "三率考核" in page.text and "按期办结率" in page.text
            towns = await client.get("/scorecards", params={"by": "town", "span": "week"}, headers=HTML)
            assert towns.status_code == 200 and "乡镇（街道）" in towns.text
            workbook = await client.get("/scorecards/assessment.xlsx", headers=HTML)
            assert workbook.status_code == 200 and workbook.content[:2] == b"PK"  # an xlsx is a zip
            assert "attachment" in workbook.headers["content-disposition"]
            report = await client.get("/scorecards/weekly.pdf", headers=HTML)
            assert report.status_code == 200 and report.content[:4] == b"%PDF"
            assert (await client.get("/scorecards/secrets.txt", headers=HTML)).status_code == 404
            assert (await client.get("/scorecards", params={"by": "planet"}, headers=HTML)).status_code == 422
    down = make_settings("console", console_sla_url="http://127.0.0.1:9")
    async with running(console_app(down)) as client:
        actor = Actor(subject="s", role="supervisor", jurisdiction_code="330727")
        client.cookies.set("gl_session", issue_token(secret=down.auth_jwt_secret, actor=actor))
        page = await client.get("/scorecards", headers=HTML)
        assert page.status_code == 502 and "办理时限服务（sla）暂时无法访问" in page.text


async def test_an_admin_keeps_the_directory_from_the_console(make_settings):
    from datetime import UTC, datetime

    dispatch_settings = make_settings("dispatch", auth_dev_issuer=True)
    await ensure_topics(dispatch_settings)
    header = "person_id,name,wecom_user_id,mobile,role,jurisdiction_code,department_code\n"
    async with serving(dispatch_app(dispatch_settings)) as dispatch_url:
        settings = make_settings("console", auth_dev_issuer=True, console_dispatch_url=dispatch_url)
        async with running(console_app(settings)) as client:
            await log_in(client, "admin")
            empty = await client.get("/directory", headers=HTML)
            assert empty.status_code == 200 and "暂无人员" in empty.text and "从 CSV 导入" in empty.text
            broken = (
                header
                + "p-li,李强,liqiang,13800001234,handler,330727,\np-he,何飞,hefei,12,grid_worker,330727001001001,\n"
            )
            refused = await client.post(
                "/directory/import",
                data={"csrf_token": csrf_of(client)},
                files={"file": ("people.csv", broken.encode(), "text/csv")},
                headers=HTML,
            )
            assert refused.status_code == 422 and "第 2 行" in refused.text and "第 3 行" in refused.text
            assert "未导入任何人员" in refused.text and "暂无人员" in refused.text
            good = (
                header
                + "p-li,李强,liqiang,13800001234,handler,330727,zhujian\np-he,何飞,hefei,,grid_leader,330727001001,\n"
            )
            imported = await client.post(
                "/directory/import",
                data={"csrf_token": csrf_of(client)},
                files={"file": ("people.csv", good.encode(), "text/csv")},
                headers=HTML,
            )
            assert imported.status_code == 200 and "已导入 2 人" in imported.text
            assert "138****1234" in imported.text and "13800001234" not in imported.text
            assert "网格长" in imported.text and "住房和城乡建设局" in imported.text
            # Who is on duty in a department (from its roster).
            admin = {"authorization": f"Bearer {client.cookies['gl_session']}"}
            now = datetime.now(UTC)
            shift = {
                "department_code": "zhujian",
                "jurisdiction_code": "330727",
                "starts_at": (now - timedelta(hours=1)).isoformat(),
                "ends_at": (now + timedelta(hours=8)).isoformat(),
                "on_duty": "p-li",
            }
            async with httpx.AsyncClient(base_url=dispatch_url) as dispatch:
                made = await dispatch.post("/api/v1/directory/rosters/shifts", json=shift, headers=admin)
                assert made.status_code == 201, made.text
            duty = await client.get("/directory", params={"department": "zhujian"}, headers=HTML)
            assert "住房和城乡建设局当前值班：<b>李强</b>" in duty.text
            none = await client.get("/directory", params={"department": "chengguan"}, headers=HTML)
            assert "当前没有排班" in none.text and "李强" not in none.text
            await client.post("/logout", data={"csrf_token": csrf_of(client)})
            await log_in(client, "dispatcher")
            refused = await client.get("/directory", headers=HTML)
            assert refused.status_code == 403 and "管理员" in refused.text


async def test_the_big_screen_shows_the_county_at_a_glance_and_says_which_part_is_missing(make_settings):
    dispatch_settings = make_settings("dispatch", auth_dev_issuer=True)
    await ensure_topics(dispatch_settings)
    overdue_soon = report("manhole", case_no="20261202-000901", grid=VILLAGE + "001")
    await publish(dispatch_settings, REPORTS.name, overdue_soon.to_bytes())
    async with serving(dispatch_app(dispatch_settings)) as dispatch_url:
        settings = make_settings(
            "console", auth_dev_issuer=True, console_dispatch_url=dispatch_url, console_sla_url="http://127.0.0.1:9"
        )
        async with running(console_app(settings)) as client:
            await log_in(client, "dispatcher")

            async def counted():
                page = (await client.get("/screen", headers=HTML)).text
                return page if '<span class="value">1</span><span class="label">在办案件</span>' in page else None

            page = await eventually(counted)
            assert '<span class="value">1</span><span class="label">今日新增</span>' in page
            assert 'class="grid-open"' in page and 'http-equiv="refresh"' in page
            assert '<a class="back" href="/">返回工作台</a>' in page  # the wall screen leads back
            # sla is not reachable here: its part says so, the rest shows.
            assert "办理时限服务（sla）暂时无法访问" in page and "本月按期办结率" in page and "无数据" in page
