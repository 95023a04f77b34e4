"""A resident's H5 report through intake, media and dispatch: the form page, a photo, WeChat
(GCJ-02) coordinates and no category; triage routes it, a neighbour's repeat report joins the same
case instead of opening another, and 我要查询 shows each reporter only their own report."""

import io
from contextlib import AsyncExitStack

from PIL import Image

from services.dispatch.app import create_app as dispatch_app
from services.intake.app import create_app as intake_app
from services.media.app import create_app as media_app
from shared.geo import wgs84_to_gcj02
from tests.support import bearer, eventually, running

HERE = (29.0812, 120.0431)  # WGS-84


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), (40, 40, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


async def test_h5_report_is_triaged_dispatched_deduplicated_and_queryable(make_settings, county):
    # The test polls 我要查询 until intake has heard of the dispatch: its per-IP limit (one client
    # here) is not what this test is about, and on a busy machine the polls would reach it.
    overrides = {"intake": {"intake_rate_limit_ip_per_minute": 10_000}}
    apps = {
        name: factory(make_settings(name, **overrides.get(name, {})))
        for name, factory in [("intake", intake_app), ("dispatch", dispatch_app), ("media", media_app)]
    }
    async with AsyncExitStack() as stack:
        client = {name: await stack.enter_async_context(running(app)) for name, app in apps.items()}
        page = await client["intake"].get("/h5/")
        assert page.status_code == 200 and "我要反映" in page.text

        photo = await client["media"].post("/api/v1/media", files={"file": ("scene.jpg", jpeg_bytes(), "image/jpeg")})
        assert photo.status_code == 201, photo.text
        gcj = wgs84_to_gcj02(*HERE)
        answer = await client["intake"].post(
            "/api/v1/reports",
            json={
                "description": "三单元门口的井盖没了，黑洞洞的，刚才有个小孩差点掉下去",
                "lat": gcj[0],
                "lng": gcj[1],
                "coord_system": "gcj02",
                "channel": "h5",
                "reporter_phone": "13812345678",
                "media_ids": [photo.json()["media_id"]],
            },
        )
        assert answer.status_code == 201, answer.text
        first = answer.json()
        assert first["category"] == "manhole" and first["priority"] == "urgent"
        assert first["grid_code"] == county.find_grid(*HERE).grid_code

        dispatcher = bearer(apps["dispatch"].state.settings, "dispatcher")

        async def dispatched():
            r = await client["dispatch"].get(f"/api/v1/cases/{first['case_id']}", headers=dispatcher)
            return r.json() if r.status_code == 200 else None

        # Three services meet over Kafka here; on a loaded machine their consumer groups take a while to join.
        case = await eventually(dispatched, timeout=60)
        assert case["department_code"] == "zhujian" and case["priority"] == "urgent"

        # A neighbour reports the same manhole 20 m away: it joins the case, no second case opens.
        neighbour = (
            await client["intake"].post(
                "/api/v1/reports",
                json={
                    "description": "井盖丢了还没人管，太危险了",
                    "lat": gcj[0] + 0.00018,
                    "lng": gcj[1],
                    "coord_system": "gcj02",
                    "channel": "h5",
                    "reporter_phone": "13900001111",
                },
            )
        ).json()
        assert neighbour["attached_to_case"] is True and neighbour["case_no"] == first["case_no"]

        async def both_follow_the_dispatched_case():
            answers = [
                await client["intake"].post("/api/v1/query", json={"case_no": first["case_no"], "phone": phone})
                for phone in ("13812345678", "13900001111")
            ]
            bodies = [a.json() for a in answers]
            return bodies if all(b.get("status") == "dispatched" for b in bodies) else None

        mine, theirs = await eventually(both_follow_the_dispatched_case, timeout=60, interval=0.5)
        assert mine["status_text"] == "已派单"
        assert [r["description"] for r in mine["reports"]] == ["三单元门口的井盖没了，黑洞洞的，刚才有个小孩差点掉下去"]
        assert [r["description"] for r in theirs["reports"]] == ["井盖丢了还没人管，太危险了"]
        cases = await client["dispatch"].get("/api/v1/cases", headers=dispatcher)
        assert cases.status_code == 200
        assert [c["case_id"] for c in cases.json()["cases"]] == [first["case_id"]]
