from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from services.media import domain
from services.media.domain import (
    EvidenceItem,
    Rejection,
    ReportContext,
    SizeLimits,
    caption,
    check_completed_sha256,
    check_completed_size,
    check_declared_type,
    check_pixels,
    check_upload,
    check_upload_request,
    comparison_key,
    comparison_pair,
    distance_m,
    evidence_flags,
    evidence_summary,
    gps_degrees,
    object_key,
    parse_exif_datetime,
    retain_until,
    sniff_content_type,
)

LIMITS = SizeLimits(image=1000, video=5000, audio=300)
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF"
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00"
UTC = UTC


@pytest.mark.parametrize(
    "head,expected",
    [
        (JPEG_HEAD, "image/jpeg"),
        (PNG_HEAD, "image/png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00", "video/mp4"),
        (b"\x00\x00\x00\x20ftypmp42\x00\x00", "video/mp4"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00", None),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00", None),
        (b"#!AMR\n", "audio/amr"),
        (b"#!AMR-WB\n", "audio/amr"),
        (b"ID3\x04\x00", "audio/mpeg"),
        (b"\xff\xfb\x90\x00", "audio/mpeg"),
        (b"%PDF-1.7", None),
        (b"GIF89a", None),
        (b"<html>", None),
        (b"", None),
    ],
)
def test_type_is_judged_by_content(head, expected):
    assert sniff_content_type(head) == expected


def test_objects_are_addressed_by_hash():
    assert object_key("ab" + "0" * 62) == "sha256/ab/ab" + "0" * 62


def test_derived_keys_are_named_by_content_and_pair():
    sha = "cd" + "1" * 62
    assert domain.public_copy_key(sha) == f"public/cd/{sha}.jpg"
    assert domain.thumbnail_key(sha) == f"thumb/cd/{sha}.jpg"
    case_id = UUID("6f1c2a34-0a6b-4c39-9d1e-2f6b7c8d9e01")
    key = comparison_key(case_id=case_id, before_sha256="a" * 64, after_sha256="b" * 64)
    assert key == f"comparisons/{case_id}/{'a' * 16}-{'b' * 16}.jpg"
    upload_id = uuid4()
    assert domain.staging_key(upload_id) == f"uploads/{upload_id}"


def test_an_accepted_upload_is_typed_by_its_bytes_not_its_name_or_header():
    checked = check_upload(head=PNG_HEAD, size=500, declared_type="image/jpeg", limits=LIMITS)
    assert (checked.content_type, checked.kind) == ("image/png", "image")


@pytest.mark.parametrize(
    "declared", [None, "", "application/octet-stream", "image/jpeg; charset=binary", "IMAGE/JPG", "image/gif"]
)
def test_vague_or_sibling_declared_types_are_accepted(declared):
    check_declared_type(declared, "image/jpeg")


@pytest.mark.parametrize(
    "declared,detected",
    [
        ("text/html", "image/jpeg"),
        ("application/pdf", "image/png"),
        ("audio/amr", "image/jpeg"),
        ("video/mp4", "audio/mpeg"),
    ],
)
def test_a_declared_type_of_another_kind_is_rejected(declared, detected):
    with pytest.raises(Rejection) as caught:
        check_declared_type(declared, detected)
    assert caught.value.reason == "type-mismatch"
    assert caught.value.status == 415


@pytest.mark.parametrize(
    "head,size,reason,status",
    [
        (JPEG_HEAD, 0, "empty", 422),
        (b"%PDF-1.7", 100, "unsupported-type", 415),
        (JPEG_HEAD, 1001, "too-large", 413),
        (b"#!AMR\n", 301, "too-large", 413),
    ],
)
def test_uploads_are_rejected_with_a_reason_and_a_status(head, size, reason, status):
    with pytest.raises(Rejection) as caught:
        check_upload(head=head, size=size, declared_type=None, limits=LIMITS)
    assert (caught.value.reason, caught.value.status) == (reason, status)
    assert caught.value.title and caught.value.detail


def test_each_kind_has_its_own_size_limit():
    assert check_upload(head=b"\x00\x00\x00\x18ftypisom", size=4000, declared_type=None, limits=LIMITS).kind == "video"
    with pytest.raises(Rejection, match="too-large"):
        check_upload(head=JPEG_HEAD, size=4000, declared_type=None, limits=LIMITS)


def test_too_many_pixels_is_a_decompression_bomb():
    check_pixels(width=1000, height=1000, max_pixels=1_000_000)
    with pytest.raises(Rejection) as caught:
        check_pixels(width=1001, height=1000, max_pixels=1_000_000)
    assert caught.value.reason == "decompression-bomb"


def test_a_presigned_upload_request_must_name_an_accepted_type_size_and_hash():
    request = check_upload_request(content_type="image/JPG", size_bytes=900, sha256="AB" * 32, limits=LIMITS)
    assert (request.content_type, request.kind, request.sha256) == ("image/jpeg", "image", "ab" * 32)
    for content_type, size, sha, reason in [
        ("application/zip", 10, "a" * 64, "unsupported-type"),
        ("video/mp4", 0, "a" * 64, "empty"),
        ("video/mp4", 5001, "a" * 64, "too-large"),
        ("video/mp4", 10, "not-a-hash", "sha256-mismatch"),
    ]:
        with pytest.raises(Rejection) as caught:
            check_upload_request(content_type=content_type, size_bytes=size, sha256=sha, limits=LIMITS)
        assert caught.value.reason == reason


def test_a_completed_upload_must_be_exactly_what_was_announced():
    check_completed_size(expected=10, actual=10)
    check_completed_sha256(expected="a" * 64, actual="a" * 64)
    with pytest.raises(Rejection, match="size-mismatch"):
        check_completed_size(expected=10, actual=4)
    with pytest.raises(Rejection, match="sha256-mismatch"):
        check_completed_sha256(expected="a" * 64, actual="b" * 64)


def test_completion_gets_twice_the_put_expiry():
    created = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert domain.completion_deadline(created_at=created, put_expiry_s=600) == created + timedelta(minutes=20)


def test_retention_is_per_kind_and_zero_keeps_forever():
    stored = datetime(2026, 1, 1, tzinfo=UTC)
    days = {"image": 10, "video": 0, "audio": 1}
    assert retain_until(kind="image", stored_at=stored, retention_days=days) == stored + timedelta(days=10)
    assert retain_until(kind="video", stored_at=stored, retention_days=days) is None


def test_exif_times_are_china_time_unless_an_offset_is_given():
    assert parse_exif_datetime("2026:11:24 08:12:30") == datetime(2026, 11, 24, 0, 12, 30, tzinfo=UTC)
    assert parse_exif_datetime("2026:11:24 08:12:30", "+00:00") == datetime(2026, 11, 24, 8, 12, 30, tzinfo=UTC)
    assert parse_exif_datetime("2026:11:24 08:12:30\x00", "-05:00") == datetime(2026, 11, 24, 13, 12, 30, tzinfo=UTC)
    assert parse_exif_datetime("0000:00:00 00:00:00") is None
    assert parse_exif_datetime("") is None
    assert parse_exif_datetime(None) is None


def test_gps_rationals_become_signed_degrees():
    assert gps_degrees((29, 4, 48), "N") == pytest.approx(29.08)
    assert gps_degrees((120, 3, 0), "W") == pytest.approx(-120.05)
    assert gps_degrees((33, 52, 0), "S") == pytest.approx(-33.8667, abs=1e-4)
    assert gps_degrees(("x", 0, 0), "N") is None
    assert gps_degrees((1, 2), "N") is None


def test_distance_is_great_circle_metres():
    assert distance_m(29.08, 120.05, 29.08, 120.05) == 0
    # One degree of latitude is about 111.2 km.
    assert distance_m(29.0, 120.0, 30.0, 120.0) == pytest.approx(111_195, rel=1e-3)
    # 婺城 (Jinhua) to 杭州 is roughly 150 km.
    assert 140_000 < distance_m(29.08, 119.65, 30.27, 120.15) < 160_000


REPORT = ReportContext(lat=29.08, lng=120.05, submitted_at=datetime(2026, 11, 24, 8, 30, tzinfo=UTC))


def flags(role="before", captured_at=None, latitude=None, longitude=None, report=REPORT):
    return evidence_flags(
        role=role,
        captured_at=captured_at,
        latitude=latitude,
        longitude=longitude,
        report=report,
        max_distance_m=2000,
        max_age=timedelta(hours=72),
    )


def test_a_photo_near_the_report_and_recent_is_not_flagged():
    assert flags(captured_at=REPORT.submitted_at - timedelta(minutes=20), latitude=29.081, longitude=120.051) == []


def test_missing_exif_is_not_a_flag():
    assert flags() == []
    assert flags(latitude=30.0, longitude=121.0, report=ReportContext(None, None, REPORT.submitted_at)) == []


def test_a_photo_taken_far_away_is_flagged():
    assert flags(latitude=30.27, longitude=120.15) == [domain.FLAG_FAR_FROM_REPORT]


def test_a_before_photo_taken_long_ago_is_flagged():
    assert flags(captured_at=REPORT.submitted_at - timedelta(days=30)) == [domain.FLAG_TAKEN_LONG_BEFORE_REPORT]


def test_an_after_photo_older_than_the_report_is_flagged():
    earlier = REPORT.submitted_at - timedelta(hours=1)
    assert flags(role="after", captured_at=earlier) == [domain.FLAG_TAKEN_BEFORE_REPORT]
    assert flags(role="after", captured_at=REPORT.submitted_at + timedelta(days=2)) == []


def item(role, kind="image", minutes=0):
    return EvidenceItem(
        media_id=uuid4(),
        role=role,
        kind=kind,
        sha256=uuid4().hex * 2,
        attached_at=REPORT.submitted_at + timedelta(minutes=minutes),
    )


def test_the_comparison_shows_the_newest_before_and_after_photos():
    old_before, new_before = item("before", minutes=0), item("before", minutes=5)
    after, after_video = item("after", minutes=60), item("after", kind="video", minutes=90)
    assert comparison_pair([old_before, new_before, after, after_video]) == (new_before, after)
    assert comparison_pair([old_before, after_video]) is None
    assert comparison_pair([after]) is None


def test_the_summary_says_whether_a_case_has_an_after_photo():
    assert evidence_summary([]) == {"before": 0, "after": 0, "has_after_photo": False}
    assert evidence_summary([item("before"), item("after", kind="video")]) == {
        "before": 1,
        "after": 1,
        "has_after_photo": False,
    }
    assert evidence_summary([item("before"), item("after")])["has_after_photo"] is True


def test_captions_prefer_capture_time_in_china_time():
    uploaded = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    captured = datetime(2026, 11, 24, 0, 12, tzinfo=UTC)
    assert caption(captured_at=captured, uploaded_at=uploaded) == "拍摄于 2026-11-24 08:12"
    assert caption(captured_at=None, uploaded_at=uploaded) == "上传于 2026-11-25 10:00"


def test_sizes_read_as_people_read_them():
    assert domain.format_bytes(20 * 1024 * 1024) == "20 MB"
    assert domain.format_bytes(1536) == "1.5 KB"
    assert domain.format_bytes(300) == "300 字节"


CASE = domain.CaseAccess(jurisdiction_code="330727001002", department_code="cgj", co_department_codes=("jtj",))


@pytest.mark.parametrize(
    "role,jurisdiction,department,visible",
    [
        ("dispatcher", "330727", None, True),  # the county sees its villages
        ("supervisor", "330727001", None, True),  # the town too
        ("dispatcher", "330727002", None, False),  # another town does not
        ("admin", "330702", None, False),  # nor another county
        ("handler", "330727", "cgj", True),  # the lead department
        ("handler", "330727", "jtj", True),  # a co-handling department
        ("handler", "330727", "sly", False),  # any other department does not
        ("handler", "330727", None, False),
    ],
)
def test_evidence_follows_the_cases_visibility(role, jurisdiction, department, visible):
    assert (
        domain.can_view_case(role=role, jurisdiction_code=jurisdiction, department_code=department, case=CASE)
        is visible
    )


def test_before_dispatch_no_department_handler_sees_a_case():
    reported_only = domain.CaseAccess(jurisdiction_code="330727")
    assert not domain.can_view_case(
        role="handler", jurisdiction_code="330727", department_code="cgj", case=reported_only
    )
    assert domain.can_view_case(
        role="grid_worker", jurisdiction_code="330727", department_code=None, case=reported_only
    )


def test_a_grid_worker_sees_the_evidence_of_cases_in_their_grid_only():
    in_grid = domain.CaseAccess(
        jurisdiction_code="330727001002", department_code="huanwei", grid_code="330727001002001"
    )
    worker = {"role": "grid_worker", "department_code": None, "case": in_grid}
    assert domain.can_view_case(jurisdiction_code="330727001002001", **worker)  # the grid is their division
    assert not domain.can_view_case(jurisdiction_code="330727001002002", **worker)  # the next grid's worker
    assert domain.can_view_case(role="dispatcher", jurisdiction_code="330727", department_code=None, case=in_grid)


def test_exif_is_required_only_where_the_policy_says():
    from datetime import UTC, datetime

    from services.media.domain import exif_refusal

    taken = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    assert "整改后照片须为" in exif_refusal(role="after", kind="image", captured_at=None, required_for=["after"])
    assert exif_refusal(role="after", kind="image", captured_at=taken, required_for=["after"]) is None
    assert exif_refusal(role="before", kind="image", captured_at=None, required_for=["after"]) is None
    assert exif_refusal(role="after", kind="audio", captured_at=None, required_for=["after"]) is None  # no EXIF there
    assert exif_refusal(role="after", kind="image", captured_at=None, required_for=[]) is None


def test_grid_workers_see_the_photos_of_a_report_waiting_to_be_placed_to_place_it():
    unplaced = domain.CaseAccess(jurisdiction_code="330727")  # only an address came: the county's so far
    worker = {"role": "grid_worker", "department_code": None, "case": unplaced}
    assert domain.can_view_case(jurisdiction_code="330727001002001", **worker)  # asked to place it (待定位)
    assert not domain.can_view_case(jurisdiction_code="330702001001001", **worker)  # another county's worker
    placed = domain.CaseAccess(jurisdiction_code="330727001001", grid_code="330727001001001")
    assert not domain.can_view_case(jurisdiction_code="330727001002001", **worker | {"case": placed})
    town = {"role": "dispatcher", "department_code": None, "case": unplaced}
    assert not domain.can_view_case(jurisdiction_code="330727001", **town)  # nobody else below the county
