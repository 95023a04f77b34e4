import random
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import ValidationError
from starlette.requests import Request

from services.intake.domain import (
    DUPLICATE_CELL_DEG,
    NO_TEXT_DESCRIPTION,
    Bundle,
    OpenCase,
    OutsideCounty,
    ReportIn,
    bundle_description,
    client_address,
    division_of,
    duplicate_lock_keys,
    format_case_no,
    matching_open_case,
    place_report,
    rating_reply,
    relocation_refusal,
    window_start,
)
from services.intake.reports import client_ip
from services.intake.settings import IntakeSettings
from shared.geo import distance_m, wgs84_to_gcj02
from shared.phones import decrypt_phone, encrypt_phone, mask_phone, phone_hash


def test_phone_is_masked_and_hashed_with_a_key():
    assert mask_phone("13812341234") == "138****1234"
    assert phone_hash("13812341234", "k1") == phone_hash("13812341234", "k1")
    assert phone_hash("13812341234", "k1") != phone_hash("13812341234", "k2")
    assert b"13812341234" not in phone_hash("13812341234", "k1")


def test_phone_encryption_round_trips_and_hides_the_number():
    blob = encrypt_phone("13812341234", "secret")
    assert b"13812341234" not in blob and b"1234" not in blob[12:]
    assert decrypt_phone(blob, "secret") == "13812341234"
    assert encrypt_phone("13812341234", "secret") != blob  # a fresh nonce each time
    with pytest.raises(InvalidTag):  # the wrong key is refused, not misread
        decrypt_phone(blob, "another-secret")


@pytest.mark.parametrize(
    "body",
    [
        {"description": ""},
        {"description": "x" * 2001, "address": "幸福路"},
        {"description": "井盖坏了", "lat": 91, "lng": 120},
        {"description": "井盖坏了", "lat": 29.1},
        {"description": "井盖坏了", "address": "幸福路", "reporter_phone": "12345"},
        {"description": "井盖坏了", "address": "幸福路", "channel": "fax"},
        {"description": "井盖坏了", "lat": 29.08, "lng": 120.05, "coord_system": "bd09"},
        {"description": "井盖坏了"},  # no place at all
        {"description": "井盖坏了", "address": "   "},
        {"description": "井盖坏了", "address": "路" * 201},
    ],
)
def test_bad_reports_are_refused(body):
    with pytest.raises(ValidationError):
        ReportIn.model_validate(body)


def test_description_and_address_are_trimmed():
    report = ReportIn(description="  井盖坏了 ", address=" 幸福路12号 ")
    assert report.description == "井盖坏了" and report.address == "幸福路12号"
    assert report.coord_system == "wgs84"


def test_placement_converts_gcj02_before_finding_the_grid(county):
    rng = random.Random(5)
    grids = rng.sample(list(county.grids.values()), 50)
    for grid in grids:
        lat, lng = grid.centroid
        g_lat, g_lng = wgs84_to_gcj02(lat, lng)
        placed = place_report(lat=g_lat, lng=g_lng, coord_system="gcj02", county=county)
        assert placed.grid.grid_code == grid.code
        assert placed.lat == pytest.approx(lat, abs=1e-8) and placed.lng == pytest.approx(lng, abs=1e-8)
    # Read as WGS-84, the same GCJ-02 numbers are ~500 m off: a good share land in another grid.
    misplaced = 0
    for grid in grids:
        wrong = county.find_grid(*wgs84_to_gcj02(*grid.centroid))
        misplaced += wrong is None or wrong.grid_code != grid.code
    assert misplaced >= 5


def test_points_outside_the_county_and_address_only_reports(county):
    with pytest.raises(OutsideCounty):
        place_report(lat=30.27, lng=120.15, coord_system="wgs84", county=county)
    placed = place_report(lat=None, lng=None, coord_system="wgs84", county=county)
    assert placed.needs_locating and placed.grid is None


def test_a_report_is_in_its_grids_village_or_else_in_the_division_intake_serves(county):
    grid = next(iter(county.grids.values()))
    placed = place_report(lat=grid.centroid[0], lng=grid.centroid[1], coord_system="wgs84", county=county)
    assert division_of(placed.grid.village_code, instance_code="330727") == grid.village_code
    address_only = place_report(lat=None, lng=None, coord_system="wgs84", county=county)
    assert address_only.grid is None and division_of(None, instance_code="330727") == "330727"


def test_the_nearest_open_case_within_the_distance_is_the_match():
    near, nearer, closed = uuid4(), uuid4(), uuid4()
    cases = [
        OpenCase(near, "A", 29.0803, 120.05, "dispatched"),  # ~33 m
        OpenCase(nearer, "B", 29.0801, 120.05, "acknowledged"),  # ~11 m
        OpenCase(closed, "C", 29.08, 120.05, "closed"),  # 0 m but closed
        OpenCase(uuid4(), "D", 29.09, 120.05, "dispatched"),  # ~1.1 km
    ]
    case, distance = matching_open_case(cases, lat=29.08, lng=120.05, max_distance_m=50)
    assert case.case_id == nearer and 10 < distance < 12
    assert matching_open_case(cases[3:], lat=29.08, lng=120.05, max_distance_m=50) is None


def test_case_numbers_and_rate_windows():
    assert format_case_no(datetime(2026, 11, 26, 3, 0, tzinfo=UTC), 42) == "20261126-000042"
    # 00:48 on the 27th in Beijing is still the 26th in UTC: the number takes Beijing's day.
    assert format_case_no(datetime(2026, 11, 26, 16, 48, tzinfo=UTC), 43) == "20261127-000043"
    at = datetime(2026, 11, 26, 8, 30, 59, tzinfo=UTC)
    assert window_start(at, 60) == datetime(2026, 11, 26, 8, 30, tzinfo=UTC)
    assert window_start(at, 3600) == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def test_bundle_description():
    assert bundle_description(Bundle(("井盖", "翻起来了"), (), None, None, None, None)) == "井盖\n翻起来了"
    assert bundle_description(Bundle((), ("media-1",), 29.08, 120.05, "gcj02", None)) == NO_TEXT_DESCRIPTION


def test_client_ip_reads_x_forwarded_for_only_through_trusted_proxies():
    request = Request(
        {"type": "http", "client": ("10.0.0.1", 5000), "headers": [(b"x-forwarded-for", b"203.0.113.7, 10.0.0.1")]}
    )
    assert client_ip(request, IntakeSettings()) == "10.0.0.1"
    assert client_ip(request, IntakeSettings(intake_trusted_proxies=["10.0.0.0/8"])) == "203.0.113.7"


PROXIES = ["10.0.0.0/8", "192.168.1.5"]


@pytest.mark.parametrize(
    "peer, forwarded, trusted, client",
    [
        # Without trusted proxies the header is the client's own writing: ignored.
        ("203.0.113.9", "1.2.3.4", [], "203.0.113.9"),
        # A request that did not come through a trusted proxy: its header is ignored too.
        ("203.0.113.9", "1.2.3.4", PROXIES, "203.0.113.9"),
        # Through the ingress: the client is the first untrusted hop from the right.
        ("10.1.2.3", "198.51.100.7", PROXIES, "198.51.100.7"),
        # A client that forges hops on the left is still itself.
        ("10.1.2.3", "1.2.3.4, 5.6.7.8, 198.51.100.7", PROXIES, "198.51.100.7"),
        # Two trusted proxies in a row.
        ("10.1.2.3", "198.51.100.7, 192.168.1.5", PROXIES, "198.51.100.7"),
        # Garbage in the header is not a trusted proxy: it is what the client wrote, as the client.
        ("10.1.2.3", "not-an-ip", PROXIES, "not-an-ip"),
        ("10.1.2.3", None, PROXIES, "10.1.2.3"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(peer, forwarded, trusted, client):
    assert client_address(peer=peer, forwarded_for=forwarded, trusted_proxies=trusted) == client


def test_grid_workers_place_only_waiting_reports_and_centres_correct_within_their_area():
    county, town, village = "330727", "330727001", "330727001002"

    def refusal(role, area, needs_locating, placed_in):
        return relocation_refusal(
            role=role, jurisdiction_code=area, county_code=county, needs_locating=needs_locating, placed_in=placed_in
        )

    assert refusal("grid_worker", village, True, None) is None
    assert "调度员" in refusal("grid_worker", village, False, village + "001")
    assert refusal("dispatcher", town, False, village + "001") is None
    assert refusal("dispatcher", "330727002", False, village + "001")  # another town's report
    assert refusal("dispatcher", county, False, village + "001") is None


@pytest.mark.parametrize(
    "text, rating",
    [
        ("1", "satisfied"),
        (" １ ", "satisfied"),
        ("满意！", "satisfied"),
        ("2。", "basic"),
        ("基本满意", "basic"),
        ("3", "dissatisfied"),
        ("不满意", "dissatisfied"),
        ("@网格通 3", "dissatisfied"),  # a WeCom group's answer @-mentions the bot
        ("@网格通\u20053", "dissatisfied"),
        ("@网格通 3号楼漏水", None),
        ("3号楼漏水", None),
        ("13", None),
        ("", None),
        (None, None),
    ],
)
def test_an_answer_to_the_review_question_is_read_as_a_rating(text, rating):
    assert rating_reply(text) == rating


def test_reports_near_enough_to_be_duplicates_always_share_a_lock_key():
    """The duplicate check locks cells, not the whole category: two reports within the duplicate
    distance, wherever cell borders fall between them, must wait for each other."""
    rng = random.Random(3)
    radius_deg = 50 / 111_000 * 1.5
    for _ in range(2000):
        # Points just either side of a cell corner, up to 50 m apart.
        lat = 29.0 + DUPLICATE_CELL_DEG * rng.randrange(100) + rng.uniform(-0.0003, 0.0003)
        lng = 120.0 + DUPLICATE_CELL_DEG * rng.randrange(100) + rng.uniform(-0.0003, 0.0003)
        other_lat, other_lng = lat + rng.uniform(-0.00031, 0.00031), lng + rng.uniform(-0.00036, 0.00036)
        if distance_m(lat, lng, other_lat, other_lng) > 50:
            continue
        mine = duplicate_lock_keys(category="manhole", lat=lat, lng=lng, radius_deg=radius_deg)
        theirs = duplicate_lock_keys(category="manhole", lat=other_lat, lng=other_lng, radius_deg=radius_deg)
        assert set(mine) & set(theirs) and mine == sorted(mine)
    far = duplicate_lock_keys(category="manhole", lat=29.1, lng=120.1, radius_deg=radius_deg)
    assert not set(far) & set(duplicate_lock_keys(category="manhole", lat=29.2, lng=120.1, radius_deg=radius_deg))
    assert not set(far) & set(duplicate_lock_keys(category="noise", lat=29.1, lng=120.1, radius_deg=radius_deg))


def test_a_confirmation_link_is_bound_to_its_report():
    from uuid import uuid4

    from services.intake.domain import confirmation_token, confirmation_token_valid

    report, other = uuid4(), uuid4()
    token = confirmation_token(report, key="k")
    assert confirmation_token_valid(report, token, key="k") and len(token) == 32
    assert not confirmation_token_valid(other, token, key="k")  # another report's link
    assert not confirmation_token_valid(report, token, key="another key")
    assert not confirmation_token_valid(report, "x" * 32, key="k")
