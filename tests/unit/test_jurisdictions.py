"""The demo county: deterministic, complete codes, grids that tile it, and fast lookups."""

import random
import time

from shared.jurisdictions import (
    COUNTY_CODE, county_boundary, find_grid, in_county, load_demo_county, point_in_polygon, polygon_area,
)


def test_county_has_the_expected_levels_and_code_layout():
    county = load_demo_county()
    assert county.code == "330727"
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
        assert grid.worker.name and grid.group.group_id and "网格" in grid.group.name
        assert len(grid.polygon) >= 3
    assert len({v.name for v in county.villages.values()}) == len(county.villages)


def test_generation_is_deterministic():
    county = load_demo_county()
    load_demo_county.cache_clear()
    again = load_demo_county()
    assert again is not county
    assert again.grids.keys() == county.grids.keys()
    assert all(again.grids[c] == county.grids[c] for c in county.grids)


def test_every_grid_centroid_finds_its_own_grid():
    county = load_demo_county()
    for grid in county.grids.values():
        match = county.find_grid(*grid.centroid)
        assert match is not None and match.grid_code == grid.code
        assert (match.village_code, match.town_code, match.county_code) == (grid.village_code, grid.town_code, "330727")


def test_grids_tile_the_county_without_gaps_or_overlaps():
    county = load_demo_county()
    boundary_area = abs(polygon_area(county_boundary()))
    grids_area = sum(abs(polygon_area(g.polygon)) for g in county.grids.values())
    assert abs(grids_area - boundary_area) / boundary_area < 1e-9
    rng = random.Random(3)
    lats = [p[0] for p in county.boundary]
    lngs = [p[1] for p in county.boundary]
    for _ in range(3000):
        lat, lng = rng.uniform(min(lats), max(lats)), rng.uniform(min(lngs), max(lngs))
        containing = [g for g in county.grids.values() if point_in_polygon(lat, lng, g.polygon)]
        assert len(containing) == (1 if in_county(lat, lng) else 0)
        match = find_grid(lat, lng)
        assert (match.grid_code if match else None) == (containing[0].code if containing else None)


def test_points_outside_the_county_have_no_grid():
    assert find_grid(30.25, 120.15) is None  # Hangzhou
    assert find_grid(0, 0) is None
    assert not in_county(29.5, 120.05)
    assert in_county(29.08, 120.05) and find_grid(29.08, 120.04) is not None


def test_lookup_is_well_under_a_millisecond():
    county = load_demo_county()
    rng = random.Random(11)
    points = [(rng.uniform(28.93, 29.22), rng.uniform(119.89, 120.20)) for _ in range(20_000)]
    started = time.perf_counter()
    for lat, lng in points:
        county.find_grid(lat, lng)
    per_lookup = (time.perf_counter() - started) / len(points)
    print(f"find_grid: {per_lookup * 1e6:.1f} µs per lookup over {len(county.grids)} grids")
    assert per_lookup < 100e-6


def test_level_of_codes():
    county = load_demo_county()
    grid = next(iter(county.grids.values()))
    assert county.level_of("330727") == "county"
    assert county.level_of(grid.town_code) == "town"
    assert county.level_of(grid.village_code) == "village"
    assert county.level_of(grid.code) == "grid"
