"""WGS-84 ⇄ GCJ-02 against published reference pairs (googollee/eviltransform's test points)."""

import random

import pytest

from shared.geo import CoordSystem, distance_m, gcj02_to_wgs84, to_wgs84, wgs84_to_gcj02

# (wgs_lat, wgs_lng, gcj_lat, gcj_lng)
REFERENCE = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


@pytest.mark.parametrize("wgs_lat,wgs_lng,gcj_lat,gcj_lng", REFERENCE)
def test_wgs_to_gcj_matches_reference(wgs_lat, wgs_lng, gcj_lat, gcj_lng):
    lat, lng = wgs84_to_gcj02(wgs_lat, wgs_lng)
    assert lat == pytest.approx(gcj_lat, abs=1e-9) and lng == pytest.approx(gcj_lng, abs=1e-9)


@pytest.mark.parametrize("wgs_lat,wgs_lng,gcj_lat,gcj_lng", REFERENCE)
def test_gcj_to_wgs_recovers_reference_within_a_millimetre(wgs_lat, wgs_lng, gcj_lat, gcj_lng):
    lat, lng = gcj02_to_wgs84(gcj_lat, gcj_lng)
    assert distance_m(lat, lng, wgs_lat, wgs_lng) < 0.001


def test_round_trip_anywhere_in_china_is_sub_millimetre():
    rng = random.Random(7)
    for _ in range(2000):
        lat, lng = rng.uniform(18, 53), rng.uniform(74, 134)
        back = gcj02_to_wgs84(*wgs84_to_gcj02(lat, lng))
        assert distance_m(*back, lat, lng) < 0.001


def test_offset_in_the_demo_county_is_hundreds_of_metres():
    gcj = wgs84_to_gcj02(29.08, 120.05)
    assert 300 < distance_m(29.08, 120.05, *gcj) < 700


def test_outside_china_is_not_offset_and_datum_dispatch():
    assert wgs84_to_gcj02(48.85, 2.35) == (48.85, 2.35)
    assert to_wgs84(29.08, 120.05, "wgs84") == (29.08, 120.05)
    assert to_wgs84(*wgs84_to_gcj02(29.08, 120.05), CoordSystem.gcj02) == pytest.approx((29.08, 120.05), abs=1e-8)
    with pytest.raises(ValueError):
        to_wgs84(29.08, 120.05, "bd09")


def test_distance_of_one_degree_of_latitude():
    assert distance_m(29.0, 120.0, 30.0, 120.0) == pytest.approx(111_195, rel=1e-3)
