"""Dispatch against real Kafka and PostgreSQL: the case lifecycle through the API, permissions,
idempotent commands, responsibility-list versions, and county/town/village instances sharing one
event stream."""

import asyncio
import uuid
from contextlib import AsyncExitStack

import asyncpg
import pytest

from services.dispatch.app import create_app as dispatch_app
from services.dispatch.domain import replay
from shared.events import MediaAttached, ReportPlace, ReportSubmitted, ReportSubmittedV1, new_event, utcnow
from shared.topics import CASES, MEDIA, REPORTS, ensure_topics
from tests.support import bearer, eventually, publish, read_topic, running

COUNTY, TOWN, VILLAGE = "330727", "330727001", "330727001002"


def report(
    category: str | None,
    *,
    village: str | None = VILLAGE,
    lat: float | None = 29.08,
    lng: float | None = 120.04,
    case_no: str | None = None,
    description: str | None = None,
    grid: str | None = None,
    address: str | None = None,
):
    """report.submitted as intake publishes it, placed in `village` (None: only an address, not placed yet)."""
    place = ReportPlace(
        division_code=village or COUNTY,
        village_code=village,
        town_code=village and village[:9],
        grid_code=grid,
        lat=lat,
        lng=lng,
    )
    payload = ReportSubmitted(
        report_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        description=description or "测试上报：" + (category or "未分类"),
        category=category,
        case_no=case_no,
        address=address,
        place=place,
        channel="api",
        submitted_at=utcnow(),
    )
    return new_event(
        payload,
        producer="intake",
        jurisdiction_code=place.division_code,
        key=str(payload.case_id),
        correlation_id=payload.report_id,
    )


async def case_of(client, headers, case_id) -> dict | None:
    r = await client.get(f"/api/v1/cases/{case_id}", headers=headers)
    return r.json() if r.status_code == 200 else None


def attached(case_id, media_id, role: str, flags=()):
    """media.attached as media publishes it: a photo it holds for the case."""
    payload = MediaAttached(
        media_id=media_id,
        case_id=case_id,
        role=role,
        content_type="image/jpeg",
        sha256="a" * 64,
        flags=list(flags),
        attached_at=utcnow(),
    )
    return new_event(payload, producer="media", jurisdiction_code=COUNTY, key=str(case_id))


async def knows_evidence(client, headers, case_id, media_id) -> bool:
    case = await case_of(client, headers, case_id)
    return bool(case) and str(media_id) in {e["media_id"] for e in case["evidence"]}


async def test_lifecycle_permissions_and_history_rebuilt_from_the_topic(make_settings):
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    event = report("manhole")
    await publish(settings, REPORTS.name, event.to_bytes())
    case_id = event.payload.case_id
    dispatcher = bearer(settings, "dispatcher")
    zhujian = bearer(settings, "handler", department_code="zhujian")
    police = bearer(settings, "handler", department_code="police")
    other_town = bearer(settings, "dispatcher", jurisdiction_code="330727002")
    async with running(dispatch_app(settings)) as client:
        case = await eventually(lambda: case_of(client, dispatcher, case_id))
        assert (case["status"], case["department_code"], case["seq"]) == ("dispatched", "zhujian", 1)

        async def act(action, headers, expect=200, **body):
            r = await client.post(f"/api/v1/cases/{case_id}/{action}", json=body, headers=headers)
            assert r.status_code == expect, r.text
            return r.json()

        # refusals: no token, wrong department, wrong town, wrong role; an illegal transition changes nothing
        assert (await client.get(f"/api/v1/cases/{case_id}")).status_code == 401
        assert (await client.get(f"/api/v1/cases/{case_id}", headers=other_town)).status_code == 403
        assert (await client.get(f"/api/v1/cases/{case_id}", headers=police)).status_code == 403
        problem = await act("acknowledge", police, 403)
        assert problem["status"] == 403 and problem["type"].endswith("forbidden")
        await act("cancel", zhujian, 403, reason="x")
        problem = await act("resolve", zhujian, 409, result="done", after_media_ids=[str(uuid.uuid4())])
        assert problem["type"].endswith("illegal-transition")
        assert (await case_of(client, dispatcher, case_id))["seq"] == 1

        await act("acknowledge", zhujian)
        await act("start", zhujian)
        await act("resolve", zhujian, 409, result="已更换井盖")  # no "after" photo
        after = str(uuid.uuid4())
        await publish(settings, MEDIA.name, attached(case_id, after, "after").to_bytes())
        await eventually(lambda: knows_evidence(client, dispatcher, case_id, after))
        resolved = await act("resolve", zhujian, result="已更换井盖", after_media_ids=[after])
        assert resolved["status"] == "resolved" and resolved["media"]["after"] == [after]
        await act("verify", dispatcher, 409, rating=9)
        await act("verify", dispatcher, rating=5, comment="满意")
        closed = await act("close", dispatcher)
        assert (closed["status"], closed["seq"], closed["rating"]) == ("closed", 6, 5)

        detail = await case_of(client, dispatcher, case_id)
        assert [t["action"] for t in detail["timeline"]] == [
            "submit",
            "dispatch",
            "acknowledge",
            "start",
            "resolve",
            "verify",
            "close",
        ]

        handler_list = (await client.get("/api/v1/cases", headers=police)).json()
        assert handler_list["cases"] == []
        mine = (await client.get("/api/v1/cases", params={"status": "closed"}, headers=zhujian)).json()
        assert [c["case_id"] for c in mine["cases"]] == [str(case_id)]

    events = await read_topic(settings, CASES.name, until=lambda ms: len(ms) >= 6)
    assert [e["type"] for e in events] == [
        "case.dispatched",
        "case.acknowledged",
        "case.started",
        "case.resolved",
        "case.verified",
        "case.closed",
    ]
    rebuilt = replay(events + events[:3])  # duplicates change nothing
    assert (rebuilt["status"], rebuilt["seq"], rebuilt["department_code"]) == ("closed", 6, "zhujian")


async def test_commands_are_idempotent_and_lists_paginate(make_settings):
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    events = [report("illegal_parking") for _ in range(5)]
    await publish(settings, REPORTS.name, *(e.to_bytes() for e in events))
    dispatcher = bearer(settings, "dispatcher")
    async with running(dispatch_app(settings)) as client:

        async def all_cases():
            r = (await client.get("/api/v1/cases", params={"category": "illegal_parking"}, headers=dispatcher)).json()
            return r if len(r["cases"]) == 5 else None

        await eventually(all_cases)
        seen, cursor = [], None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/api/v1/cases", params=params, headers=dispatcher)).json()
            seen += [c["case_id"] for c in page["cases"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert sorted(seen) == sorted(str(e.payload.case_id) for e in events) and len(seen) == 5
        bad = await client.get("/api/v1/cases", params={"cursor": "nonsense"}, headers=dispatcher)
        assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"

        case_id = events[0].payload.case_id
        headers = dispatcher | {"idempotency-key": "k-1"}
        first = await client.post(f"/api/v1/cases/{case_id}/cancel", json={"reason": "重复上报"}, headers=headers)
        again = await client.post(f"/api/v1/cases/{case_id}/cancel", json={"reason": "重复上报"}, headers=headers)
        assert first.status_code == again.status_code == 200 and first.json() == again.json()
        reused = await client.post(f"/api/v1/cases/{case_id}/cancel", json={"reason": "别的"}, headers=headers)
        assert reused.status_code == 422
        # The same person, moved to another town since: their replay no longer shows this case.
        moved = bearer(settings, "dispatcher", "330727002", subject="dispatcher-330727") | {"idempotency-key": "k-1"}
        replay = await client.post(f"/api/v1/cases/{case_id}/cancel", json={"reason": "重复上报"}, headers=moved)
        assert replay.status_code == 403
        detail = await case_of(client, dispatcher, case_id)
        assert [t["action"] for t in detail["timeline"]].count("cancel") == 1


async def test_case_number_is_kept_carried_and_searchable(make_settings):
    settings = make_settings("dispatch", auth_dev_issuer=True)
    await ensure_topics(settings)
    numbered = report(
        "manhole", case_no="GL20261202-0007", description="幸福路 50% 的井盖翻起来了", grid=VILLAGE + "001"
    )
    other = report("road_damage", case_no="GL20261202-0008", description="人民路坑洼")
    await publish(settings, REPORTS.name, numbered.to_bytes(), other.to_bytes())
    dispatcher = bearer(settings, "dispatcher")
    async with running(dispatch_app(settings)) as client:
        case = await eventually(lambda: case_of(client, dispatcher, numbered.payload.case_id))
        assert case["case_no"] == "GL20261202-0007"
        await eventually(lambda: case_of(client, dispatcher, other.payload.case_id))

        async def found(q: str) -> list[str]:
            r = await client.get("/api/v1/cases", params={"q": q}, headers=dispatcher)
            assert r.status_code == 200, r.text
            return [c["case_no"] for c in r.json()["cases"]]

        assert await found("GL20261202-0007") == ["GL20261202-0007"]  # the number, exactly
        assert await found("GL20261202") == []  # not a part of it
        assert await found("幸福路") == ["GL20261202-0007"]  # words of the description
        assert await found("50%") == ["GL20261202-0007"] and await found("井_") == []  # wildcards are characters
        # A grid worker (their division is their grid, 15 digits) lists their grid's cases only.
        token = await client.post(
            "/api/v1/auth/dev-tokens",
            json={"subject": "gw", "role": "grid_worker", "jurisdiction_code": VILLAGE + "001"},
        )
        assert token.status_code == 201, token.text
        worker = {"authorization": f"Bearer {token.json()['access_token']}"}
        listed = (await client.get("/api/v1/cases", headers=worker)).json()["cases"]
        assert [c["case_no"] for c in listed] == ["GL20261202-0007"]
        messages = await read_topic(
            settings, CASES.name, until=lambda ms: any(m["key"] == str(numbered.payload.case_id) for m in ms)
        )
        dispatched = next(m for m in messages if m["key"] == str(numbered.payload.case_id))
        assert dispatched["payload"]["case_no"] == "GL20261202-0007"


async def test_cases_are_found_by_address_listed_by_several_statuses_and_counted_per_grid(make_settings):
    settings = make_settings("dispatch", auth_dev_issuer=True)
    await ensure_topics(settings)
    grid = VILLAGE + "001"
    placed = report("manhole", description="井盖翻了", grid=grid, address="城关街道幸福路 18 号")
    loose = report("road_damage", description="坑洼", lat=None, lng=None, village=None, address="人民路口")
    await publish(settings, REPORTS.name, placed.to_bytes(), loose.to_bytes())
    dispatcher, zhujian = bearer(settings, "dispatcher"), bearer(settings, "handler", department_code="zhujian")
    async with running(dispatch_app(settings)) as client:
        case = await eventually(lambda: case_of(client, dispatcher, placed.payload.case_id))
        assert case["address"] == "城关街道幸福路 18 号"
        await eventually(lambda: case_of(client, dispatcher, loose.payload.case_id))

        async def listed(**params) -> set:
            r = await client.get("/api/v1/cases", params=params, headers=dispatcher)
            assert r.status_code == 200, r.text
            return {c["case_id"] for c in r.json()["cases"]}

        assert await listed(q="幸福路") == {str(placed.payload.case_id)}  # words of the address
        both = {str(placed.payload.case_id), str(loose.payload.case_id)}
        assert await listed(status=["dispatched", "acknowledged"]) == both
        assert await listed(status=["closed", "acknowledged"]) == set()
        assert await listed(jurisdiction_code=grid) == {str(placed.payload.case_id)}  # a grid, 15 digits
        unknown = await client.get("/api/v1/cases", params={"status": ["dispatched", "lost"]}, headers=dispatcher)
        assert unknown.status_code == 422 and "lost" in unknown.json()["detail"]

        by_grid = (await client.get("/api/v1/cases/by-grid", headers=dispatcher)).json()["grids"]
        assert {g["grid_code"]: g["open"] for g in by_grid} == {None: 1, grid: 1}
        assert all(g["overdue"] == 0 for g in by_grid)
        # A department counts only its own cases (井盖 is 住建's; 坑洼 too in the demo list: both).
        mine = (await client.get("/api/v1/cases/by-grid", headers=zhujian)).json()["grids"]
        assert sum(g["open"] for g in mine) == sum(
            1 for c in (await client.get("/api/v1/cases", headers=zhujian)).json()["cases"]
        )
        outside = await client.get("/api/v1/cases/by-grid", params={"jurisdiction_code": "330728"}, headers=dispatcher)
        assert outside.status_code == 403


async def test_new_list_version_decides_the_next_dispatch(make_settings):
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    admin, dispatcher = bearer(settings, "admin"), bearer(settings, "dispatcher")
    async with running(dispatch_app(settings)) as client:
        current = (await client.get("/api/v1/responsibility-list", headers=dispatcher)).json()["current"]
        document = current | {
            "version": "demo-2026.2",
            "overrides": current["overrides"] | {COUNTY: {"noise": {"lead": "chengguan"}}},
        }
        assert (await client.post("/api/v1/responsibility-list", json=document, headers=dispatcher)).status_code == 403
        village_admin = bearer(settings, "admin", VILLAGE)  # administers a village, not the county's centre
        assert (
            await client.post("/api/v1/responsibility-list", json=document, headers=village_admin)
        ).status_code == 403
        bad = await client.post(
            "/api/v1/responsibility-list", json=document | {"levels": {"town": {"noise": {}}}}, headers=admin
        )
        assert bad.status_code == 422
        assert bad.json()["errors"] == [{"field": "levels.town.noise", "message": "请选择主办部门"}]
        assert (await client.post("/api/v1/responsibility-list", json=document, headers=admin)).status_code == 201
        assert (await client.post("/api/v1/responsibility-list", json=document, headers=admin)).status_code == 409
        versions = (await client.get("/api/v1/responsibility-list", headers=dispatcher)).json()["versions"]
        assert [v["version"] for v in versions][:2] == ["demo-2026.2", current["version"]]
        earlier = await client.get(f"/api/v1/responsibility-list/versions/{current['version']}", headers=dispatcher)
        assert earlier.json()["document"] == current
        missing = await client.get("/api/v1/responsibility-list/versions/nope", headers=dispatcher)
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]

        event = report("noise")
        await publish(settings, REPORTS.name, event.to_bytes())
        case = await eventually(lambda: case_of(client, dispatcher, event.payload.case_id))
        assert (case["department_code"], case["responsibility_list_version"]) == ("chengguan", "demo-2026.2")
        assert case["rule"] == f"override:{COUNTY}:noise->chengguan"


@pytest.fixture
async def level_databases(infra, template_database):
    """One database per dispatch level, as each level runs its own instance."""
    names = {level: f"t_{level}_{uuid.uuid4().hex[:8]}" for level in ("county", "town", "village")}
    admin = await asyncpg.connect(infra.database_url("postgres"))
    try:
        for name in names.values():
            await admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    finally:
        await admin.close()
    return {level: infra.database_url(name) for level, name in names.items()}


async def test_county_town_and_village_instances_share_one_stream(make_settings, level_databases):
    centres = [COUNTY, TOWN, VILLAGE]
    code = {"county": COUNTY, "town": TOWN, "village": VILLAGE}
    make = {
        level: (
            lambda level=level: dispatch_app(
                make_settings(
                    "dispatch",
                    jurisdiction_code=code[level],
                    jurisdiction_level=level,
                    dispatch_centres=centres,
                    database_url=level_databases[level],
                )
            )
        )
        for level in code
    }
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    village_case = report("exposed_garbage", case_no="20261202-000300")  # villages settle their own garbage
    town_case = report("street_vendor")  # towns handle street vendors
    county_case = report("manhole")  # only the county's construction bureau
    elsewhere = report("exposed_garbage", village="330727002003")  # neither its village nor town runs a centre
    await publish(settings, REPORTS.name, *(e.to_bytes() for e in (village_case, town_case, county_case, elsewhere)))

    async with AsyncExitStack() as stack:
        client = {level: await stack.enter_async_context(running(factory())) for level, factory in make.items()}
        token = {level: bearer(settings, "dispatcher", jurisdiction_code=code[level]) for level in code}

        async def owned_by(level, case_id, status="dispatched"):
            case = await case_of(client[level], token[level], case_id)
            return case if case and case["status"] == status else None

        assert (await eventually(lambda: owned_by("village", village_case.payload.case_id)))[
            "department_code"
        ] == "village_committee"
        assert (await eventually(lambda: owned_by("town", town_case.payload.case_id)))[
            "department_code"
        ] == "town_office"
        assert (await eventually(lambda: owned_by("county", county_case.payload.case_id)))[
            "department_code"
        ] == "zhujian"
        assert (await eventually(lambda: owned_by("county", elsewhere.payload.case_id)))["department_code"] == "huanwei"

        # The village cannot settle it: escalate (上报) to the town, which takes it over through the stream.
        r = await client["village"].post(
            f"/api/v1/cases/{village_case.payload.case_id}/escalate",
            json={"reason": "需要镇里统一清运"},
            headers=token["village"],
        )
        assert r.status_code == 200 and r.json()["status"] == "escalated"
        taken = await eventually(lambda: owned_by("town", village_case.payload.case_id))
        assert (taken["department_code"], taken["owner_code"], taken["seq"]) == ("town_office", TOWN, 3)
        assert taken["case_no"] == "20261202-000300"  # the escalated case's number goes up with it

        # Restart the town instance mid-stream: what arrived meanwhile is handled once, nothing is lost.
        await stack.aclose()
    later = [report("street_vendor") for _ in range(3)]
    await publish(settings, REPORTS.name, *(e.to_bytes() for e in later))
    async with running(make["town"]()) as town:
        for event in later:
            await eventually(lambda event=event: case_of(town, token["town"], event.payload.case_id))

    counts = {}
    for level, url in level_databases.items():
        db = await asyncpg.connect(url)
        try:
            counts[level] = {
                str(r["case_id"]): r["status"] for r in await db.fetch("SELECT case_id, status FROM dispatch.cases")
            }
            assert await db.fetchval("SELECT count(*) FROM dispatch.case_timeline WHERE action = 'dispatch'") == len(
                counts[level]
            )
        finally:
            await db.close()
    assert counts["village"] == {str(village_case.payload.case_id): "escalated"}
    assert set(counts["town"]) == {str(e.payload.case_id) for e in (town_case, village_case, *later)}
    assert set(counts["county"]) == {str(county_case.payload.case_id), str(elsewhere.payload.case_id)}


async def test_demo_county_seed_and_recurring_problem_flagged(make_settings, county):
    from services.dispatch.seed import seed

    settings = make_settings("dispatch")
    await ensure_topics(settings)
    assert await seed(settings, county) == {"towns": 12, "villages": 152, "grids": 613}
    assert await seed(settings, county) == {"towns": 12, "villages": 152, "grids": 613}  # idempotent
    first, again = report("road_damage", lat=29.0829, lng=120.0546), report("road_damage", lat=29.0830, lng=120.0547)
    await publish(settings, REPORTS.name, first.to_bytes())
    dispatcher = bearer(settings, "dispatcher")
    async with running(dispatch_app(settings)) as client:
        await eventually(lambda: case_of(client, dispatcher, first.payload.case_id))
        await publish(settings, REPORTS.name, again.to_bytes())
        case = await eventually(lambda: case_of(client, dispatcher, again.payload.case_id))
        assert case["recurrence_of"] == str(first.payload.case_id)  # 回潮: same problem, same place
        assert case["timeline"][1]["detail"]["recurrence_of"] == str(first.payload.case_id)

        town = (await client.get(f"/api/v1/jurisdictions/{TOWN}", headers=dispatcher)).json()
        assert town["level"] == "town" and len(town["children"]) >= 5
        village = (await client.get(f"/api/v1/jurisdictions/{town['children'][0]['code']}", headers=dispatcher)).json()
        assert village["grids"] and village["grids"][0]["worker_name"] and village["grids"][0]["group_id"]
        missing = await client.get("/api/v1/jurisdictions/330727999", headers=dispatcher)
        assert missing.status_code == 404 and missing.json()["status"] == 404
        # A town's dispatcher sees its own villages' grid workers, not another town's, nor the county's.
        neighbour = bearer(settings, "dispatcher", "330727002")
        assert (await client.get(f"/api/v1/jurisdictions/{village['code']}", headers=neighbour)).status_code == 403
        county = (await client.get(f"/api/v1/jurisdictions/{COUNTY}", headers=neighbour)).json()
        assert county["code"] == COUNTY and county["grids"] == []


async def test_with_several_centres_one_of_them_answers_each_staff_command(make_settings, level_databases):
    """A WeCom command naming a number no centre holds is answered once, by the county centre (it
    reads every report); one naming a town's case is answered once, by the town."""
    from shared.events import StaffCommand
    from shared.topics import STAFF_ANSWERS, STAFF_COMMANDS

    centres = [COUNTY, TOWN]
    county = dispatch_app(make_settings("dispatch", dispatch_centres=centres, database_url=level_databases["county"]))
    town = dispatch_app(
        make_settings(
            "dispatch",
            jurisdiction_code=TOWN,
            jurisdiction_level="town",
            dispatch_centres=centres,
            database_url=level_databases["town"],
        )
    )
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    town_case = report("street_vendor", case_no=f"20261202-{uuid.uuid4().int % 10**6:06d}")  # the town's
    await publish(settings, REPORTS.name, town_case.to_bytes())

    def command(case_no: str):
        payload = StaffCommand(
            command_id=uuid.uuid4(),
            source="bot",
            wecom_user_id="nobody",
            case_no=case_no,
            action="query",
            sent_at=utcnow(),
        )
        return new_event(payload, producer="notify", jurisdiction_code=COUNTY, key=case_no)

    unknown, towns = command("20261202-999999"), command(town_case.payload.case_no)
    async with running(county), running(town) as town_client:
        token = bearer(settings, "dispatcher", jurisdiction_code=TOWN)
        await eventually(lambda: case_of(town_client, token, town_case.payload.case_id))
        await publish(settings, STAFF_COMMANDS.name, unknown.to_bytes(), towns.to_bytes())
        await read_topic(settings, STAFF_ANSWERS.name, until=lambda ms: len(ms) >= 2)
        await asyncio.sleep(1.0)  # a second answer to either would have come by now
        answers = await read_topic(settings, STAFF_ANSWERS.name, until=lambda ms: len(ms) >= 2)
    by_command = {}
    for answer in answers:
        by_command.setdefault(answer["payload"]["command_id"], []).append(answer)
    [to_unknown] = by_command[str(unknown.payload.command_id)]
    assert to_unknown["jurisdiction_code"] == COUNTY and to_unknown["payload"]["outcome"] == "refused"
    assert "没有找到案件 20261202-999999" in to_unknown["payload"]["text"]
    [to_towns] = by_command[str(towns.payload.command_id)]
    assert to_towns["payload"]["case_id"] == str(town_case.payload.case_id)  # the town holds it (refusing a stranger)
    assert "没有找到" not in to_towns["payload"]["text"]


async def test_missed_deadline_flags_the_case_and_reaches_the_upper_level(make_settings, level_databases):
    from shared.events import SlaBreached
    from shared.topics import SLA

    centres = [COUNTY, VILLAGE]
    county = dispatch_app(make_settings("dispatch", dispatch_centres=centres, database_url=level_databases["county"]))
    village = dispatch_app(
        make_settings(
            "dispatch",
            jurisdiction_code=VILLAGE,
            jurisdiction_level="village",
            dispatch_centres=centres,
            database_url=level_databases["village"],
        )
    )
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    event = report("exposed_garbage")
    await publish(settings, REPORTS.name, event.to_bytes())
    case_id = event.payload.case_id
    async with running(county) as county_client, running(village) as village_client:
        village_token = bearer(settings, "dispatcher", jurisdiction_code=VILLAGE)
        await eventually(lambda: case_of(village_client, village_token, case_id))
        breach = SlaBreached(
            case_id=case_id,
            stage="acknowledge",
            department_code="village_committee",
            started_at=utcnow(),
            due_at=utcnow(),
            owner_code=VILLAGE,
            jurisdiction_code=VILLAGE,
            category="exposed_garbage",
            case_no="20261124-000042",
            fired_at=utcnow(),
        )
        breached = new_event(breach, producer="sla", jurisdiction_code=VILLAGE, key=str(case_id))
        await publish(settings, SLA.name, breached.to_bytes(), breached.to_bytes())

        async def flagged():
            case = await case_of(village_client, village_token, case_id)
            return case if case["overdue"] else None

        case = await eventually(flagged)
        assert [t["action"] for t in case["timeline"]].count("overdue") == 1
        county_token = bearer(settings, "supervisor")

        async def supervised():
            return (await county_client.get("/api/v1/supervision", headers=county_token)).json()["breaches"]

        [row] = await eventually(supervised)
        assert (row["case_id"], row["case_no"], row["owner_code"], row["department_code"]) == (
            str(case_id),
            "20261124-000042",
            VILLAGE,
            "village_committee",
        )
        handler = bearer(settings, "handler", department_code="huanwei")
        assert (await county_client.get("/api/v1/supervision", headers=handler)).status_code == 403
        # The village's own supervision list has its own missed deadline too (督办 at and below a level).
        village_list = await village_client.get(
            "/api/v1/supervision", headers=bearer(settings, "supervisor", jurisdiction_code=VILLAGE)
        )
        assert [b["case_id"] for b in village_list.json()["breaches"]] == [str(case_id)]


async def test_more_reports_placing_and_reclassifying_a_case(make_settings):
    from shared.events import ReportAttached, ReportLocated

    settings = make_settings("dispatch")
    await ensure_topics(settings)
    first = report("road_damage", village=None, lat=None, lng=None)  # an address only: not placed yet
    case_id = first.payload.case_id
    attached = new_event(
        ReportAttached(
            report_id=uuid.uuid4(),
            case_id=case_id,
            description="同一个坑又有人报",
            category="road_damage",
            channel="h5",
            distance_m=12.5,
            submitted_at=utcnow(),
        ),
        producer="intake",
        jurisdiction_code=COUNTY,
        key=str(case_id),
    )
    located = new_event(
        ReportLocated(
            report_id=first.payload.report_id,
            case_id=case_id,
            lat=29.0829,
            lng=120.0546,
            grid_code=VILLAGE + "001",
            village_code=VILLAGE,
            town_code=TOWN,
            located_by="grid_worker:g1",
            located_at=utcnow(),
        ),
        producer="intake",
        jurisdiction_code=COUNTY,
        key=str(case_id),
    )
    await publish(settings, REPORTS.name, first.to_bytes(), attached.to_bytes(), located.to_bytes())
    dispatcher = bearer(settings, "dispatcher")
    async with running(dispatch_app(settings)) as client:

        async def placed():
            case = await case_of(client, dispatcher, case_id)
            return case if case and case["grid_code"] and case["report_count"] == 2 else None

        case = await eventually(placed)
        assert (case["jurisdiction_code"], case["lat"]) == (VILLAGE, 29.0829)
        assert [t["action"] for t in case["timeline"]][-2:] in (
            ["report_attached", "located"],
            ["located", "report_attached"],
        )
        # It is a sewage problem, not a road one: the right department, and triage learns from it.
        r = await client.post(f"/api/v1/cases/{case_id}/reclassify", json={"category": "sewage"}, headers=dispatcher)
        assert r.status_code == 200, r.text
        assert (r.json()["category"], r.json()["department_code"], r.json()["co_department_codes"]) == (
            "sewage",
            "eco_env",
            ["zhujian"],
        )
        bad = await client.post(
            f"/api/v1/cases/{case_id}/reclassify", json={"category": "nonsense"}, headers=dispatcher
        )
        assert bad.status_code == 409
    corrections = await read_topic(
        settings, REPORTS.name, until=lambda ms: any(m["type"] == "triage.corrected" for m in ms)
    )
    [correction] = [m["payload"] for m in corrections if m["type"] == "triage.corrected"]
    assert (correction["category"], correction["previous_category"]) == ("sewage", "road_damage")
    events = await read_topic(settings, CASES.name, until=lambda ms: len(ms) >= 2)
    assert [(e["type"], e["payload"]["action"]) for e in events] == [
        ("case.dispatched", "dispatch"),
        ("case.dispatched", "reclassify"),
    ]


async def test_a_report_published_as_v1_opens_its_case_where_it_said(make_settings):
    """report.submitted v1 (intake's before v2, still on the topic) carried its place in loose fields."""
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    v1 = ReportSubmittedV1(
        report_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        description="测试上报：manhole",
        category="manhole",
        lat=29.0829,
        lng=120.0546,
        channel="api",
        submitted_at=utcnow(),
        grid_code=VILLAGE + "001",
        village_code=VILLAGE,
        town_code=TOWN,
    )
    event = new_event(v1, producer="intake", jurisdiction_code=COUNTY, key=str(v1.case_id))
    assert event.schema_version == 1
    await publish(settings, REPORTS.name, event.to_bytes())
    dispatcher = bearer(settings, "dispatcher")
    async with running(dispatch_app(settings)) as client:
        case = await eventually(lambda: case_of(client, dispatcher, v1.case_id))
    assert (case["jurisdiction_code"], case["grid_code"], case["lat"], case["lng"]) == (
        VILLAGE,
        VILLAGE + "001",
        29.0829,
        120.0546,
    )
    assert case["department_code"] == "zhujian"


async def test_refusal_comes_before_any_question_about_the_action(make_settings):
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    event = report("road_damage")
    await publish(settings, REPORTS.name, event.to_bytes())
    handler = bearer(settings, "handler", department_code="zhujian")
    async with running(dispatch_app(settings)) as client:
        await eventually(lambda: case_of(client, bearer(settings, "dispatcher"), event.payload.case_id))
        r = await client.post(
            f"/api/v1/cases/{event.payload.case_id}/reclassify", json={"category": "nonsense"}, headers=handler
        )
        assert r.status_code == 403  # a handler may not reclassify at all: not "unknown category"


async def test_a_case_merges_only_into_another_open_case_of_this_centre(make_settings):
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    first, second = report("illegal_parking"), report("illegal_parking")
    await publish(settings, REPORTS.name, first.to_bytes(), second.to_bytes())
    dispatcher = bearer(settings, "dispatcher")
    async with running(dispatch_app(settings)) as client:
        for event in (first, second):
            await eventually(lambda event=event: case_of(client, dispatcher, event.payload.case_id))
        dup, kept = second.payload.case_id, first.payload.case_id

        async def merge(into):
            return await client.post(
                f"/api/v1/cases/{dup}/merge", json={"into_case_id": str(into), "reason": "一事多报"}, headers=dispatcher
            )

        nowhere = await merge(uuid.uuid4())
        assert nowhere.status_code == 409 and "no case" in nowhere.json()["detail"]
        merged = await merge(kept)
        assert merged.status_code == 200 and merged.json()["status"] == "merged"
        assert merged.json()["merged_into"] == str(kept)
        back = await client.post(
            f"/api/v1/cases/{kept}/merge", json={"into_case_id": str(dup), "reason": "x"}, headers=dispatcher
        )
        assert back.status_code == 409 and "merged" in back.json()["detail"]  # not into a case that is gone


async def test_a_search_for_a_character_the_database_cannot_store_is_refused(make_settings):
    # Found by fuzzing: GET /api/v1/cases?q=%00 answered 500 (PostgreSQL refuses U+0000 in text).
    settings = make_settings("dispatch")
    dispatcher = bearer(settings, "dispatcher")
    async with running(dispatch_app(settings)) as client:
        r = await client.get("/api/v1/cases", params={"q": "井盖\x00"}, headers=dispatcher)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 422 and r.json()["type"].endswith("unstorable-character")
        assert (await client.get("/api/v1/cases", params={"q": "井盖"}, headers=dispatcher)).status_code == 200


async def test_a_reporters_answer_to_the_review_is_the_review_and_dissatisfied_reopens(make_settings):
    from shared.events import ReporterRated

    settings = make_settings("dispatch")
    await ensure_topics(settings)
    happy, unhappy = report("manhole"), report("manhole")
    await publish(settings, REPORTS.name, happy.to_bytes(), unhappy.to_bytes())
    dispatcher, zhujian = bearer(settings, "dispatcher"), bearer(settings, "handler", department_code="zhujian")

    def rated(event, rating: str):
        payload = ReporterRated(
            report_id=event.payload.report_id,
            case_id=event.payload.case_id,
            rating=rating,
            channel="wechat_group",
            rated_at=utcnow(),
        )
        return new_event(payload, producer="intake", jurisdiction_code=VILLAGE, key=str(payload.case_id)).to_bytes()

    async with running(dispatch_app(settings)) as client:
        for event in (happy, unhappy):
            case_id, photo = event.payload.case_id, uuid.uuid4()
            await eventually(lambda case_id=case_id: case_of(client, dispatcher, case_id))
            await publish(settings, MEDIA.name, attached(case_id, photo, "after").to_bytes())
            await eventually(lambda case_id=case_id, photo=photo: knows_evidence(client, dispatcher, case_id, photo))
            for action, body in (
                ("acknowledge", {}),
                ("resolve", {"result": "已更换", "after_media_ids": [str(photo)]}),
            ):
                answer = await client.post(f"/api/v1/cases/{case_id}/{action}", json=body, headers=zhujian)
                assert answer.status_code == 200, answer.text
        await publish(settings, REPORTS.name, rated(happy, "satisfied"), rated(unhappy, "dissatisfied"))

        async def settled(case_id, status):
            case = await case_of(client, dispatcher, case_id)
            return case if case["status"] == status else None

        verified = await eventually(lambda: settled(happy.payload.case_id, "verified"))
        assert verified["rating"] == 5
        step = verified["timeline"][-1]
        assert (step["action"], step["actor"], step["detail"]["comment"]) == (
            "verify",
            "reporter:wechat_group",
            "群众回复：满意",
        )
        reopened = await eventually(lambda: settled(unhappy.payload.case_id, "dispatched"))
        assert [t["action"] for t in reopened["timeline"]][-2:] == ["verify", "reopen"]
        assert reopened["timeline"][-2]["detail"]["rating"] == 1 and "不满意" in reopened["timeline"][-1]["reason"]
        # A late second answer changes nothing: the case no longer waits for one.
        await publish(settings, REPORTS.name, rated(happy, "dissatisfied"))
        await asyncio.sleep(1)
        assert (await case_of(client, dispatcher, happy.payload.case_id))["status"] == "verified"


async def test_a_return_is_ruled_on_and_resolve_needs_this_cases_after_photos(make_settings):
    settings = make_settings("dispatch")
    await ensure_topics(settings)
    event, other = report("manhole"), report("manhole")
    await publish(settings, REPORTS.name, event.to_bytes(), other.to_bytes())
    case_id = event.payload.case_id
    dispatcher = bearer(settings, "dispatcher")
    zhujian = bearer(settings, "handler", department_code="zhujian")
    async with running(dispatch_app(settings)) as client:
        await eventually(lambda: case_of(client, dispatcher, case_id))

        async def act(action, headers, expect=200, **body):
            r = await client.post(f"/api/v1/cases/{case_id}/{action}", json=body, headers=headers)
            assert r.status_code == expect, r.text
            return r.json()

        # A ruling on a case nobody returned: 409, saying why, and nothing changes.
        problem = await act("overrule-return", dispatcher, 409, reason="属住建局")
        assert problem["type"].endswith("illegal-transition") and "only a case that is returned" in problem["detail"]
        assert (await case_of(client, dispatcher, case_id))["seq"] == 1

        await act("acknowledge", zhujian)
        evidence = str(uuid.uuid4())
        returned = await act("return", zhujian, reason="该井盖属燃气公司", evidence_media_ids=[evidence])
        assert returned["status"] == "returned"
        await act("transfer", dispatcher, 409, department_code="gas")  # the ruling is not bypassed
        await act("overrule-return", zhujian, 403, reason="x")  # the department does not rule on itself
        overruled = await act("overrule-return", dispatcher, reason="市政道路井盖，属住建局管养")
        assert (overruled["status"], overruled["department_code"]) == ("acknowledged", "zhujian")
        # Returned again and upheld this time: the case goes to another department.
        await act("return", zhujian, reason="经核实为燃气阀门井")
        await act("uphold-return", dispatcher, 409, reason="x", department_code="zhujian")
        upheld = await act("uphold-return", dispatcher, reason="燃气阀门井", department_code="gas")
        assert (upheld["status"], upheld["department_code"]) == ("dispatched", "gas")

        detail = await case_of(client, dispatcher, case_id)
        disputes = [(t["action"], t["status"], t["reason"], t["detail"]) for t in detail["timeline"][3:]]
        assert disputes == [
            (
                "return",
                "returned",
                "该井盖属燃气公司",
                {"department_code": "zhujian", "evidence_media_ids": [evidence]},
            ),
            (
                "overrule_return",
                "acknowledged",
                "市政道路井盖，属住建局管养",
                {"department_code": "zhujian", "ruling": "overruled"},
            ),
            ("return", "returned", "经核实为燃气阀门井", {"department_code": "zhujian", "evidence_media_ids": []}),
            (
                "uphold_return",
                "dispatched",
                "燃气阀门井",
                {"department_code": "gas", "ruling": "upheld", "returned_by": "zhujian"},
            ),
        ]

        # 办结 by gas: only with "after" photos media holds for this case.
        gas = bearer(settings, "handler", department_code="gas")
        await act("acknowledge", gas)
        mine, before, elsewhere, reused = (str(uuid.uuid4()) for _ in range(4))
        await publish(
            settings,
            MEDIA.name,
            attached(case_id, before, "before").to_bytes(),
            attached(other.payload.case_id, elsewhere, "after").to_bytes(),
            attached(case_id, reused, "after", flags=["reused_photo"]).to_bytes(),
            attached(case_id, mine, "after").to_bytes(),
            attached(uuid.uuid4(), str(uuid.uuid4()), "after").to_bytes(),  # another centre's case: ignored
        )
        await eventually(lambda: knows_evidence(client, dispatcher, case_id, mine))
        await eventually(lambda: knows_evidence(client, dispatcher, other.payload.case_id, elsewhere))
        for media_id, why in ((elsewhere, "不是本案件的整改后照片"), (before, "整改前照片")):
            problem = await act("resolve", gas, 409, result="已更换阀门井盖", after_media_ids=[mine, media_id])
            assert why in problem["detail"]
        assert (await case_of(client, dispatcher, case_id))["status"] == "acknowledged"  # nothing changed
        resolved = await act("resolve", gas, result="已更换阀门井盖", after_media_ids=[mine, reused])
        assert resolved["status"] == "resolved"
        # What media flagged is in front of the dispatcher: when it arrived and on the 办结 itself.
        detail = await case_of(client, dispatcher, case_id)
        flagged = [t for t in detail["timeline"] if t["action"] == "evidence_flagged"]
        assert [t["detail"] for t in flagged] == [{"media_id": reused, "role": "after", "flags": ["reused_photo"]}]
        assert detail["timeline"][-1]["detail"]["flagged_media"] == {reused: ["reused_photo"]}
        assert {e["media_id"]: e["flags"] for e in detail["evidence"]} == {
            before: [],
            reused: ["reused_photo"],
            mine: [],
        }
