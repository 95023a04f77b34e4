"""Open311 GeoReport v2 on intake, JSON and XML, as an existing 311 client would use it."""

import xml.etree.ElementTree as ET

from services.intake.app import create_app
from tests.support import running

KEY = "test-311-key"
HERE = (29.0812, 120.0431)


def _settings(make_settings, **overrides):
    return make_settings("intake", intake_open311_api_keys=[KEY], **overrides)


async def test_discovery_and_services_in_json_and_xml(make_settings):
    async with running(create_app(_settings(make_settings))) as client:
        discovery = (await client.get("/open311/v2/discovery.json")).json()
        [endpoint] = discovery["endpoints"]
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert endpoint["url"].endswith("/open311/v2/") and "text/xml" in endpoint["formats"]
        assert (
            ET.fromstring((await client.get("/open311/v2/discovery.xml")).content)
            .find("endpoints/endpoint/specification")
            .text
            == "http://wiki.open311.org/GeoReport_v2"
        )

        services = (await client.get("/open311/v2/services.json")).json()
        assert len(services) == 33
        manhole = next(s for s in services if s["service_code"] == "manhole")
        assert set(manhole) == {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
        assert manhole["metadata"] is False and manhole["type"] == "realtime" and "井盖" in manhole["service_name"]

        xml = await client.get("/open311/v2/services.xml")
        assert xml.headers["content-type"].startswith("text/xml")
        assert xml.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
        root = ET.fromstring(xml.content)
        assert root.tag == "services" and len(root.findall("service")) == 33
        assert root.find("service/metadata").text == "false"

        definition = (await client.get("/open311/v2/services/manhole.json")).json()
        assert definition == {"service_code": "manhole", "attributes": []}
        assert ET.fromstring((await client.get("/open311/v2/services/manhole.xml")).content).tag == "service_definition"
        missing = await client.get("/open311/v2/services/ufo.json")
        assert missing.status_code == 404 and missing.json()[0]["code"] == 404 and missing.json()[0]["description"]
        other_place = await client.get("/open311/v2/services.json", params={"jurisdiction_id": "110101"})
        assert other_place.status_code == 404
        assert (await client.get("/open311/v2/services.csv")).status_code == 404


async def test_post_and_get_service_requests(make_settings):
    async with running(create_app(_settings(make_settings))) as client:
        posted = await client.post(
            "/open311/v2/requests.json",
            data={
                "api_key": KEY,
                "jurisdiction_id": "330727",
                "service_code": "signboard_lighting",
                "lat": str(HERE[0]),
                "long": str(HERE[1]),
                "description": "文化路路灯连续三晚不亮",
                "phone": "13811112222",
                "account_id": "citizen-7",
                "first_name": "三",
                "last_name": "张",
                "media_url": "https://photos.example.org/311/lamp.jpg",
            },
        )
        assert posted.status_code == 201, posted.text
        [created] = posted.json()
        request_id, token = created["service_request_id"], created["token"]
        assert created["account_id"] == "citizen-7" and "案件编号" in created["service_notice"]

        [one] = (await client.get(f"/open311/v2/requests/{request_id}.json")).json()
        assert one["service_request_id"] == request_id and one["status"] == "open"
        assert one["service_code"] == "signboard_lighting" and one["agency_responsible"] == "城市管理局"
        # Published to ~100 m: where the problem is, not the reporter's doorstep.
        assert (one["lat"], one["long"]) == (round(HERE[0], 3), round(HERE[1], 3))
        assert one["media_url"] == "https://photos.example.org/311/lamp.jpg"
        assert one["requested_datetime"].endswith("Z")
        assert "13811112222" not in str(one) and "citizen-7" not in str(one)

        tokens = (await client.get(f"/open311/v2/tokens/{token}.json")).json()
        assert tokens == [{"service_request_id": request_id, "token": token}]

        xml_post = await client.post(
            "/open311/v2/requests.xml",
            data={
                "api_key": KEY,
                "service_code": "exposed_garbage",
                "address_string": "城关街道东门菜场后面",
                "description": "空地上堆了很多生活垃圾",
            },
        )
        assert xml_post.status_code == 201
        root = ET.fromstring(xml_post.content)
        assert root.tag == "service_requests" and root.find("request/service_request_id").text

        listed = (await client.get("/open311/v2/requests.json")).json()
        assert {r["service_request_id"] for r in listed} >= {request_id}
        assert len(listed) == 2
        by_code = (await client.get("/open311/v2/requests.json", params={"service_code": "exposed_garbage"})).json()
        assert [r["service_code"] for r in by_code] == ["exposed_garbage"]
        assert by_code[0]["address"] == "城关街道东门菜场后面" and by_code[0]["lat"] is None
        by_id = (await client.get("/open311/v2/requests.json", params={"service_request_id": request_id})).json()
        assert [r["service_request_id"] for r in by_id] == [request_id]
        closed = (await client.get("/open311/v2/requests.json", params={"status": "closed"})).json()
        assert closed == []
        future = (await client.get("/open311/v2/requests.json", params={"start_date": "2100-01-01T00:00:00Z"})).json()
        assert future == []
        xml_list = ET.fromstring((await client.get("/open311/v2/requests.xml")).content)
        assert len(xml_list.findall("request")) == 2 and xml_list.find("request/status").text == "open"

        # A report from the H5 form was not published: Open311 neither lists nor shows it.
        h5 = await client.post(
            "/api/v1/reports",
            json={"description": "小区里有人私拉电线", "lat": HERE[0], "lng": HERE[1], "channel": "h5"},
        )
        assert h5.status_code == 201, h5.text
        private = h5.json()["report_id"]
        assert private not in {r["service_request_id"] for r in (await client.get("/open311/v2/requests.json")).json()}
        assert (await client.get(f"/open311/v2/requests/{private}.json")).status_code == 404


async def test_open311_errors_use_the_spec_error_array(make_settings):
    good = {
        "api_key": KEY,
        "service_code": "manhole",
        "lat": str(HERE[0]),
        "long": str(HERE[1]),
        "description": "井盖缺了一块",
    }
    async with running(create_app(_settings(make_settings))) as client:
        cases = [
            ({**good, "api_key": "wrong"}, 403),
            ({k: v for k, v in good.items() if k != "service_code"}, 400),
            ({**good, "service_code": "ufo"}, 404),
            ({k: v for k, v in good.items() if k not in ("lat", "long")}, 400),
            ({**good, "lat": "north"}, 400),
            ({**good, "lat": "30.25", "long": "120.15"}, 400),  # outside the county
            ({**good, "description": ""}, 400),
            ({**good, "phone": "12345"}, 400),
            ({**good, "media_url": "file:///etc/passwd"}, 400),
        ]
        for body, status in cases:
            r = await client.post("/open311/v2/requests.json", data=body)
            assert r.status_code == status, (body, r.text)
            [error] = r.json()
            assert error["code"] == status and error["description"], r.text
        xml = await client.post("/open311/v2/requests.xml", data={**good, "api_key": "wrong"})
        root = ET.fromstring(xml.content)
        assert xml.status_code == 403 and root.tag == "errors" and root.find("error/code").text == "403"
        assert (await client.get("/open311/v2/requests/not-an-id.json")).json()[0]["code"] == 404
        assert (await client.get("/open311/v2/tokens/nope.json")).status_code == 404
        assert (await client.get("/open311/v2/requests.json", params={"status": "maybe"})).status_code == 400
        assert (await client.get("/open311/v2/requests.json", params={"start_date": "yesterday"})).status_code == 400


async def test_a_file_where_text_belongs_is_refused_naming_the_field(make_settings):
    body = {"api_key": KEY, "service_code": "manhole", "lat": str(HERE[0]), "long": str(HERE[1])}
    async with running(create_app(_settings(make_settings))) as client:
        r = await client.post(
            "/open311/v2/requests.json",
            data=body,
            files={"description": ("d.txt", "井盖缺了一块".encode(), "text/plain")},
        )
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text
        problem = r.json()
        assert problem["type"].endswith("/validation-error") and "description" in problem["detail"]
        assert problem["errors"] == [{"field": "description", "message": "a file where text is expected"}]


async def test_open311_posts_are_rate_limited(make_settings):
    settings = _settings(make_settings, intake_rate_limit_ip_per_minute=2)
    body = {
        "api_key": KEY,
        "service_code": "road_damage",
        "lat": str(HERE[0]),
        "long": str(HERE[1]),
        "description": "路面有坑",
    }
    async with running(create_app(settings)) as client:
        statuses = [(await client.post("/open311/v2/requests.json", data=body)).status_code for _ in range(3)]
        assert statuses == [201, 201, 429]
        # Reads from the same client count too, and answer in the spec's error format.
        read = await client.get("/open311/v2/requests.json")
        assert read.status_code == 429 and read.json()[0]["code"] == 429
