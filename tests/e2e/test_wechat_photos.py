"""Photos sent in WeChat: an image message's PicUrl travels with the report, and media fetches it
(from allowed hosts only) and keeps it as the case's before evidence."""

import io
from contextlib import AsyncExitStack
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import asyncpg
import httpx
from PIL import Image

from services.intake.app import create_app as intake_app
from services.media.app import create_app as media_app
from shared.events import MessageReceived, new_event, utcnow
from shared.geo import wgs84_to_gcj02
from shared.topics import MESSAGES
from tests.support import bearer, eventually, publish, read_topic, running

HERE = (29.0829, 120.0546)


async def test_a_wechat_photo_becomes_evidence(make_settings, fake_wecom):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 100, 10)).save(buffer, format="JPEG")
    name = f"{uuid4().hex}.jpg"
    httpx.put(f"{fake_wecom}/_fake/pics/{name}", content=buffer.getvalue(), headers={"content-type": "image/jpeg"})
    # Each sender's three messages make one report when they arrive within the window; 2 s holds
    # them together even when a loaded machine hands them to intake in more than one batch.
    intake_settings = make_settings("intake", intake_message_window_s=2.0, intake_message_tick_s=0.1)
    media_settings = make_settings("media", media_fetch_hosts=[urlsplit(fake_wecom).hostname])
    gcj = wgs84_to_gcj02(*HERE)

    def message(sender, msg_type, **fields):
        return new_event(
            MessageReceived(
                message_id=uuid4(),
                source="wechat_mp",
                msg_id=str(uuid4()),
                from_user=sender,
                to_user="gh_gridlink",
                msg_type=msg_type,
                sent_at=t0,
                **fields,
            ),
            producer="notify",
            jurisdiction_code="330727",
            key=sender,
        ).to_bytes()

    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running(intake_app(intake_settings)))
        media = await stack.enter_async_context(running(media_app(media_settings)))
        # Bundles close `window` after a message was sent: the services' start-up must not count.
        t0 = utcnow()
        await publish(
            intake_settings,
            MESSAGES.name,
            message("o-wang", "text", content="公园东门的垃圾桶倒了，垃圾撒了一地"),
            message("o-wang", "image", pic_url=f"{fake_wecom}/_fake/pics/{name}", media_id="M1"),
            message("o-wang", "location", lat=gcj[0], lng=gcj[1], datum="gcj02"),
            message("o-li", "text", content="小区门口路灯坏了"),
            message("o-li", "image", pic_url="https://evil.example/track.jpg"),
            message("o-li", "location", lat=gcj[0] + 0.01, lng=gcj[1], datum="gcj02"),
        )
        # Who sent each report is on the contacts topic only notify reads, never on the report.
        contacts = await read_topic(
            intake_settings,
            "gridlink.reporter-contacts",
            until=lambda ms: {m["payload"]["openid"] for m in ms} >= {"o-wang", "o-li"},
        )
        case_of = {m["payload"]["openid"]: m["payload"]["case_id"] for m in contacts}
        reports = await read_topic(
            intake_settings,
            "gridlink.reports",
            until=lambda ms: {m["payload"]["case_id"] for m in ms} >= set(case_of.values()),
        )
        submitted = {m["payload"]["case_id"]: m["payload"] for m in reports if m["type"] == "report.submitted"}
        by_sender = {openid: submitted[case_id] for openid, case_id in case_of.items()}
        assert all(report["reporter_openid"] is None for report in submitted.values())
        assert by_sender["o-wang"]["photo_urls"] == [f"{fake_wecom}/_fake/pics/{name}"]
        dispatcher = bearer(media_settings, "dispatcher")

        async def evidence(case_id):
            r = await media.get(f"/api/v1/cases/{case_id}/media", headers=dispatcher)
            return r.json()["items"] if r.status_code == 200 and r.json()["items"] else None

        [photo] = await eventually(lambda: evidence(by_sender["o-wang"]["case_id"]), timeout=20)
        assert photo["role"] == "before" and photo["content_type"] == "image/jpeg"

        # A URL on a host media does not fetch from is refused at once, never requested.
        async def refused():
            db = await asyncpg.connect(media_settings.database_url)
            try:
                return await db.fetchrow(
                    "SELECT status, reason, attempts FROM media.incoming_photos WHERE report_id = $1"
                    " AND status <> 'taking'",
                    UUID(by_sender["o-li"]["report_id"]),
                )
            finally:
                await db.close()

        row = await eventually(refused)
        assert (row["status"], row["attempts"]) == ("unfetchable", 1) and "evil.example" in row["reason"]
