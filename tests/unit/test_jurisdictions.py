"""The county map as services load it: complete codes, grids that tile the county, fast lookups,
and a file format that says what is wrong with a broken map."""

import random

import pytest

from shared import jurisdictions
from shared.jurisdictions import InvalidCountyMap, parse_county, point_in_polygon, polygon_area

COUNTY_CODE = "330727"


def test_county_has_the_expected_levels_and_code_layout(county):
    assert county.code == COUNTY_CODE
    assert 10 <= len(county.towns) <= 14
    assert 120 <= len(county.villages) <= 180
    assert 550 <= len(county.grids) <= 650
    for town in county.towns.values():
        assert len(town.code) == 9 and town.code.startswith(COUNTY_CODE) and town.county_code == COUNTY_CODE
        assert town.name.endswith(("街道", "镇", "乡"))
    for village in county.villages.values():
        assert len(village.code) == 12 and village.code.startswith(village.town_code)
        assert village.code in county.towns[village.town_code].village_codes
        assert village.name.endswith(("社区", "村"))
    for grid in county.grids.values():
        assert len(grid.code) == 15 and grid.code.startswith(grid.village_code)
        assert grid.village_code.startswith(grid.town_code)
        assert grid.code in county.villages[grid.village_code].grid_codes
        assert grid.worker.name and grid.group.group_id and "网格" in grid.group.name
        assert len(grid.polygon) >= 3
    assert len({v.name for v in county.villages.values()}) == len(county.villages)


def test_every_grid_centroid_finds_its_own_grid(county):
    for grid in county.grids.values():
        match = county.find_grid(*grid.centroid)
        assert match is not None and match.grid_code == grid.code
        assert (match.village_code, match.town_code, match.county_code) == (grid.village_code, grid.town_code, "330727")


def test_grids_tile_the_county_without_gaps_or_overlaps(county):
    boundary_area = abs(polygon_area(county.boundary))
    grids_area = sum(abs(polygon_area(g.polygon)) for g in county.grids.values())
    assert abs(grids_area - boundary_area) / boundary_area < 1e-9
    rng = random.Random(3)
    lats = [p[0] for p in county.boundary]
    lngs = [p[1] for p in county.boundary]
    for _ in range(3000):
        lat, lng = rng.uniform(min(lats), max(lats)), rng.uniform(min(lngs), max(lngs))
        containing = [g for g in county.grids.values() if point_in_polygon(lat, lng, g.polygon)]
        assert len(containing) == (1 if county.contains(lat, lng) else 0)
        match = county.find_grid(lat, lng)
        assert (match.grid_code if match else None) == (containing[0].code if containing else None)


def test_points_outside_the_county_have_no_grid(county):
    assert county.find_grid(30.25, 120.15) is None  # Hangzhou
    assert county.find_grid(0, 0) is None
    assert not county.contains(29.5, 120.05)
    assert county.contains(29.08, 120.05) and county.find_grid(29.08, 120.04) is not None


def test_lookup_tests_a_handful_of_polygons_not_every_grid(county, monkeypatch):
    # The index's promise, counted rather than timed (speed lives in make bench): a lookup tests
    # the few grids whose cell it falls in, not all of the county's.
    tested = 0
    real = jurisdictions.point_in_polygon

    def counting(lat, lng, polygon):
        nonlocal tested
        tested += 1
        return real(lat, lng, polygon)

    monkeypatch.setattr(jurisdictions, "point_in_polygon", counting)
    rng = random.Random(11)
    points = [(rng.uniform(28.93, 29.22), rng.uniform(119.89, 120.20)) for _ in range(2_000)]
    found = sum(county.find_grid(lat, lng) is not None for lat, lng in points)
    assert found > 0 and len(county.grids) > 100
    assert tested / len(points) < 5


def test_level_of_codes(county):
    grid = next(iter(county.grids.values()))
    assert county.level_of("330727") == "county"
    assert county.level_of(grid.town_code) == "town"
    assert county.level_of(grid.village_code) == "village"
    assert county.level_of(grid.code) == "grid"


def test_a_residents_group_names_its_grid(county):
    grid = next(iter(county.grids.values()))
    assert county.grid_of_group(grid.group.group_id).grid_code == grid.code
    assert county.grid_of_group("wr-not-a-group") is None


def _square(lat: float, lng: float, size: float) -> dict:
    ring = [[lng, lat], [lng + size, lat], [lng + size, lat + size], [lng, lat + size], [lng, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def _tiny_map(*, grid_parent: str = "110101001001") -> dict:
    def feature(geometry=None, **properties):
        return {"type": "Feature", "properties": properties, "geometry": geometry}

    return {
        "type": "FeatureCollection",
        "features": [
            feature(_square(39.9, 116.4, 0.02), level="county", code="110101", name="东城区"),
            feature(level="town", code="110101001", name="东华门街道", kind="subdistrict", parent_code="110101"),
            feature(level="village", code="110101001001", name="多福巷社区", kind="community", parent_code="110101001"),
            *(
                feature(
                    _square(39.9, 116.4 + n * 0.01, 0.01),
                    level="grid",
                    code=f"110101001001{n + 1:03d}",
                    name=f"多福巷社区第{n + 1}网格",
                    parent_code=grid_parent,
                    worker_id=f"w{n}",
                    worker_name="张三",
                    group_id=f"g{n}",
                    group_name=f"第{n + 1}网格群",
                )
                for n in range(2)
            ),
        ],
    }


def test_a_map_in_geojson_positions_is_read_as_lat_lng():
    county = parse_county(_tiny_map())
    assert county.code == "110101" and list(county.grids) == ["110101001001001", "110101001001002"]
    assert county.towns["110101001"].village_codes == ("110101001001",)
    # GeoJSON gives [lng, lat] and repeats a ring's first position; the map holds (lat, lng) without it.
    polygon = county.grids["110101001001001"].polygon
    assert len(polygon) == 4 and polygon[0] == (39.9, 116.4) and polygon[2] == pytest.approx((39.91, 116.41))
    assert county.find_grid(39.905, 116.415).grid_code == "110101001001002"
    assert county.grid_of_group("g0").grid_code == "110101001001001"


def test_a_broken_map_says_what_is_wrong():
    with pytest.raises(InvalidCountyMap, match="parent village '110101001999'"):
        parse_county(_tiny_map(grid_parent="110101001999"))
    without_county = _tiny_map()
    without_county["features"] = without_county["features"][1:]
    with pytest.raises(InvalidCountyMap, match="one county"):
        parse_county(without_county)
