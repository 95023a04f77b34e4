"""A case's evidence against real MinIO, PostgreSQL and Kafka: report photos become 'before'
evidence, EXIF is checked against the report, 'after' photos are attached, the 整改前后对比 image
is generated, access follows the case's visibility, and retention deletes what is due."""

import io
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import httpx
from PIL import Image, ImageDraw

from services.media.app import create_app
from shared.auth import Actor, issue_token
from shared.events import CaseDispatched, ReportPlace, ReportSubmitted, new_event
from shared.topics import CASES, MEDIA, REPORTS
from tests.integration.test_media import events_of, gps_exif, jpeg_bytes, mp4_bytes, object_names
from tests.support import eventually, publish, read_topic, running

# The report: 幸福路, 2026-11-24 08:30 China time.
REPORT_LAT, REPORT_LNG = 29.08, 120.05
SUBMITTED_AT = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)


async def upload(client, data: bytes, name: str = "p.jpg", content_type: str = "image/jpeg") -> dict:
    response = await client.post("/api/v1/media", files={"file": (name, data, content_type)})
    assert response.status_code == 201, response.text
    return response.json()


async def submit_report(settings, *, case_id, media_ids, report_id=None, division="330727") -> None:
    """intake's report.submitted, as it arrives on the reports topic (a report in the county 330727,
    or in the division given)."""
    report = ReportSubmitted(
        report_id=report_id or uuid4(),
        case_id=case_id,
        description="幸福路井盖翻起来了",
        category="manhole",
        place=ReportPlace(division_code=division, lat=REPORT_LAT, lng=REPORT_LNG),
        channel="api",
        media_ids=media_ids,
        submitted_at=SUBMITTED_AT,
    )
    event = new_event(report, producer="intake", jurisdiction_code=division, key=str(case_id))
    await publish(settings, REPORTS.name, event.to_bytes())


async def dispatch_case(settings, *, case_id, report_id, department_code, jurisdiction_code, seq=1) -> None:
    """dispatch's case.dispatched, as it arrives on the cases topic."""
    dispatched = CaseDispatched(
        case_id=case_id,
        report_id=report_id,
        seq=seq,
        jurisdiction_code=jurisdiction_code,
        category="manhole",
        category_name="井盖破损",
        priority="urgent",
        department_code=department_code,
        department_name="城管局",
        description="幸福路井盖翻起来了",
        responsibility_list_version="2026.1",
        rule="category:manhole",
        dispatched_at=SUBMITTED_AT,
    )
    event = new_event(dispatched, producer="dispatch", jurisdiction_code="330727", key=str(case_id))
    await publish(settings, CASES.name, event.to_bytes())


def auth(settings, *, role="dispatcher", jurisdiction="330727", department=None) -> dict:
    """Headers with a bearer token, as dispatch issues them."""
    actor = Actor(subject=f"{role}-1", role=role, jurisdiction_code=jurisdiction, department_code=department)
    return {"authorization": f"Bearer {issue_token(secret=settings.auth_jwt_secret, actor=actor)}"}


async def test_report_photos_become_before_evidence_and_a_far_away_photo_is_flagged(make_settings):
    settings = make_settings("media")
    case_id = uuid4()
    near = jpeg_bytes(color=(1, 2, 3), exif=gps_exif(lat=(29, 4, 49), lng=(120, 3, 1), when="2026:11:24 08:10:00"))
    # 杭州西湖, some 130 km from the report, and a month before it.
    far = jpeg_bytes(color=(4, 5, 6), exif=gps_exif(lat=(30, 15, 0), lng=(120, 9, 0), when="2026:10:20 15:00:00"))
    headers = auth(settings)
    async with running(create_app(settings)) as client:
        near_id, far_id = (await upload(client, near))["media_id"], (await upload(client, far))["media_id"]
        await submit_report(settings, case_id=case_id, media_ids=[near_id, far_id], division="330727001002")

        async def attached():
            response = await client.get(f"/api/v1/cases/{case_id}/media", headers=headers)
            items = response.json()["items"] if response.status_code == 200 else []
            return {i["media_id"]: i for i in items} if len(items) == 2 else None

        items = await eventually(attached)
        assert items[near_id]["role"] == items[far_id]["role"] == "before"
        assert items[near_id]["flags"] == []
        assert items[near_id]["distance_m"] < 100
        assert items[far_id]["flags"] == ["far_from_report", "taken_long_before_report"]
        assert items[far_id]["flag_texts"] == ["拍摄地点距上报位置过远", "拍摄时间远早于上报时间"]
        assert items[far_id]["distance_m"] > 100_000
        evidence = (await client.get(f"/api/v1/cases/{case_id}/evidence", headers=headers)).json()
        assert evidence == {"case_id": str(case_id), "before": 2, "after": 0, "has_after_photo": False, "flagged": 1}
    messages = await read_topic(settings, MEDIA.name, until=lambda m: len(events_of(m, "media.attached")) == 2)
    attached_events = {m["payload"]["media_id"]: m for m in events_of(messages, "media.attached")}
    assert attached_events[far_id]["key"] == str(case_id)
    assert attached_events[far_id]["jurisdiction_code"] == "330727001002"  # where intake placed the report
    assert attached_events[far_id]["payload"]["flags"] == ["far_from_report", "taken_long_before_report"]
    assert attached_events[near_id]["payload"]["role"] == "before"


async def test_after_photos_are_attached_and_the_before_after_comparison_is_generated(make_settings):
    settings = make_settings("media")
    case_id = uuid4()
    async with running(create_app(settings)) as client:
        client.headers.update(auth(settings, role="handler", department="cgj"))
        before = await upload(client, jpeg_bytes(color=(200, 30, 30), size=(400, 300)))
        report_id, other_case = uuid4(), uuid4()
        await submit_report(settings, case_id=case_id, report_id=report_id, media_ids=[before["media_id"]])
        await submit_report(settings, case_id=other_case, media_ids=[])
        # The handling department's staff see the case once it is dispatched to them.
        await dispatch_case(
            settings, case_id=case_id, report_id=report_id, department_code="cgj", jurisdiction_code="330727001002"
        )

        async def has_before():
            response = await client.get(f"/api/v1/cases/{case_id}/evidence")
            return response.status_code == 200 and response.json()["before"] == 1

        await eventually(has_before)
        no_pair = await client.post(f"/api/v1/cases/{case_id}/comparison")
        assert no_pair.status_code == 409 and no_pair.headers["content-type"] == "application/problem+json"
        assert (await client.get(f"/api/v1/cases/{case_id}/comparison")).status_code == 404

        # A voice note as 'after' is evidence, but not the photo closing a case needs.
        voice = await upload(client, b"#!AMR\n" + bytes(200), name="v.amr", content_type="audio/amr")
        assert (
            await client.post(f"/api/v1/cases/{case_id}/media", json={"media_id": voice["media_id"], "role": "after"})
        ).status_code == 201
        assert (await client.get(f"/api/v1/cases/{case_id}/evidence")).json()["has_after_photo"] is False

        # Taken (per EXIF) before the case was even reported: attached, but flagged.
        taken_before = gps_exif(lat=(29, 4, 48), lng=(120, 3, 0), when="2026:11:24 07:00:00")
        after = await upload(client, jpeg_bytes(color=(30, 200, 30), size=(300, 400), exif=taken_before))
        attach = {"media_id": after["media_id"], "role": "after"}
        created = await client.post(f"/api/v1/cases/{case_id}/media", json=attach)
        assert created.status_code == 201
        assert (created.json()["role"], created.json()["flags"]) == ("after", ["taken_before_report"])
        assert (await client.post(f"/api/v1/cases/{case_id}/media", json=attach)).status_code == 200
        elsewhere = await client.post(
            f"/api/v1/cases/{other_case}/media", json=attach, headers=auth(settings, role="dispatcher")
        )
        assert elsewhere.status_code == 409
        never_reported = await client.post(f"/api/v1/cases/{uuid4()}/media", json=attach)
        assert never_reported.status_code == 404
        other_role = await client.post(f"/api/v1/cases/{case_id}/media", json={**attach, "role": "before"})
        assert other_role.status_code == 409
        bad_role = await client.post(f"/api/v1/cases/{case_id}/media", json={**attach, "role": "during"})
        assert bad_role.status_code == 422
        unknown = await client.post(f"/api/v1/cases/{case_id}/media", json={"media_id": str(uuid4()), "role": "after"})
        assert unknown.status_code == 404

        evidence = (await client.get(f"/api/v1/cases/{case_id}/evidence")).json()
        assert (evidence["before"], evidence["after"], evidence["has_after_photo"]) == (1, 2, True)
        afters = (await client.get(f"/api/v1/cases/{case_id}/media", params={"role": "after"})).json()["items"]
        assert [i["media_id"] for i in afters] == [voice["media_id"], after["media_id"]]

        generated = await client.post(f"/api/v1/cases/{case_id}/comparison")
        assert generated.status_code == 201, generated.text
        comparison = generated.json()
        assert (comparison["before_media_id"], comparison["after_media_id"]) == (before["media_id"], after["media_id"])
        assert (await client.post(f"/api/v1/cases/{case_id}/comparison")).status_code == 200
        latest = (await client.get(f"/api/v1/cases/{case_id}/comparison")).json()
        assert latest["object_key"] == comparison["object_key"]
        async with httpx.AsyncClient() as s3:
            image_response = await s3.get(latest["url"])
    assert image_response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(image_response.content)).convert("RGB")
    # Before (red, 400×300 → 800×600) on the left, after (green, 300×400 → 450×600) on the right.
    assert image.width == 24 * 3 + 800 + 450
    left, right = image.getpixel((24 + 400, 72 + 300)), image.getpixel((48 + 800 + 225, 72 + 300))
    assert left[0] > 150 > left[1] and right[1] > 150 > right[0]
    assert object_names(settings, "comparisons/") == [comparison["object_key"]]
    messages = await read_topic(settings, MEDIA.name, until=lambda m: len(events_of(m, "media.attached")) == 3)
    roles = [(m["payload"]["media_id"], m["payload"]["role"]) for m in events_of(messages, "media.attached")]
    assert roles == [(before["media_id"], "before"), (voice["media_id"], "after"), (after["media_id"], "after")]


async def test_access_to_evidence_follows_the_cases_visibility(make_settings):
    settings = make_settings("media")
    case_id, report_id = uuid4(), uuid4()
    county, lead, other_department = (
        auth(settings),
        auth(settings, role="handler", department="cgj"),
        auth(settings, role="handler", department="sly"),
    )
    another_town = auth(settings, jurisdiction="330727002")
    async with running(create_app(settings)) as client:
        photo = await upload(client, jpeg_bytes(exif=gps_exif(lat=(29, 4, 48), lng=(120, 3, 0))))
        # Its uploader (holding the id) sees it in full while it belongs to no case yet.
        assert set((await client.get(f"/api/v1/media/{photo['media_id']}")).json()["urls"]) == {
            "original",
            "public",
            "thumbnail",
        }
        await submit_report(settings, case_id=case_id, report_id=report_id, media_ids=[photo["media_id"]])

        async def reported():
            return (await client.get(f"/api/v1/cases/{case_id}/evidence", headers=county)).status_code == 200

        await eventually(reported)
        anonymous = (await client.get(f"/api/v1/media/{photo['media_id']}")).json()
        assert anonymous["restricted"] is True and anonymous["case_id"] == str(case_id)
        assert "urls" not in anonymous and "latitude" not in anonymous and "filename" not in anonymous
        assert (await client.get(f"/api/v1/cases/{case_id}/media")).status_code == 401
        assert (
            await client.get(f"/api/v1/cases/{case_id}/media", headers={"authorization": "Bearer x.y.z"})
        ).status_code == 401
        seen = (await client.get(f"/api/v1/media/{photo['media_id']}", headers=county)).json()
        assert seen["restricted"] is False and "original" in seen["urls"]
        # Not dispatched yet: no department sees it; another town never does.
        assert (await client.get(f"/api/v1/cases/{case_id}/media", headers=lead)).status_code == 403
        forbidden = await client.get(f"/api/v1/cases/{case_id}/media", headers=another_town)
        assert forbidden.status_code == 403 and forbidden.headers["content-type"] == "application/problem+json"

        await dispatch_case(
            settings, case_id=case_id, report_id=report_id, department_code="cgj", jurisdiction_code="330727001002"
        )

        async def lead_sees():
            return (await client.get(f"/api/v1/cases/{case_id}/media", headers=lead)).status_code == 200

        await eventually(lead_sees)
        assert (await client.get(f"/api/v1/cases/{case_id}/media", headers=other_department)).status_code == 403
        assert (await client.get(f"/api/v1/media/{photo['media_id']}", headers=other_department)).json()["restricted"]
        assert not (await client.get(f"/api/v1/media/{photo['media_id']}", headers=lead)).json()["restricted"]


async def test_evidence_attached_before_the_report_arrives_is_checked_when_it_does(make_settings):
    settings = make_settings("media")
    case_id, report_id = uuid4(), uuid4()
    headers = auth(settings)
    far = jpeg_bytes(exif=gps_exif(lat=(31, 14, 0), lng=(121, 28, 0), when="2026:11:25 09:00:00"))  # 上海, next day
    async with running(create_app(settings)) as client:
        # The case event can overtake the report: they travel on different topics.
        await dispatch_case(
            settings, case_id=case_id, report_id=report_id, department_code="cgj", jurisdiction_code="330727"
        )

        async def known():
            return (await client.get(f"/api/v1/cases/{case_id}/evidence", headers=headers)).status_code == 200

        await eventually(known)
        media = await upload(client, far)
        attach = {"media_id": media["media_id"], "role": "after"}
        attached = await client.post(f"/api/v1/cases/{case_id}/media", json=attach, headers=headers)
        assert attached.status_code == 201 and attached.json()["flags"] == []  # nothing to compare with yet
        await submit_report(settings, case_id=case_id, report_id=report_id, media_ids=[])

        async def flagged():
            return (await client.get(f"/api/v1/media/{media['media_id']}", headers=headers)).json()["flags"]

        assert await eventually(flagged) == ["far_from_report"]


async def test_originals_past_their_retention_are_deleted_with_their_copies(make_settings):
    settings = make_settings("media", media_housekeeping_interval_s=0.2, media_retention_days_video=0)
    async with running(create_app(settings)) as client:
        photo = await upload(client, jpeg_bytes())
        video = await upload(client, mp4_bytes(1000), name="v.mp4", content_type="video/mp4")
        assert photo["retain_until"] is not None and video["retain_until"] is None  # 0 days: kept forever
        assert len(object_names(settings)) == 4  # photo, its public copy and thumbnail; the video
        db = await asyncpg.connect(settings.database_url)
        try:
            # Five years pass for the photo.
            await db.execute(
                "UPDATE media.media_objects SET retain_until = now() - interval '1 second' WHERE sha256 = $1",
                photo["sha256"],
            )
        finally:
            await db.close()

        async def purged():
            return (await client.get(f"/api/v1/media/{photo['media_id']}")).json()["purged"]

        await eventually(purged)
        gone = (await client.get(f"/api/v1/media/{photo['media_id']}")).json()
        assert gone["urls"] == {} and gone["urls_expire_at"] is None
        # The same photo sent again is stored again, with a fresh retention.
        again = await upload(client, jpeg_bytes())
        assert again["purged"] is False and set(again["urls"]) == {"original", "public", "thumbnail"}
    assert sorted(n.split("/")[0] for n in object_names(settings)) == ["public", "sha256", "sha256", "thumb"]


def scene(seed: int, size=(640, 480), quality=92) -> bytes:
    """A photo with structure (shapes of different brightness), different for each seed, as JPEG."""
    image = Image.new("RGB", (640, 480), (90 + seed * 7 % 60, 100, 110))
    draw = ImageDraw.Draw(image)
    for i in range(12):
        x, y = (seed * 131 + i * 97) % 640, (seed * 71 + i * 53) % 480
        shade = (seed * 37 + i * 61) % 256
        draw.rectangle((x, y, x + 60 + i * 9, y + 40 + i * 7), fill=(shade, 255 - shade, (shade * 3) % 256))
    buffer = io.BytesIO()
    image.resize(size).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


async def test_a_reused_photo_is_flagged_by_its_perceptual_hash(make_settings):
    settings = make_settings("media")
    first_case, case_id = uuid4(), uuid4()
    async with running(create_app(settings)) as client:
        client.headers.update(auth(settings))
        # Two cases, each reported with its own photo.
        elsewhere = await upload(client, scene(1))
        before = await upload(client, scene(2))
        await submit_report(settings, case_id=first_case, media_ids=[elsewhere["media_id"]])
        await submit_report(settings, case_id=case_id, media_ids=[before["media_id"]])

        async def reported():
            counts = [(await client.get(f"/api/v1/cases/{c}/evidence")).json() for c in (first_case, case_id)]
            return all(c.get("before") == 1 for c in counts)

        await eventually(reported)

        async def attach_after(data: bytes) -> dict:
            media = await upload(client, data)
            r = await client.post(
                f"/api/v1/cases/{case_id}/media", json={"media_id": media["media_id"], "role": "after"}
            )
            assert r.status_code == 201, r.text
            return r.json()

        # The other case's photo, smaller and recompressed (other bytes, the same picture): flagged.
        from_elsewhere = await attach_after(scene(1, size=(480, 360), quality=70))
        assert from_elsewhere["flags"] == ["reused_photo"]
        assert "疑似重复使用的照片" in from_elsewhere["flag_texts"][0]
        # This case's own "before" photo handed in as "after": flagged.
        own_before = await attach_after(scene(2, quality=80))
        assert own_before["flags"] == ["reused_photo"]
        # A photo of its own: not flagged.
        fresh = await attach_after(scene(3))
        assert fresh["flags"] == []
        # The report's photos were not flagged by the later copies of them.
        items = (await client.get(f"/api/v1/cases/{case_id}/media", params={"role": "before"})).json()["items"]
        assert [i["flags"] for i in items] == [[]]
        assert (await client.get(f"/api/v1/cases/{case_id}/evidence")).json()["flagged"] == 2
    messages = await read_topic(settings, MEDIA.name, until=lambda m: len(events_of(m, "media.attached")) >= 5)
    flags = {m["payload"]["media_id"]: m["payload"]["flags"] for m in events_of(messages, "media.attached")}
    assert flags[from_elsewhere["media_id"]] == flags[own_before["media_id"]] == ["reused_photo"]
    assert flags[fresh["media_id"]] == []


async def test_an_after_photo_without_exif_is_refused_where_the_policy_requires_it(make_settings):
    settings = make_settings("media", media_exif_required_for=["after"])
    case_id, report_id = uuid4(), uuid4()
    async with running(create_app(settings)) as client:
        client.headers.update(auth(settings, role="handler", department="cgj"))
        await submit_report(settings, case_id=case_id, report_id=report_id, media_ids=[])
        await dispatch_case(
            settings, case_id=case_id, report_id=report_id, department_code="cgj", jurisdiction_code="330727001002"
        )

        async def visible():
            return (await client.get(f"/api/v1/cases/{case_id}/evidence")).status_code == 200

        await eventually(visible)
        bare = await upload(client, jpeg_bytes(color=(30, 30, 200), size=(300, 400)))  # a screenshot: no EXIF
        refused = await client.post(
            f"/api/v1/cases/{case_id}/media", json={"media_id": bare["media_id"], "role": "after"}
        )
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"].endswith("exif-required") and "没有拍摄信息（EXIF" in problem["detail"]
        # Nothing changed: the photo is attached to nothing, the case has no after photo.
        assert (await client.get(f"/api/v1/media/{bare['media_id']}")).json()["case_id"] is None
        assert (await client.get(f"/api/v1/cases/{case_id}/evidence")).json()["after"] == 0
        # Taken on the spot (EXIF capture time): attached.
        on_site = gps_exif(lat=(29, 4, 48), lng=(120, 3, 0), when="2026:11:24 10:00:00")
        photo = await upload(client, jpeg_bytes(color=(30, 200, 30), size=(300, 400), exif=on_site))
        attached = await client.post(
            f"/api/v1/cases/{case_id}/media", json={"media_id": photo["media_id"], "role": "after"}
        )
        assert attached.status_code == 201, attached.text
