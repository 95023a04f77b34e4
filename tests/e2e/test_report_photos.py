"""A report with its photos in one multipart request: intake accepts it at once, media validates
the photos by content and keeps the good ones as the case's 整改前 evidence."""

import io
from contextlib import AsyncExitStack

from minio import Minio
from PIL import Image

from services.intake.app import create_app as intake_app
from services.media.app import create_app as media_app
from shared.topics import MEDIA
from tests.support import bearer, eventually, read_topic, running


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 90, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


async def test_photos_sent_with_the_report(make_settings, infra):
    intake_settings = make_settings("intake", intake_incoming_bucket="incoming-" + make_settings("media").media_bucket)
    media_settings = make_settings("media", intake_incoming_bucket=intake_settings.intake_incoming_bucket)
    async with AsyncExitStack() as stack:
        intake = await stack.enter_async_context(running(intake_app(intake_settings)))
        media = await stack.enter_async_context(running(media_app(media_settings)))
        form = {
            "description": "小区门口污水井盖破了一角",
            "category": "manhole",
            "lat": "29.0829",
            "lng": "120.0546",
            "channel": "h5",
        }
        files = [
            ("photos", ("hole.jpg", jpeg(), "image/jpeg")),
            ("photos", ("not-a-photo.jpg", b"<html>hello</html>", "image/jpeg")),
        ]
        answer = await intake.post("/api/v1/reports", data=form, files=files)
        assert answer.status_code == 201, answer.text
        case_id = answer.json()["case_id"]

        async def evidence():
            r = await media.get(f"/api/v1/cases/{case_id}/media", headers=bearer(media_settings, "dispatcher"))
            return r.json()["items"] if r.status_code == 200 and r.json()["items"] else None

        [photo] = await eventually(evidence)
        assert photo["role"] == "before" and photo["content_type"] == "image/jpeg"
        events = await read_topic(
            media_settings, MEDIA.name, until=lambda ms: any(m["type"] == "media.rejected" for m in ms)
        )
        [rejected] = [m["payload"] for m in events if m["type"] == "media.rejected"]
        assert rejected["filename"] == "not-a-photo.jpg"

        empty = await intake.post("/api/v1/reports", data=form, files=[("photos", ("x.jpg", b"", "image/jpeg"))])
        assert empty.status_code == 422 and empty.headers["content-type"] == "application/problem+json"
        no_place = await intake.post("/api/v1/reports", data={"description": "没有位置"}, files=files)
        assert no_place.status_code == 422

    client = Minio(infra.minio_endpoint, access_key=infra.minio_user, secret_key=infra.minio_password, secure=False)
    assert list(client.list_objects(intake_settings.intake_incoming_bucket)) == []  # nothing left parked
