"""Counties imported from their files into PostgreSQL: versions, all or nothing; and two counties
(the demo county and the sample county 330799) running side by side in one deployment — one
stream, each county its own intake, dispatch and map — where one county's staff never see or act
on the other's cases, people, rosters or scorecards."""

import io
import json
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from openpyxl import load_workbook

from devtools.demo_county import DEMO_DIR, SAMPLE_DIR
from services.dispatch.app import create_app as dispatch_app
from services.dispatch.county_import import WrongCounty, import_county
from services.intake.app import create_app as intake_app
from services.sla.app import create_app as sla_app
from shared.county_files import InvalidCountyFiles
from shared.events import utcnow
from shared.jurisdictions import load_county
from shared.logs import BEIJING
from shared.topics import ensure_topics
from tests.support import bearer, eventually, running

A, B = "330727", "330799"
SONGWU = "330799101201"  # 松坞村
MICRO = "330799001001001002"  # 湖滨社区第1网格第2微网格


@pytest.fixture
async def county_b_database(infra, template_database):
    """County B's own database (its instances' schemas), as each county runs its own instances."""
    name = f"t_b_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(infra.database_url("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    finally:
        await admin.close()
    return infra.database_url(name)


def edited_copy(source: Path, target: Path, *, rename=(), drop_code: str | None = None, extra_worker=None) -> Path:
    """A copy of a county's files with divisions renamed, a grid dropped or a worker row added."""
    shutil.copytree(source, target)
    divisions = (target / "divisions.csv").read_text(encoding="utf-8")
    for old, new in rename:
        divisions = divisions.replace(old, new)
    (target / "divisions.csv").write_text(divisions, encoding="utf-8")
    if drop_code:
        document = json.loads((target / "grids.geojson").read_text(encoding="utf-8"))
        document["features"] = [f for f in document["features"] if f["properties"].get("grid_code") != drop_code]
        (target / "grids.geojson").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        for name in ("workers.csv", "groups.csv"):
            lines = (target / name).read_text(encoding="utf-8").splitlines(keepends=True)
            (target / name).write_text("".join(x for x in lines if drop_code not in x), encoding="utf-8")
    if extra_worker:
        with (target / "workers.csv").open("a", encoding="utf-8") as f:
            f.write(",".join(extra_worker) + "\n")
    return target


async def state(settings) -> dict:
    db = await asyncpg.connect(settings.database_url)
    try:
        await db.execute(f'SET search_path TO "{settings.database_schema or "dispatch"}"')
        return {
            "versions": [tuple(r) for r in await db.fetch("SELECT version, content_hash FROM county_versions")],
            "songwu": await db.fetchval("SELECT name FROM jurisdictions WHERE code = $1", SONGWU),
            "micro": await db.fetchval("SELECT count(*) FROM grids WHERE code = $1", MICRO),
            "grids": await db.fetchval("SELECT count(*) FROM grids"),
            "kinds": dict(await db.fetch("SELECT kind, count(*) FROM grids GROUP BY kind")),
        }
    finally:
        await db.close()


async def test_import_makes_versions_and_is_all_or_nothing(make_settings, county_b_database, tmp_path):
    map_path = tmp_path / "b" / "county.geojson"
    settings = make_settings("dispatch", jurisdiction_code=B, database_url=county_b_database, county_map_path=map_path)
    first = await import_county(settings, SAMPLE_DIR)
    assert (first.version, first.changed) == (1, True)
    assert first.counts == {
        "towns": 3,
        "villages": 6,
        "grids": 24,
        "special_grids": 1,
        "micro_grids": 2,
        "groups": 30,
    }
    county = load_county(map_path)
    after_first = await state(settings)
    assert after_first["versions"] == [(1, county.content_hash)] and county.version == 1
    assert after_first["kinds"] == {"ordinary": 24, "special": 1, "micro": 2}
    assert (map_path.parent / "groups.csv").read_text(encoding="utf-8").count("\n") == 31
    again = await import_county(settings, SAMPLE_DIR)
    assert (again.version, again.changed) == (1, False)  # the same content is no new version

    v2 = edited_copy(SAMPLE_DIR, tmp_path / "v2", rename=[("松坞村", "松坞新村")], drop_code=MICRO)
    assert (await import_county(settings, v2)).version == 2
    after_v2 = await state(settings)
    assert (after_v2["songwu"], after_v2["micro"], len(after_v2["versions"])) == ("松坞新村", 0, 2)
    map_v2 = map_path.read_bytes()
    assert load_county(map_path).version == 2

    # One bad row: the error names its file and line; tables and files stay at version 2.
    lines = (v2 / "workers.csv").read_text(encoding="utf-8").count("\n")
    bad = edited_copy(
        v2, tmp_path / "bad", rename=[("松坞新村", "松坞三村")], extra_worker=["gw1", "某人", "330799101201009"]
    )
    with pytest.raises(InvalidCountyFiles) as raised:
        await import_county(settings, bad)
    assert raised.value.errors == [f"workers.csv:{lines + 1}: unknown grid '330799101201009' (not in grids.geojson)"]
    assert await state(settings) == after_v2 and map_path.read_bytes() == map_v2

    # Valid files, but the map cannot be written: the database's transaction is rolled back too.
    v3 = edited_copy(v2, tmp_path / "v3", rename=[("松坞新村", "松坞三村")])
    (tmp_path / "not-a-directory").write_text("x")
    with pytest.raises(OSError):
        await import_county(settings, v3, map_path=tmp_path / "not-a-directory" / "county.geojson")
    assert await state(settings) == after_v2

    # Another county's files are refused by this county's instance.
    with pytest.raises(WrongCounty):
        await import_county(settings, DEMO_DIR)
    assert await state(settings) == after_v2


async def test_two_counties_side_by_side_never_see_each_other(make_settings, county_b_database, tmp_path):
    settings_a = make_settings("dispatch", county_map_path=tmp_path / "a" / "county.geojson")
    settings_b = make_settings(
        "dispatch",
        jurisdiction_code=B,
        database_url=county_b_database,
        county_map_path=tmp_path / "b" / "county.geojson",
    )
    await ensure_topics(settings_a)
    assert (await import_county(settings_a, DEMO_DIR)).counts["grids"] == 613
    assert (await import_county(settings_b, SAMPLE_DIR)).counts["grids"] == 24
    intake_a = make_settings("intake", county_map_path=settings_a.county_map_path)
    intake_b = make_settings("intake", database_url=county_b_database, county_map_path=settings_b.county_map_path)
    sla = make_settings("sla")

    staff = {
        county: {
            "dispatcher": bearer(settings_a, "dispatcher", county),
            "admin": bearer(settings_a, "admin", county, subject=f"admin-{county}"),
            "supervisor": bearer(settings_a, "supervisor", county),
            "handler": bearer(settings_a, "handler", county, department_code="zhujian"),
        }
        for county in (A, B)
    }
    school = (29.4025, 120.4040)  # inside 南湖中学's special grid (WGS-84)
    report = {"description": "井盖翻起来了", "category": "manhole"}
    async with (
        running(dispatch_app(settings_a)) as dispatch_a,
        running(dispatch_app(settings_b)) as dispatch_b,
        running(intake_app(intake_a)) as reports_a,
        running(intake_app(intake_b)) as reports_b,
        running(sla_app(sla)) as sla_client,
    ):
        # Each county's intake places its own points, and refuses the other county's.
        r_a = await reports_a.post("/api/v1/reports", json=report | {"lat": 29.0829, "lng": 120.0546})
        r_b = await reports_b.post("/api/v1/reports", json=report | {"lat": school[0], "lng": school[1]})
        assert r_a.status_code == r_b.status_code == 201, (r_a.text, r_b.text)
        assert (
            await reports_b.post("/api/v1/reports", json=report | {"lat": 29.0829, "lng": 120.0546})
        ).status_code == 422
        case_a, case_b = r_a.json()["case_id"], r_b.json()["case_id"]

        async def case(client, headers, case_id):
            r = await client.get(f"/api/v1/cases/{case_id}", headers=headers)
            return r.json() if r.status_code == 200 else None

        found_a = await eventually(lambda: case(dispatch_a, staff[A]["dispatcher"], case_a))
        found_b = await eventually(lambda: case(dispatch_b, staff[B]["dispatcher"], case_b))
        assert found_a["jurisdiction_code"].startswith(A)
        assert (found_b["grid_code"], found_b["jurisdiction_code"]) == ("330799001001901", "330799001001")
        # Each county's dispatch holds its own cases only (the stream is shared).
        assert await case(dispatch_a, staff[A]["dispatcher"], case_b) is None
        assert await case(dispatch_b, staff[B]["dispatcher"], case_a) is None

        for role in ("dispatcher", "supervisor", "admin", "handler"):
            them = staff[B][role]
            # list: their own county's (nothing here), never county A's
            listed = await dispatch_a.get("/api/v1/cases", headers=them)
            assert listed.status_code == 200 and listed.json()["cases"] == []
            assert (
                await dispatch_a.get("/api/v1/cases", params={"jurisdiction_code": A}, headers=them)
            ).status_code == 403
            assert (await dispatch_a.get(f"/api/v1/cases/{case_a}", headers=them)).status_code == 403
            acted = await dispatch_a.post(f"/api/v1/cases/{case_a}/acknowledge", json={}, headers=them)
            assert acted.status_code == 403, acted.text
            assert (await dispatch_a.get(f"/api/v1/jurisdictions/{A}001", headers=them)).status_code == 403
        assert (await case(dispatch_a, staff[A]["dispatcher"], case_a))["status"] == found_a["status"]

        # Directory and rosters: county A's admin records a person and a shift; B's admin sees neither.
        person = {
            "name": "李强",
            "wecom_user_id": "liqiang",
            "mobile": "13800001234",
            "roles": [{"role": "handler", "jurisdiction_code": A, "department_code": "zhujian"}],
        }
        saved = await dispatch_a.put("/api/v1/directory/people/liqiang", json=person, headers=staff[A]["admin"])
        assert saved.status_code == 200, saved.text
        starts = utcnow()
        shift = {
            "department_code": "zhujian",
            "jurisdiction_code": A,
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=8)).isoformat(),
            "on_duty": "liqiang",
        }
        added = await dispatch_a.post("/api/v1/directory/rosters/shifts", json=shift, headers=staff[A]["admin"])
        assert added.status_code == 201, added.text
        b_admin = staff[B]["admin"]
        assert (await dispatch_a.get("/api/v1/directory/people", headers=b_admin)).json()["people"] == []
        assert (
            await dispatch_a.get("/api/v1/directory/people", params={"jurisdiction_code": A}, headers=b_admin)
        ).status_code == 403
        assert (await dispatch_a.get("/api/v1/directory/people/liqiang", headers=b_admin)).status_code == 404
        assert (
            await dispatch_a.put("/api/v1/directory/people/liqiang", json=person, headers=b_admin)
        ).status_code == 403
        assert (await dispatch_a.delete("/api/v1/directory/people/liqiang", headers=b_admin)).status_code == 404
        assert (await dispatch_a.get("/api/v1/directory/audit", headers=b_admin)).status_code == 403
        assert (await dispatch_a.get("/api/v1/directory/audit", headers=staff[A]["admin"])).json()["entries"]
        for role in ("admin", "dispatcher", "handler"):
            for path in ("/api/v1/directory/rosters/zhujian", "/api/v1/directory/rosters/zhujian/on-duty"):
                r = await dispatch_a.get(path, params={"jurisdiction_code": A}, headers=staff[B][role])
                assert r.status_code == 403, (role, path, r.text)
        removed = await dispatch_a.delete(
            f"/api/v1/directory/rosters/shifts/{added.json()['shift_id']}", headers=b_admin
        )
        assert removed.status_code == 403
        on_duty = await dispatch_a.get(
            "/api/v1/directory/rosters/zhujian/on-duty", params={"jurisdiction_code": A}, headers=staff[A]["dispatcher"]
        )
        assert on_duty.json()["on_duty"] == "liqiang"

        # Scorecards (one sla for the deployment): each county's staff count their own county's cases.
        async def received(headers) -> int | None:
            today = utcnow().astimezone(BEIJING).date()  # scorecards count by Beijing's days
            r = await sla_client.get(
                "/api/v1/scorecards",
                params={
                    "by": "county",
                    "period": "all",
                    "since": str(today - timedelta(days=1)),
                    "until": str(today + timedelta(days=1)),
                },
                headers=headers,
            )
            rows = r.json()["rows"]
            return sum(row["received"] for row in rows)

        assert await eventually(lambda: received(staff[A]["supervisor"])) == 1
        assert await eventually(lambda: received(staff[B]["supervisor"])) == 1
        cases_a = await sla_client.get("/api/v1/scorecards/cases", headers=staff[A]["supervisor"])
        cases_b = await sla_client.get("/api/v1/scorecards/cases", headers=staff[B]["supervisor"])
        assert {r["case_id"] for r in cases_a.json()["rounds"]} == {case_a}
        assert {r["case_id"] for r in cases_b.json()["rounds"]} == {case_b}
        workbook = await sla_client.get("/api/v1/exports/assessment.xlsx", headers=staff[B]["supervisor"])
        listed = load_workbook(io.BytesIO(workbook.content))["案件清单"]
        numbers = [row[0] for row in listed.iter_rows(min_row=2, values_only=True)]
        assert numbers == [found_b["case_no"] or case_b]
