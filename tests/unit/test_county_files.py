"""A county's standard files: each kind of error is found and named with its file and line (or
feature index), all errors at once; valid files make the county map services load."""

import csv
import io
import json
from pathlib import Path

import pytest

from devtools.demo_county import DEMO_DIR, SAMPLE_DIR
from shared.county_files import InvalidCountyFiles, county_map, interiors_overlap, read_county_dir
from shared.geo import gcj02_to_wgs84, wgs84_to_gcj02
from shared.jurisdictions import parse_county

S = 0.01  # a grid's side in degrees
LAT, LNG = 30.0, 121.0


def rect(lat0, lng0, lat1, lng1):
    return [[lng0, lat0], [lng1, lat0], [lng1, lat1], [lng0, lat1], [lng0, lat0]]


def polygon(ring):
    return {"type": "Polygon", "coordinates": [ring]}


def grid(code, kind="ordinary", ring=None, village="330701001001", name=None):
    ring = ring or rect(LAT, LNG, LAT + S, LNG + S)
    props = {"grid_code": code, "name": name or f"网格{code[-3:]}", "village_code": village, "kind": kind}
    return {"type": "Feature", "properties": props, "geometry": polygon(ring)}


def outline(code, ring):
    return {"type": "Feature", "properties": {"division_code": code}, "geometry": polygon(ring)}


V = "330701001001"


def base() -> dict:
    """A small valid county: one town, one village (outline given) with two ordinary grids, a micro
    grid in the first and a school's special grid over both."""
    return {
        "divisions": [
            ["330701000000", "测试县", "county", "", ""],
            ["330701001000", "城关镇", "town", "330701000000", ""],
            [V, "幸福社区", "village", "330701001000", ""],
        ],
        "features": [
            outline("330701000000", rect(LAT, LNG, LAT + S, LNG + 2 * S)),
            outline(
                V, [[LNG, LAT], [LNG + S, LAT], [LNG + 2 * S, LAT], [LNG + 2 * S, LAT + S], [LNG, LAT + S], [LNG, LAT]]
            ),
            grid(V + "001", ring=rect(LAT, LNG, LAT + S, LNG + S)),
            grid(V + "002", ring=rect(LAT, LNG + S, LAT + S, LNG + 2 * S)),
            grid(V + "001001", "micro", rect(LAT, LNG, LAT + S / 2, LNG + S / 2)),
            grid(V + "901", "special", rect(LAT + S / 4, LNG + S / 2, LAT + S * 3 / 4, LNG + S * 3 / 2)),
        ],
        "datum": "WGS-84",
        "groups": [[f"g{c}", f"群{c}", c, f"robot-{c}"] for c in (V + "001", V + "002", V + "001001", V + "901")]
        + [["town", "城关镇工作群", "330701001000", "robot-town"]],
        "workers": [[f"w{c}", f"网格员{c[-3:]}", c] for c in (V + "001", V + "002", V + "001001", V + "901")],
    }


def write(directory: Path, county: dict) -> Path:
    def table(header, rows):
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([header, *rows])
        return out.getvalue()

    (directory / "divisions.csv").write_text(
        table(["code", "name", "level", "parent_code", "kind"], county["divisions"]), encoding="utf-8"
    )
    document = {"type": "FeatureCollection", "datum": county["datum"], "features": county["features"]}
    (directory / "grids.geojson").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    (directory / "groups.csv").write_text(table(["group_id", "name", "code", "robot_key"], county["groups"]), "utf-8")
    (directory / "workers.csv").write_text(table(["worker_id", "name", "grid_code"], county["workers"]), "utf-8")
    return directory


def errors_of(tmp_path: Path, county: dict) -> list[str]:
    with pytest.raises(InvalidCountyFiles) as raised:
        read_county_dir(write(tmp_path, county))
    return raised.value.errors


def test_the_base_county_is_valid_and_special_grids_win_placement(tmp_path):
    files = read_county_dir(write(tmp_path, base()))
    county = parse_county(county_map(files, version=3))
    assert county.version == 3 and len(county.content_hash) == 64
    assert {g.kind for g in county.grids.values()} == {"ordinary", "micro", "special"}
    # Inside the school: the special grid; elsewhere in grid 001, grid 001 (not its micro grid).
    assert county.find_grid(LAT + S / 2, LNG + S * 0.9).grid_code == V + "901"
    assert county.find_grid(LAT + S / 8, LNG + S / 8).grid_code == V + "001"
    assert county.find_grid(LAT + S * 0.9, LNG + S * 1.9).grid_code == V + "002"
    assert county.grid_of_group("g" + V + "001001").grid_code == V + "001"  # a micro grid's group: its grid
    assert county.grids[V + "001001"].parent_grid == V + "001"


def test_bad_codes_and_parents_name_their_line(tmp_path):
    county = base()
    county["divisions"] += [
        ["33070100200", "短码村", "village", "330701001000", ""],  # line 5: 11 digits
        ["330701002000", "错级镇", "village", "330701000000", ""],  # line 6: a town's code, level village
        ["330702001001", "越界村", "village", "330701001000", ""],  # line 7: not under its parent
        ["330701001002", "孤儿村", "village", "330701009000", ""],  # line 8: unknown parent
        ["330701003000", "挂错镇", "town", "330701001000", ""],  # line 9: parent is a town
        ["330701001000", "重复镇", "town", "330701000000", ""],  # line 10: duplicate
    ]
    errors = errors_of(tmp_path, county)
    assert errors[:6] == [
        "divisions.csv:5: code '33070100200' is not a 12-digit 统计用区划代码",
        "divisions.csv:6: code 330701002000 is a town's code by its digits, not a village's",
        "divisions.csv:10: code 330701001000 appears twice (first at divisions.csv:3)",
        "divisions.csv:7: code 330702001001 is not under its parent 330701001000"
        " (a village's code starts with its parent's 9 digits)",
        "divisions.csv:8: unknown parent 330701009000 (not in divisions.csv)",
        "divisions.csv:9: parent 330701001000 is a town, not a county",
    ]


def test_exactly_one_county(tmp_path):
    county = base()
    county["divisions"].append(["330702000000", "另一县", "county", "", ""])
    assert "divisions.csv: exactly one county is required, found 2" in errors_of(tmp_path, county)


@pytest.mark.parametrize(
    ("ring", "why"),
    [
        (rect(LAT, LNG, LAT + S, LNG + S)[:-1], "the ring is not closed (its last position must repeat its first)"),
        (
            [[LNG, LAT], [LNG + S, LAT + S], [LNG + S, LAT], [LNG, LAT + S], [LNG, LAT]],
            "the ring intersects itself (edges 1 and 3 cross or touch)",
        ),
        ([[LNG, LAT], [LNG + S, LAT], [LNG, LAT]], "the ring is not closed (its last position must repeat its first)"),
        (
            [[LNG, LAT], [LNG + S, LAT], [LNG + S / 2, LAT], [LNG + S, LAT + S], [LNG, LAT]],
            "the ring intersects itself (edges 1 and 2 fold back on each other at [121.010000, 30.000000])",
        ),
    ],
)
def test_invalid_polygons_name_their_feature(tmp_path, ring, why):
    county = base()
    county["features"][3] = grid(V + "002", ring=ring)
    assert f"grids.geojson:feature 3 (grid {V}002): invalid polygon: {why}" in errors_of(tmp_path, county)


def test_holes_and_other_geometries_are_refused(tmp_path):
    county = base()
    county["features"][3]["geometry"]["coordinates"].append(
        rect(LAT + 0.001, LNG + S + 0.001, LAT + 0.002, LNG + S + 0.002)
    )
    county["features"][4]["geometry"] = {"type": "Point", "coordinates": [LNG, LAT]}
    errors = errors_of(tmp_path, county)
    assert f"grids.geojson:feature 3 (grid {V}002): invalid polygon: holes (inner rings) are not supported" in errors
    assert f"grids.geojson:feature 4 (grid {V}001001): invalid polygon: the geometry must be a Polygon" in errors


def test_overlapping_ordinary_grids_but_not_special_ones(tmp_path):
    county = base()
    county["features"][3] = grid(V + "002", ring=rect(LAT, LNG + S * 0.8, LAT + S, LNG + 2 * S))
    errors = errors_of(tmp_path, county)
    assert f"grids.geojson:feature 2 (grid {V}001): overlaps ordinary grid {V}002 (grids.geojson:feature 3)" in errors
    assert not any("901" in e for e in errors)  # the special grid overlaps both, by design
    assert interiors_overlap(  # identical polygons overlap; neighbours sharing an edge do not
        tuple((p[1], p[0]) for p in rect(LAT, LNG, LAT + S, LNG + S)[:-1]),
        tuple((p[1], p[0]) for p in rect(LAT, LNG, LAT + S, LNG + S)[:-1]),
    )
    assert not interiors_overlap(
        tuple((p[1], p[0]) for p in rect(LAT, LNG, LAT + S, LNG + S)[:-1]),
        tuple((p[1], p[0]) for p in rect(LAT, LNG + S, LAT + S, LNG + 2 * S)[:-1]),
    )


def test_gap_inside_a_village_and_grids_outside_its_outline(tmp_path):
    county = base()
    county["features"][3] = grid(V + "002", ring=rect(LAT, LNG + S, LAT + S / 2, LNG + 2 * S))  # half of it
    errors = errors_of(tmp_path, county)
    assert any(e.startswith(f"grids.geojson: village {V}'s ordinary grids cover 75.0% of its outline:") for e in errors)
    assert any("m² inside the village belong to no grid" in e for e in errors)
    county = base()
    county["features"][3] = grid(V + "002", ring=rect(LAT, LNG + S, LAT + 2 * S, LNG + 2 * S))  # beyond it
    assert f"grids.geojson:feature 3 (grid {V}002): lies partly outside its village's outline" in errors_of(
        tmp_path, county
    )


def test_micro_grids_lie_inside_their_grid(tmp_path):
    county = base()
    county["features"][4] = grid(V + "001001", "micro", rect(LAT, LNG + S / 2, LAT + S / 2, LNG + S * 1.5))
    county["features"].append(grid(V + "009001", "micro", rect(LAT, LNG, LAT + S / 4, LNG + S / 4)))
    errors = errors_of(tmp_path, county)
    assert f"grids.geojson:feature 4 (grid {V}001001): not inside its grid {V}001" in errors
    assert (
        f"grids.geojson:feature 6 (grid {V}009001): code is not under an ordinary grid (its first 15 digits)" in errors
    )


def test_grid_codes_villages_and_kinds(tmp_path):
    county = base()
    county["features"] += [
        grid("330701001002001", ring=rect(LAT + 1, LNG, LAT + 1 + S, LNG + S), village="330701001002"),  # feature 6
        grid("330701001009001", ring=rect(LAT + 1, LNG, LAT + 1 + S, LNG + S)),  # feature 7: not under its village
        grid(V + "003", "district", rect(LAT + 1, LNG, LAT + 1 + S, LNG + S)),  # feature 8: no such kind
        grid(V + "0040", ring=rect(LAT + 1, LNG, LAT + 1 + S, LNG + S)),  # feature 9: 16 digits
        grid(V + "001", ring=rect(LAT + 1, LNG, LAT + 1 + S, LNG + S)),  # feature 10: duplicate
    ]
    county["features"][7]["properties"]["village_code"] = V
    errors = errors_of(tmp_path, county)
    assert (
        "grids.geojson:feature 6 (grid 330701001002001): unknown village '330701001002'"
        " (not a village in divisions.csv)" in errors
    )
    assert (
        f"grids.geojson:feature 7 (grid 330701001009001): code is not under its village {V}"
        " (a grid's code starts with it)" in errors
    )
    assert f"grids.geojson:feature 8 (grid {V}003): kind 'district' is not ordinary, micro or special" in errors
    assert f"grids.geojson:feature 9 (grid {V}0040): a ordinary grid's code has 15 digits" in errors
    assert (
        f"grids.geojson:feature 10 (grid {V}001): grid code appears twice (first at grids.geojson:feature 2)" in errors
    )


def test_datum_must_be_declared_and_the_county_outline_given(tmp_path):
    county = base()
    county["datum"] = "BD-09"
    county["divisions"][1][3] = "330799000000"  # divisions.csv is still checked
    assert errors_of(tmp_path, county) == [
        "divisions.csv:3: unknown parent 330799000000 (not in divisions.csv)",
        "grids.geojson: the top-level property datum must be WGS-84 or GCJ-02, not 'BD-09'",
    ]
    county = base()
    del county["features"][0]
    assert "grids.geojson: the county's outline (a feature with the county's division_code) is missing" in errors_of(
        tmp_path, county
    )


def test_unknown_grids_and_divisions_in_groups_and_workers(tmp_path):
    county = base()
    county["groups"] += [
        ["gx", "某群", "330701001001777", "robot-x"],  # line 7
        ["gy", "某群", "330701005000", "robot-y"],  # line 8
        ["g" + V + "001", "重复群", V + "001", "robot-z"],  # line 9
        ["gz", "", V, ""],  # line 10
    ]
    county["workers"].append(["wx", "某人", "330701001001778"])  # line 6
    errors = errors_of(tmp_path, county)
    assert errors == [
        "workers.csv:6: unknown grid '330701001001778' (not in grids.geojson)",
        "groups.csv:7: unknown grid or division '330701001001777' (not in grids.geojson or divisions.csv)",
        "groups.csv:8: unknown grid or division '330701005000' (not in grids.geojson or divisions.csv)",
        f"groups.csv:9: group g{V}001 appears twice (first at groups.csv:2)",
        "groups.csv:10: group_id, name and robot_key are required",
    ]


def test_grids_need_a_worker_and_a_group_and_files_their_columns(tmp_path):
    county = base()
    county["workers"] = county["workers"][1:]
    county["groups"] = county["groups"][:-2] + county["groups"][-1:]
    errors = errors_of(tmp_path, county)
    assert f"grids.geojson:feature 2 (grid {V}001): no grid worker in workers.csv" in errors
    assert f"grids.geojson:feature 5 (grid {V}901): no group in groups.csv" in errors
    write(tmp_path, base())
    (tmp_path / "workers.csv").write_text("id,name\nw1,某人\n", encoding="utf-8")
    (tmp_path / "groups.csv").unlink()
    with pytest.raises(InvalidCountyFiles) as raised:
        read_county_dir(tmp_path)
    assert "workers.csv:1: missing column(s) worker_id, grid_code" in raised.value.errors
    assert "groups.csv: the file is missing" in raised.value.errors


def test_gcj02_files_are_converted_to_wgs84(tmp_path):
    county = base()
    county["datum"] = "GCJ-02"
    for feature in county["features"]:
        ring = feature["geometry"]["coordinates"][0]
        feature["geometry"]["coordinates"][0] = [list(reversed(wgs84_to_gcj02(lat, lng))) for lng, lat in ring]
    files = read_county_dir(write(tmp_path, county))
    first = next(g for g in files.grids if g.code == V + "001")
    assert first.polygon[0] == pytest.approx((LAT, LNG), abs=1e-9)
    gcj = wgs84_to_gcj02(LAT + S / 2, LNG + S * 1.5)
    assert gcj02_to_wgs84(*gcj) == pytest.approx((LAT + S / 2, LNG + S * 1.5), abs=1e-9)


def test_the_shipped_counties_are_valid():
    demo, sample = read_county_dir(DEMO_DIR), read_county_dir(SAMPLE_DIR)
    assert (demo.county.code, len(demo.towns), len(demo.villages), len(demo.grids)) == ("330727", 12, 152, 613)
    assert (sample.county.code, len(sample.towns), len(sample.villages)) == ("330799", 3, 6)
    assert {g.kind for g in sample.grids} == {"ordinary", "micro", "special"}
    assert sample.village_outlines  # 湖滨社区's outline, covered by its grids


def test_a_village_without_ordinary_grids(tmp_path):
    county = base()
    county["divisions"].append(["330701001002", "空村", "village", "330701001000", ""])
    expected = "divisions.csv:5: village 330701001002 has no ordinary grid in grids.geojson"
    assert errors_of(tmp_path, county) == [expected]


def test_the_command_checks_and_refuses_with_every_error(tmp_path, capsys):
    from services.dispatch.county_import import main

    assert main(["--check", str(SAMPLE_DIR)]) == 0
    assert "样板县 (330799) is valid" in capsys.readouterr().out
    county = base()
    county["workers"].append(["wx", "某人", "330701001001778"])
    county["groups"].append(["gx", "某群", "330701001001777", "robot-x"])
    write(tmp_path, county)
    assert main([str(tmp_path)]) == 1  # validation comes first: no database is needed to refuse
    assert capsys.readouterr().err.splitlines() == [
        f"{tmp_path}/workers.csv:6: unknown grid '330701001001778' (not in grids.geojson)",
        f"{tmp_path}/groups.csv:7: unknown grid or division '330701001001777' (not in grids.geojson or divisions.csv)",
        "[import-county] 2 error(s); nothing was imported",
    ]
