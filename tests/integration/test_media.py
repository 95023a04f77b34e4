"""Media uploads against real MinIO, PostgreSQL and Kafka: content-addressed storage, validation by
content, rejections as problem+json and media.rejected, presigned uploads verified before they count."""

import hashlib
import io
import struct
import zlib

import asyncpg
import httpx
from minio import Minio
from PIL import ExifTags, Image

from services.media.app import create_app
from shared.topics import MEDIA
from tests.support import eventually, read_topic, running


def jpeg_bytes(color=(10, 120, 200), size=(32, 32), exif: Image.Exif | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG", **({"exif": exif} if exif else {}))
    return buffer.getvalue()


def noisy_jpeg() -> bytes:
    """Random-ish pixels, so that cutting the file in half cuts into the compressed scan."""
    image = Image.frombytes("RGB", (256, 192), bytes((i * 7919 + i // 3) % 251 for i in range(256 * 192 * 3)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def png_bytes(color=(200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), color).save(buffer, format="PNG")
    return buffer.getvalue()


def heic_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 90, 200)).save(buffer, format="HEIF")
    return buffer.getvalue()


def gps_exif(*, lat: tuple, lng: tuple, when: str = "2026:11:24 08:12:30") -> Image.Exif:
    """EXIF as a phone writes it: capture time (local, no offset) and WGS-84 position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "GridPhone"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = when
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", lat
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", lng
    return exif


def png_claiming(width: int, height: int) -> bytes:
    """A 70-byte PNG whose header claims a huge canvas: decoding it would need gigabytes."""
    data = png_bytes()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return data[:8] + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[33:]


def mp4_bytes(payload_size: int) -> bytes:
    """An ISO-BMFF file: an 'ftyp' box and an 'mdat' box of the given size."""
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    return ftyp + struct.pack(">I", payload_size + 8) + b"mdat" + bytes(i % 251 for i in range(payload_size))


def minio_client(settings) -> Minio:
    return Minio(settings.minio_endpoint, settings.minio_access_key, settings.minio_secret_key, secure=False)


def object_names(settings, prefix: str = "") -> list[str]:
    return [
        o.object_name for o in minio_client(settings).list_objects(settings.media_bucket, prefix=prefix, recursive=True)
    ]


async def count(settings, sql: str, *args) -> int:
    db = await asyncpg.connect(settings.database_url)
    try:
        return await db.fetchval(sql, *args)
    finally:
        await db.close()


def events_of(messages: list[dict], event_type: str) -> list[dict]:
    return [m for m in messages if m["type"] == event_type]


async def test_same_photo_twice_is_stored_once_and_linked_twice(make_settings):
    settings = make_settings("media")
    photo = jpeg_bytes()
    async with running(create_app(settings)) as client:
        first = await client.post("/api/v1/media", files={"file": ("a.jpg", photo, "image/jpeg")})
        second = await client.post("/api/v1/media", files={"file": ("b.jpg", photo, "image/jpeg")})
        assert first.status_code == second.status_code == 201
        assert first.json()["sha256"] == second.json()["sha256"] == hashlib.sha256(photo).hexdigest()
        assert first.json()["media_id"] != second.json()["media_id"]
        assert first.json()["content_type"] == "image/jpeg"
        stored = await client.get(f"/api/v1/media/{first.json()['media_id']}")
        assert stored.json()["filename"] == "a.jpg"
        assert (await client.get(f"/api/v1/media/{second.json()['media_id']}")).json()["filename"] == "b.jpg"
    originals = object_names(settings, "sha256/")
    assert len(originals) == 1
    assert minio_client(settings).get_object(settings.media_bucket, originals[0]).read() == photo
    # One public copy and one thumbnail for the one content, too.
    assert len(object_names(settings, "public/")) == len(object_names(settings, "thumb/")) == 1
    assert await count(settings, "SELECT count(*) FROM media.media") == 2
    assert await count(settings, "SELECT count(*) FROM media.media_objects") == 1
    messages = await read_topic(settings, MEDIA.name, until=lambda m: len(events_of(m, "media.stored")) == 2)
    assert {m["payload"]["filename"] for m in events_of(messages, "media.stored")} == {"a.jpg", "b.jpg"}


async def test_files_are_judged_by_content_and_size(make_settings):
    settings = make_settings("media", media_max_bytes=10_000)
    async with running(create_app(settings)) as client:
        renamed = await client.post(
            "/api/v1/media", files={"file": ("photo.jpg", b"%PDF-1.7 not a photo", "image/jpeg")}
        )
        assert renamed.status_code == 415
        assert renamed.headers["content-type"] == "application/problem+json"
        big = await client.post(
            "/api/v1/media", files={"file": ("big.jpg", b"\xff\xd8\xff" + b"0" * 20_000, "image/jpeg")}
        )
        assert big.status_code == 413
        empty = await client.post("/api/v1/media", files={"file": ("e.jpg", b"", "image/jpeg")})
        assert empty.status_code == 422
        missing = await client.post("/api/v1/media")
        assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "file"


async def test_a_png_renamed_jpg_is_stored_as_the_png_it_is(make_settings):
    settings = make_settings("media")
    async with running(create_app(settings)) as client:
        response = await client.post("/api/v1/media", files={"file": ("IMG_0001.jpg", png_bytes(), "image/jpeg")})
        assert response.status_code == 201
        body = response.json()
        assert (body["content_type"], body["kind"], body["filename"]) == ("image/png", "image", "IMG_0001.jpg")
        # The download says what the bytes are, whatever the name claimed.
        async with httpx.AsyncClient() as s3:
            original = await s3.get(body["urls"]["original"])
        assert original.headers["content-type"] == "image/png"


async def test_rejected_uploads_answer_problem_json_and_emit_media_rejected(make_settings):
    settings = make_settings("media", media_image_max_bytes=50_000, media_image_max_pixels=1_000_000)
    truncated = noisy_jpeg()
    truncated = truncated[: len(truncated) // 2]
    cases = [
        # (file name, bytes, declared content type, status, reason)
        ("truncated.jpg", truncated, "image/jpeg", 422, "corrupt"),
        ("bomb.png", png_claiming(30_000, 30_000), "image/png", 422, "decompression-bomb"),
        ("page.html", jpeg_bytes(), "text/html", 415, "type-mismatch"),
        ("voice.amr", jpeg_bytes(), "audio/amr", 415, "type-mismatch"),
        ("large.jpg", b"\xff\xd8\xff\xe0" + bytes(60_000), "image/jpeg", 413, "too-large"),
        ("doc.jpg", b"%PDF-1.7\n", "image/jpeg", 415, "unsupported-type"),
    ]
    async with running(create_app(settings)) as client:
        for filename, data, content_type, status, reason in cases:
            response = await client.post("/api/v1/media", files={"file": (filename, data, content_type)})
            assert response.status_code == status, (filename, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["type"].endswith(f"/{reason}") and problem["reason"] == reason
            assert problem["status"] == status and problem["title"] and problem["detail"]
            assert problem["instance"] == "/api/v1/media"
    messages = await read_topic(settings, MEDIA.name, until=lambda m: len(events_of(m, "media.rejected")) == len(cases))
    rejected = {m["payload"]["filename"]: m["payload"] for m in events_of(messages, "media.rejected")}
    for filename, _, content_type, _, reason in cases:
        assert rejected[filename]["reason"] == reason
        assert rejected[filename]["declared_content_type"] == content_type
    assert rejected["page.html"]["detected_content_type"] == "image/jpeg"
    assert rejected["truncated.jpg"]["size_bytes"] == len(truncated)
    assert not events_of(messages, "media.stored")
    assert object_names(settings) == []
    assert await count(settings, "SELECT count(*) FROM media.media") == 0


async def test_an_octet_stream_heic_photo_is_decoded_and_gets_a_jpeg_public_copy(make_settings):
    settings = make_settings("media")
    async with running(create_app(settings)) as client:
        response = await client.post(
            "/api/v1/media", files={"file": ("IMG_0002.HEIC", heic_bytes(), "application/octet-stream")}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["content_type"], body["width"], body["height"]) == ("image/heic", 64, 48)
        async with httpx.AsyncClient() as s3:
            public = await s3.get(body["urls"]["public"])
        assert public.status_code == 200 and public.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(public.content)).format == "JPEG"


async def test_originals_stay_unchanged_and_pages_get_a_stripped_copy_by_short_urls(make_settings):
    settings = make_settings("media", media_presign_get_expiry_s=120)
    photo = jpeg_bytes(size=(640, 480), exif=gps_exif(lat=(29, 4, 48), lng=(120, 3, 0)))
    async with running(create_app(settings)) as client:
        body = (await client.post("/api/v1/media", files={"file": ("p.jpg", photo, "image/jpeg")})).json()
        assert body["captured_at"].startswith("2026-11-24T00:12:30")  # 08:12:30 China time
        assert (round(body["latitude"], 4), round(body["longitude"], 4)) == (29.08, 120.05)
        assert set(body["urls"]) == {"original", "public", "thumbnail"}
        assert all("X-Amz-Expires=120" in url for url in body["urls"].values())
        async with httpx.AsyncClient() as s3:
            original, public, thumb = [await s3.get(body["urls"][k]) for k in ("original", "public", "thumbnail")]
            unsigned = await s3.get(body["urls"]["original"].split("?")[0])
    assert original.content == photo
    assert Image.open(io.BytesIO(original.content)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    for copy in (public, thumb):
        image = Image.open(io.BytesIO(copy.content))
        assert dict(image.getexif()) == {} and "exif" not in image.info
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320
    assert unsigned.status_code == 403  # the bucket is private: only signed URLs read it


async def put(url: str, data: bytes) -> httpx.Response:
    async with httpx.AsyncClient() as s3:
        return await s3.put(url, content=data)


async def test_a_large_video_goes_through_a_presigned_upload_verified_before_it_counts(make_settings):
    settings = make_settings("media", media_max_bytes=50_000)
    video = mp4_bytes(200_000)
    sha256 = hashlib.sha256(video).hexdigest()
    async with running(create_app(settings)) as client:
        direct = await client.post("/api/v1/media", files={"file": ("v.mp4", video, "video/mp4")})
        assert direct.status_code == 413 and "/api/v1/uploads" in direct.json()["detail"]
        created = await client.post(
            "/api/v1/uploads",
            json={"filename": "巡查.mp4", "content_type": "video/mp4", "size_bytes": len(video), "sha256": sha256},
        )
        assert created.status_code == 201, created.text
        upload = created.json()
        assert upload["status"] == "pending" and upload["method"] == "PUT"
        # The client sends a misleading Content-Type; what is stored is judged by content.
        async with httpx.AsyncClient() as s3:
            sent = await s3.put(upload["url"], content=video, headers={"content-type": "text/html"})
            assert sent.status_code == 200
        completed = await client.post(upload["complete_url"])
        assert completed.status_code == 201, completed.text
        media = completed.json()
        assert (media["content_type"], media["kind"], media["size_bytes"], media["sha256"]) == (
            "video/mp4",
            "video",
            len(video),
            sha256,
        )
        again = await client.post(upload["complete_url"])
        assert again.status_code == 200 and again.json()["media_id"] == media["media_id"]
        status = (await client.get(f"/api/v1/uploads/{upload['upload_id']}")).json()
        assert (status["status"], status["media_id"]) == ("completed", media["media_id"])
    assert object_names(settings, "uploads/") == []
    stat = minio_client(settings).stat_object(settings.media_bucket, f"sha256/{sha256[:2]}/{sha256}")
    assert stat.size == len(video) and stat.content_type == "video/mp4"
    messages = await read_topic(settings, MEDIA.name, until=lambda m: events_of(m, "media.stored"))
    stored = events_of(messages, "media.stored")[0]["payload"]
    assert stored["upload_id"] == upload["upload_id"] and stored["kind"] == "video"


async def test_an_interrupted_presigned_upload_is_not_counted(make_settings):
    settings = make_settings("media")
    photo = noisy_jpeg()
    announce = {
        "filename": "p.jpg",
        "content_type": "image/jpeg",
        "size_bytes": len(photo),
        "sha256": hashlib.sha256(photo).hexdigest(),
    }
    async with running(create_app(settings)) as client:
        upload = (await client.post("/api/v1/uploads", json=announce)).json()
        # Completing before the PUT finished: nothing counted, and the upload stays open.
        early = await client.post(upload["complete_url"])
        assert early.status_code == 409 and early.json()["type"].endswith("/upload-not-finished")
        assert (await client.get(f"/api/v1/uploads/{upload['upload_id']}")).json()["status"] == "pending"
        # Only part of the file arrived.
        assert (await put(upload["url"], photo[: len(photo) // 2])).status_code == 200
        partial = await client.post(upload["complete_url"])
        assert partial.status_code == 422 and partial.json()["reason"] == "size-mismatch"
        closed = await client.post(upload["complete_url"])
        assert closed.status_code == 410 and closed.json()["upload_status"] == "rejected"
        # The whole file, but not the one announced.
        other = (await client.post("/api/v1/uploads", json=announce)).json()
        assert (await put(other["url"], noisy_jpeg()[:-1] + b"\x00")).status_code == 200
        mismatch = await client.post(other["complete_url"])
        assert mismatch.status_code == 422 and mismatch.json()["reason"] == "sha256-mismatch"
        # An announced type outside the accepted ones never gets a URL.
        refused = await client.post("/api/v1/uploads", json={**announce, "content_type": "application/zip"})
        assert refused.status_code == 415 and "url" not in refused.json()
    assert object_names(settings) == []
    assert await count(settings, "SELECT count(*) FROM media.media") == 0
    messages = await read_topic(settings, MEDIA.name, until=lambda m: len(events_of(m, "media.rejected")) == 3)
    assert sorted(m["payload"]["reason"] for m in events_of(messages, "media.rejected")) == [
        "sha256-mismatch",
        "size-mismatch",
        "unsupported-type",
    ]


async def test_a_presigned_upload_never_completed_expires_and_its_object_is_removed(make_settings):
    settings = make_settings("media", media_presign_put_expiry_s=2, media_housekeeping_interval_s=0.2)
    photo = jpeg_bytes()
    async with running(create_app(settings)) as client:
        announce = {"content_type": "image/jpeg", "size_bytes": len(photo), "sha256": hashlib.sha256(photo).hexdigest()}
        upload = (await client.post("/api/v1/uploads", json=announce)).json()
        assert (await put(upload["url"], photo)).status_code == 200
        assert object_names(settings, "uploads/") == [f"uploads/{upload['upload_id']}"]

        async def expired():
            return (await client.get(f"/api/v1/uploads/{upload['upload_id']}")).json()["status"] == "expired"

        await eventually(expired, timeout=10)
        late = await client.post(upload["complete_url"])
        assert late.status_code == 410 and late.json()["upload_status"] == "expired"
    assert object_names(settings) == []
    assert await count(settings, "SELECT count(*) FROM media.media") == 0
    messages = await read_topic(settings, MEDIA.name, until=lambda m: events_of(m, "media.rejected"))
    assert events_of(messages, "media.rejected")[0]["payload"]["reason"] == "upload-expired"


async def test_a_second_report_of_the_same_problem_adds_its_photos_to_the_case(make_settings):
    from uuid import uuid4

    from shared.events import ReportAttached, new_event, utcnow
    from shared.topics import REPORTS, ensure_topics
    from tests.support import bearer, publish

    settings = make_settings("media")
    await ensure_topics(settings)
    async with running(create_app(settings)) as client:
        upload = await client.post(
            "/api/v1/media", files={"file": ("same-hole.jpg", jpeg_bytes((1, 2, 3)), "image/jpeg")}
        )
        media_id, case_id = upload.json()["media_id"], uuid4()
        attached = ReportAttached(
            report_id=uuid4(),
            case_id=case_id,
            description="又有人报了这个坑",
            category="road_damage",
            channel="h5",
            media_ids=[media_id],
            submitted_at=utcnow(),
        )
        await publish(
            settings,
            REPORTS.name,
            new_event(attached, producer="intake", jurisdiction_code="330727", key=str(case_id)).to_bytes(),
        )

        async def linked():
            media = (await client.get(f"/api/v1/media/{media_id}", headers=bearer(settings, "dispatcher"))).json()
            return media if media["case_id"] == str(case_id) else None

        assert (await eventually(linked))["role"] == "before"
