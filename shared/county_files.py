"""A county from its standard files: read and validate them all, then build the county map.

A county is shipped as one directory of four files (shared/data/counties/<code>/ for the shipped
ones; an operator's own anywhere):

- `divisions.csv` — `code,name,level,parent_code[,kind]`: every division with its 12-digit
  统计用区划代码 (county `CCCCCC000000`, town `CCCCCCTTT000`, village `CCCCCCTTTVVV`), its level
  (county, town, village), its parent's 12-digit code (empty for the county) and optionally its
  kind (subdistrict/town/township, community/village; else read from the name: 街道/镇/乡, 社区/村).
- `grids.geojson` — a FeatureCollection whose top-level `datum` is `WGS-84` or `GCJ-02` (GCJ-02
  positions are converted to WGS-84 with shared.geo before anything else). Grid features have
  `grid_code`, `name`, `village_code` (12 digits) and `kind`:
  `ordinary` (15 digits: village + 3; ordinary grids never overlap),
  `special` (专属网格 — an industrial park, a school — 15 digits under the village that runs it;
  it may overlap ordinary grids by design) or
  `micro` (微网格: 18 digits, its ordinary grid's code + 3, lying inside that grid).
  Division features have `division_code` (12 digits) and give an outline: the county's is
  required (its boundary); a village's is optional and, when given, its ordinary grids must cover
  it. Geometries are Polygons without holes, rings closed, positions `[lng, lat]`.
- `groups.csv` — `group_id,name,code,robot_key`: each WeChat/WeCom group, the grid (15 or 18
  digits) or division (6/9/12 digits, or its 12-digit 统计用区划代码) it serves and its robot's key.
  A grid's first group is its residents' group (where reports from the grid come in).
- `workers.csv` — `worker_id,name,grid_code`: grid workers (网格员) by WeCom user id; a grid's
  first worker is the one told of its reports.

`read_county_dir` checks all of it before anything is built and raises `InvalidCountyFiles` with
every error found, each naming its file and line (CSV, the header being line 1) or feature index
(GeoJSON, from 0). What is checked:

- codes: 12 digits; the level the digits say (trailing zeros) matches `level`; a town's code starts
  with its county's 6 digits, a village's with its town's 9, an ordinary or special grid's with its
  village's 12, a micro grid's with its grid's 15; unknown or duplicate codes; exactly one county;
- polygons: a Polygon, exterior ring closed (last position = first), at least 3 distinct points,
  no hole, no self-intersection (two non-adjacent edges touching or crossing, or an edge folding
  back on the one before), area not zero;
- overlaps: two ordinary grids whose interiors overlap (an edge of one crossing an edge of the
  other, a vertex, a piece of an edge or an inner point of one strictly inside the other; sharing
  edges and vertices is how grids tile, and is fine); micro grids overlapping each other, or not inside their grid;
- gaps: for each village whose outline is given, every ordinary grid of the village lies inside
  the outline, and together they cover it: as they do not overlap, the sum of their areas must
  equal the outline's area (within 0.5 %, digitising slack); the uncovered area is reported in m²;
- every village has an ordinary grid; every grid has a worker and a group;
- groups.csv and workers.csv: grids and divisions that do not exist, duplicate group ids, empty
  fields.

`county_map` then builds the county map shared.jurisdictions reads (see `parse_county`), with its
content hash: what services load at start-up and what services/dispatch/county_import.py writes.
"""

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.geo import gcj02_to_wgs84
from shared.jurisdictions import Point, Polygon, point_in_polygon, polygon_area

FILES = ("divisions.csv", "grids.geojson", "groups.csv", "workers.csv")
DATUMS = ("WGS-84", "GCJ-02")
GRID_KINDS = ("ordinary", "micro", "special")
GAP_TOLERANCE = 0.005  # of a village's outline area
_TOL = 1e-8  # degrees (~1 mm): a point this close to a line is on it (datum conversion, rounding)


class InvalidCountyFiles(ValueError):
    """The county's files have errors; `errors` lists each as 'file:line: message'."""

    def __init__(self, errors: list[str]):
        super().__init__(f"{len(errors)} error(s) in the county's files:\n" + "\n".join(errors))
        self.errors = errors


@dataclass
class Division:
    code: str  # short form: county 6, town 9, village 12 digits
    name: str
    level: str
    kind: str | None
    parent_code: str | None
    where: str  # divisions.csv:<line>


@dataclass
class GridFeature:
    code: str
    name: str
    village_code: str
    kind: str
    polygon: Polygon
    where: str  # grids.geojson:feature <n>
    parent_grid: str | None = None
    worker: tuple[str, str] | None = None  # (worker_id, name)
    group: tuple[str, str] | None = None  # (group_id, name)


@dataclass
class CountyFiles:
    """A county read from its files and validated."""

    county: Division
    towns: list[Division]
    villages: list[Division]
    boundary: Polygon
    grids: list[GridFeature]
    groups: list[tuple[str, str, str, str]]  # (group_id, name, code, robot_key), code in short form
    village_outlines: dict[str, Polygon] = field(default_factory=dict)


# ---------------------------------------------------------------- geometry


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[1] - o[1]) * (b[0] - o[0]) - (a[0] - o[0]) * (b[1] - o[1])


def _side(a: Point, b: Point, p: Point) -> float:
    """p's signed distance (degrees) from the line through a and b."""
    length = math.hypot(b[0] - a[0], b[1] - a[1])
    return _cross(a, b, p) / length if length else math.hypot(p[0] - a[0], p[1] - a[1])


def _on_segment(p: Point, a: Point, b: Point) -> bool:
    return (
        abs(_side(a, b, p)) <= _TOL
        and min(a[0], b[0]) - _TOL <= p[0] <= max(a[0], b[0]) + _TOL
        and min(a[1], b[1]) - _TOL <= p[1] <= max(a[1], b[1]) + _TOL
    )


def _segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether ab and cd cross properly (each strictly on both sides of the other)."""
    d1, d2, d3, d4 = _side(c, d, a), _side(c, d, b), _side(a, b, c), _side(a, b, d)
    return ((d1 > _TOL and d2 < -_TOL) or (d1 < -_TOL and d2 > _TOL)) and (
        (d3 > _TOL and d4 < -_TOL) or (d3 < -_TOL and d4 > _TOL)
    )


def _segments_touch(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether segments ab and cd have any point in common."""
    return (
        _segments_cross(a, b, c, d)
        or _on_segment(a, c, d)
        or _on_segment(b, c, d)
        or _on_segment(c, a, b)
        or _on_segment(d, a, b)
    )


def _edges(polygon: Polygon) -> list[tuple[Point, Point]]:
    return list(zip(polygon, polygon[1:] + polygon[:1], strict=True))


def self_intersection(polygon: Polygon) -> str | None:
    """Why a ring (without its closing point) is not simple, or None."""
    edges = _edges(polygon)
    n = len(edges)
    for i in range(n):
        a, b = edges[i]
        c, d = edges[(i + 1) % n]
        # An edge folding back over the one before it (a spike): collinear and turning around.
        if abs(_side(a, b, d)) <= _TOL and (b[0] - a[0]) * (d[0] - c[0]) + (b[1] - a[1]) * (d[1] - c[1]) < 0:
            return f"edges {i + 1} and {(i + 1) % n + 1} fold back on each other at {_fmt(b)}"
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue  # adjacent through the closing point
            if _segments_touch(a, b, *edges[j]):
                return f"edges {i + 1} and {j + 1} cross or touch"
    return None


def strictly_inside(p: Point, polygon: Polygon) -> bool:
    """Inside and not on the boundary."""
    if any(_on_segment(p, a, b) for a, b in _edges(polygon)):
        return False
    return point_in_polygon(p[0], p[1], polygon)


def inside_or_on(p: Point, polygon: Polygon) -> bool:
    return any(_on_segment(p, a, b) for a, b in _edges(polygon)) or point_in_polygon(p[0], p[1], polygon)


def interior_point(polygon: Polygon) -> Point:
    """A point strictly inside a simple polygon: the middle of the first span a horizontal line
    through the middle of its height cuts (avoiding the vertices' latitudes)."""
    lats = sorted({p[0] for p in polygon})
    # The middle of the widest gap between vertex latitudes near the centre keeps off vertices.
    mid = (lats[0] + lats[-1]) / 2
    above = min((lat for lat in lats if lat > mid), default=lats[-1])
    below = max((lat for lat in lats if lat <= mid), default=lats[0])
    y = (above + below) / 2
    xs = sorted(
        a[1] + (y - a[0]) * (b[1] - a[1]) / (b[0] - a[0]) for a, b in _edges(polygon) if (a[0] > y) != (b[0] > y)
    )
    return (y, (xs[0] + xs[1]) / 2)


def _bbox(polygon: Polygon) -> tuple[float, float, float, float]:
    lats = [p[0] for p in polygon]
    lngs = [p[1] for p in polygon]
    return min(lats), min(lngs), max(lats), max(lngs)


def interiors_overlap(a: Polygon, b: Polygon) -> bool:
    """Whether two simple polygons share some area (not only edges or vertices)."""
    a0, a1, a2, a3 = _bbox(a)
    b0, b1, b2, b3 = _bbox(b)
    if a2 <= b0 or b2 <= a0 or a3 <= b1 or b3 <= a1:
        return False
    if any(_segments_cross(p, q, r, s) for p, q in _edges(a) for r, s in _edges(b)):
        return True
    if any(strictly_inside(p, b) for p in a) or any(strictly_inside(p, a) for p in b):
        return True
    if _boundary_enters(a, b) or _boundary_enters(b, a):
        return True
    return strictly_inside(interior_point(a), b) or strictly_inside(interior_point(b), a)


def _boundary_enters(a: Polygon, b: Polygon) -> bool:
    """Whether a piece of a's boundary runs strictly inside b, when no edges cross properly: each
    edge of a is cut at b's vertices lying on it, and each piece's middle is tested."""
    for p, q in _edges(a):
        length2 = (q[0] - p[0]) ** 2 + (q[1] - p[1]) ** 2
        cuts = {0.0, 1.0}
        for v in b:
            if _on_segment(v, p, q):
                cuts.add(min(1.0, max(0.0, ((v[0] - p[0]) * (q[0] - p[0]) + (v[1] - p[1]) * (q[1] - p[1])) / length2)))
        ts = sorted(cuts)
        for t0, t1 in zip(ts, ts[1:], strict=False):
            t = (t0 + t1) / 2
            if strictly_inside((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])), b):
                return True
    return False


def within(inner: Polygon, outer: Polygon) -> bool:
    """Whether `inner` lies inside `outer` (touching its boundary is fine)."""
    if not all(inside_or_on(p, outer) for p in inner):
        return False
    if any(_segments_cross(p, q, r, s) for p, q in _edges(inner) for r, s in _edges(outer)):
        return False
    return inside_or_on(interior_point(inner), outer)


def area_m2(polygon: Polygon) -> float:
    """Approximate area in square metres (equirectangular at the polygon's latitude)."""
    lat = sum(p[0] for p in polygon) / len(polygon)
    metres_per_deg = 111_320.0
    return abs(polygon_area(polygon)) * metres_per_deg**2 * math.cos(math.radians(lat))


def _fmt(p: Point) -> str:
    return f"[{p[1]:.6f}, {p[0]:.6f}]"


# ---------------------------------------------------------------- reading


def _rows(path: Path, columns: tuple[str, ...], errors: list[str]) -> list[tuple[int, dict[str, str]]]:
    """A CSV file's rows with their line numbers (the header is line 1)."""
    name = path.name
    if not path.is_file():
        errors.append(f"{name}: the file is missing")
        return []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        errors.append(f"{name}: not UTF-8 text")
        return []
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        errors.append(f"{name}:1: missing column(s) {', '.join(missing)}")
        return []
    return [(n, {k: (v or "").strip() for k, v in row.items() if k}) for n, row in enumerate(reader, start=2)]


def short_code(code12: str) -> str:
    """A 12-digit 统计用区划代码 in the short form GridLink uses: county 6, town 9, village 12 digits."""
    if code12[6:] == "000000":
        return code12[:6]
    if code12[9:] == "000":
        return code12[:9]
    return code12


_LEVEL_OF_LENGTH = {6: "county", 9: "town", 12: "village"}
_KINDS = {"town": ("subdistrict", "town", "township"), "village": ("community", "village")}


def _kind(level: str, name: str, given: str) -> str | None:
    if level == "county":
        return None
    if given:
        return given
    if level == "town":
        return "subdistrict" if name.endswith("街道") else "township" if name.endswith("乡") else "town"
    return "community" if name.endswith("社区") else "village"


def _read_divisions(path: Path, errors: list[str]) -> dict[str, Division]:
    rows = _rows(path, ("code", "name", "level", "parent_code"), errors)
    divisions: dict[str, Division] = {}
    parents: list[tuple[Division, str]] = []
    for line, row in rows:
        where = f"divisions.csv:{line}"
        code, name, level, parent = row["code"], row["name"], row["level"], row["parent_code"]
        if len(code) != 12 or not code.isdigit():
            errors.append(f"{where}: code {code!r} is not a 12-digit 统计用区划代码")
            continue
        if level not in ("county", "town", "village"):
            errors.append(f"{where}: level {level!r} is not county, town or village")
            continue
        short = short_code(code)
        if _LEVEL_OF_LENGTH[len(short)] != level:
            errors.append(
                f"{where}: code {code} is a {_LEVEL_OF_LENGTH[len(short)]}'s code by its digits, not a {level}'s"
            )
            continue
        if not name:
            errors.append(f"{where}: the name is empty")
        kind = _kind(level, name, row.get("kind", ""))
        if kind is not None and kind not in _KINDS[level]:
            errors.append(f"{where}: kind {kind!r} is not one of {', '.join(_KINDS[level])}")
        if short in divisions:
            errors.append(f"{where}: code {code} appears twice (first at {divisions[short].where})")
            continue
        division = Division(short, name, level, kind, None, where)
        divisions[short] = division
        if level != "county":
            parents.append((division, parent))
    counties = [d for d in divisions.values() if d.level == "county"]
    if rows and len(counties) != 1:
        errors.append(f"divisions.csv: exactly one county is required, found {len(counties)}")
    for division, parent in parents:
        if len(parent) != 12 or not parent.isdigit():
            errors.append(f"{division.where}: parent_code {parent!r} is not a 12-digit 统计用区划代码")
            continue
        parent_short = short_code(parent)
        expected = "county" if division.level == "town" else "town"
        if parent_short not in divisions:
            errors.append(f"{division.where}: unknown parent {parent} (not in divisions.csv)")
        elif divisions[parent_short].level != expected:
            errors.append(f"{division.where}: parent {parent} is a {divisions[parent_short].level}, not a {expected}")
        elif not division.code.startswith(parent_short):
            errors.append(
                f"{division.where}: code {division.code.ljust(12, '0')} is not under its parent {parent}"
                f" (a {division.level}'s code starts with its parent's {len(parent_short)} digits)"
            )
        else:
            division.parent_code = parent_short
    return divisions


def _polygon(geometry: object, datum: str) -> tuple[Polygon | None, str | None]:
    """The WGS-84 ring of a Polygon geometry, or why it is invalid."""
    if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
        return None, "the geometry must be a Polygon"
    rings = geometry.get("coordinates")
    if not isinstance(rings, list) or not rings or not isinstance(rings[0], list):
        return None, "the Polygon has no ring"
    if len(rings) > 1:
        return None, "holes (inner rings) are not supported"
    try:
        positions = [(float(p[1]), float(p[0])) for p in rings[0]]
    except (TypeError, ValueError, IndexError):
        return None, "a position is not [lng, lat]"
    if len(positions) < 4 or positions[0] != positions[-1]:
        return None, "the ring is not closed (its last position must repeat its first)"
    ring: list[Point] = []
    for lat, lng in positions[:-1]:
        point = gcj02_to_wgs84(lat, lng) if datum == "GCJ-02" else (lat, lng)
        if not ring or ring[-1] != point:
            ring.append(point)
    if len(ring) < 3:
        return None, "the ring has fewer than 3 distinct points"
    polygon = tuple(ring)
    why = self_intersection(polygon)
    if why:
        return None, f"the ring intersects itself ({why})"
    if abs(polygon_area(polygon)) <= _TOL * _TOL:
        return None, "the polygon has no area"
    return polygon, None


def _read_grids(
    path: Path, divisions: dict[str, Division], errors: list[str]
) -> tuple[list[GridFeature], dict[str, Polygon]] | None:
    """The grids and division outlines, or None when the file cannot be read at all."""
    name = path.name
    if not path.is_file():
        errors.append(f"{name}: the file is missing")
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        errors.append(f"{name}: not a JSON document ({error})")
        return None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        errors.append(f"{name}: a GeoJSON FeatureCollection is required")
        return None
    datum = document.get("datum")
    if datum not in DATUMS:
        errors.append(f"{name}: the top-level property datum must be WGS-84 or GCJ-02, not {datum!r}")
        return None
    grids: list[GridFeature] = []
    outlines: dict[str, Polygon] = {}
    seen: dict[str, str] = {}
    for index, feature in enumerate(document.get("features") or []):
        where = f"{name}:feature {index}"
        props = (feature or {}).get("properties") or {} if isinstance(feature, dict) else {}
        if "division_code" in props:
            code12 = str(props["division_code"])
            short = short_code(code12) if len(code12) == 12 and code12.isdigit() else ""
            if short not in divisions:
                errors.append(f"{where}: unknown division {code12!r} (not in divisions.csv)")
                continue
            polygon, why = _polygon(feature.get("geometry"), datum)
            if polygon is None:
                errors.append(f"{where} (division {code12}): invalid polygon: {why}")
            elif divisions[short].level == "town":
                pass  # a town's outline is checked but not used: its area is its villages'
            else:
                outlines[short] = polygon
            continue
        code = str(props.get("grid_code", ""))
        label = f"{where} (grid {code})"
        kind = props.get("kind", "")
        village = str(props.get("village_code", ""))
        if kind not in GRID_KINDS:
            errors.append(f"{label}: kind {kind!r} is not ordinary, micro or special")
            continue
        if not code.isdigit() or len(code) != (18 if kind == "micro" else 15):
            errors.append(f"{label}: a {kind} grid's code has {18 if kind == 'micro' else 15} digits")
            continue
        if code in seen:
            errors.append(f"{label}: grid code appears twice (first at {seen[code]})")
            continue
        seen[code] = where
        if village not in divisions or divisions[village].level != "village":
            errors.append(f"{label}: unknown village {village!r} (not a village in divisions.csv)")
            continue
        if not code.startswith(village):
            errors.append(f"{label}: code is not under its village {village} (a grid's code starts with it)")
            continue
        if not props.get("name"):
            errors.append(f"{label}: the name is empty")
        polygon, why = _polygon(feature.get("geometry"), datum)
        if polygon is None:
            errors.append(f"{label}: invalid polygon: {why}")
            continue
        grids.append(
            GridFeature(
                code, str(props.get("name", "")), village, kind, polygon, where, code[:15] if kind == "micro" else None
            )
        )
    if divisions and next((d.code for d in divisions.values() if d.level == "county"), None) not in outlines:
        errors.append(f"{name}: the county's outline (a feature with the county's division_code) is missing")
    return grids, outlines


def _check_geometry(grids: list[GridFeature], outlines: dict[str, Polygon], errors: list[str]) -> None:
    ordinary = [g for g in grids if g.kind == "ordinary"]
    by_code = {g.code: g for g in grids}
    # Sweep by west edge: only grids whose longitudes overlap are compared.
    boxes = sorted(((_bbox(g.polygon), g) for g in ordinary), key=lambda item: item[0][1])
    for i, (box, a) in enumerate(boxes):
        for other_box, b in boxes[i + 1 :]:
            if other_box[1] >= box[3]:
                break
            if interiors_overlap(a.polygon, b.polygon):
                errors.append(f"{a.where} (grid {a.code}): overlaps ordinary grid {b.code} ({b.where})")
    micro_of: dict[str, list[GridFeature]] = {}
    for g in grids:
        if g.kind != "micro":
            continue
        parent = by_code.get(g.parent_grid or "")
        if parent is None or parent.kind != "ordinary":
            errors.append(f"{g.where} (grid {g.code}): code is not under an ordinary grid (its first 15 digits)")
            continue
        if parent.village_code != g.village_code:
            errors.append(
                f"{g.where} (grid {g.code}): village {g.village_code} is not its grid's ({parent.village_code})"
            )
        if not within(g.polygon, parent.polygon):
            errors.append(f"{g.where} (grid {g.code}): not inside its grid {parent.code}")
        for other in micro_of.get(parent.code, []):
            if interiors_overlap(g.polygon, other.polygon):
                errors.append(f"{g.where} (grid {g.code}): overlaps micro grid {other.code} ({other.where})")
        micro_of.setdefault(parent.code, []).append(g)
    for village, outline in outlines.items():
        if len(village) != 12:
            continue  # the county's boundary
        members = [g for g in ordinary if g.village_code == village]
        outside = [g for g in members if not within(g.polygon, outline)]
        for g in outside:
            errors.append(f"{g.where} (grid {g.code}): lies partly outside its village's outline")
        outline_area = abs(polygon_area(outline))
        covered = sum(abs(polygon_area(g.polygon)) for g in members)
        if not outside and outline_area - covered > GAP_TOLERANCE * outline_area:
            share = covered / outline_area
            gap = area_m2(outline) * (1 - share)
            errors.append(
                f"grids.geojson: village {village}'s ordinary grids cover {share:.1%} of its outline:"
                f" {gap:,.0f} m² inside the village belong to no grid"
            )


def read_county_dir(directory: Path) -> CountyFiles:
    """The county in `directory`, validated; raises InvalidCountyFiles with every error found."""
    directory = Path(directory)
    errors: list[str] = []
    divisions = _read_divisions(directory / "divisions.csv", errors)
    read = _read_grids(directory / "grids.geojson", divisions, errors)
    if read is None:
        # Without the grids, the other files cannot be checked against them: what there is to say
        # about grids.geojson is said; the rest is checked once it can be read.
        raise InvalidCountyFiles(errors)
    grids, outlines = read
    _check_geometry(grids, outlines, errors)
    grid_codes = {g.code: g for g in grids}

    workers = _rows(directory / "workers.csv", ("worker_id", "name", "grid_code"), errors)
    for line, row in workers:
        where = f"workers.csv:{line}"
        if not row["worker_id"] or not row["name"]:
            errors.append(f"{where}: worker_id and name are required")
        elif row["grid_code"] not in grid_codes:
            errors.append(f"{where}: unknown grid {row['grid_code']!r} (not in grids.geojson)")
        elif grid_codes[row["grid_code"]].worker is None:
            grid_codes[row["grid_code"]].worker = (row["worker_id"], row["name"])

    groups: list[tuple[str, str, str, str]] = []
    first_group: dict[str, str] = {}
    for line, row in _rows(directory / "groups.csv", ("group_id", "name", "code", "robot_key"), errors):
        where = f"groups.csv:{line}"
        code = row["code"]
        code = short_code(code) if len(code) == 12 and code.isdigit() else code
        if not row["group_id"] or not row["name"] or not row["robot_key"]:
            errors.append(f"{where}: group_id, name and robot_key are required")
        elif row["group_id"] in first_group:
            errors.append(f"{where}: group {row['group_id']} appears twice (first at {first_group[row['group_id']]})")
        elif code not in grid_codes and code not in divisions:
            errors.append(f"{where}: unknown grid or division {row['code']!r} (not in grids.geojson or divisions.csv)")
        else:
            first_group[row["group_id"]] = where
            groups.append((row["group_id"], row["name"], code, row["robot_key"]))
            if code in grid_codes and grid_codes[code].group is None:
                grid_codes[code].group = (row["group_id"], row["name"])

    for g in grids:
        if g.worker is None:
            errors.append(f"{g.where} (grid {g.code}): no grid worker in workers.csv")
        if g.group is None:
            errors.append(f"{g.where} (grid {g.code}): no group in groups.csv")
    villages = [d for d in divisions.values() if d.level == "village"]
    with_grids = {g.village_code for g in grids if g.kind == "ordinary"}
    for v in villages:
        if v.code not in with_grids and v.parent_code:
            errors.append(f"{v.where}: village {v.code} has no ordinary grid in grids.geojson")
    if errors:
        raise InvalidCountyFiles(errors)
    county = next(d for d in divisions.values() if d.level == "county")
    return CountyFiles(
        county=county,
        towns=[d for d in divisions.values() if d.level == "town"],
        villages=villages,
        boundary=outlines[county.code],
        grids=grids,
        groups=groups,
        village_outlines={k: v for k, v in outlines.items() if len(k) == 12},
    )


# ---------------------------------------------------------------- the county map


def _geometry(polygon: Polygon) -> dict:
    return {"type": "Polygon", "coordinates": [[[lng, lat] for lat, lng in (*polygon, polygon[0])]]}


def map_features(files: CountyFiles) -> list[dict]:
    """The county map's features, in the order shared.jurisdictions.parse_county reads them."""
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "properties": {"level": "county", "code": files.county.code, "name": files.county.name},
            "geometry": _geometry(files.boundary),
        }
    ]
    for d in (*files.towns, *files.villages):
        props: dict[str, Any] = {
            "level": d.level,
            "code": d.code,
            "name": d.name,
            "kind": d.kind,
            "parent_code": d.parent_code,
        }
        features.append({"type": "Feature", "properties": props, "geometry": None})
    for g in files.grids:
        assert g.worker and g.group  # checked by read_county_dir
        props = {"level": "grid", "code": g.code, "name": g.name, "parent_code": g.village_code}
        if g.kind != "ordinary":
            props["kind"] = g.kind
        if g.parent_grid:
            props["parent_grid"] = g.parent_grid
        props |= {
            "worker_id": g.worker[0],
            "worker_name": g.worker[1],
            "group_id": g.group[0],
            "group_name": g.group[1],
        }
        features.append({"type": "Feature", "properties": props, "geometry": _geometry(g.polygon)})
    return features


def content_hash(features: list[dict]) -> str:
    """sha256 of the map's features as canonical JSON: the same county gives the same hash."""
    canonical = json.dumps(features, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def county_map(files: CountyFiles, *, version: int) -> dict:
    """The county map document (WGS-84) with its version and content hash."""
    features = map_features(files)
    return {
        "type": "FeatureCollection",
        "datum": "WGS-84",
        "county_code": files.county.code,
        "version": version,
        "content_hash": content_hash(features),
        "features": features,
    }


def map_text(document: dict) -> str:
    """The map as files hold it: one feature per line, so a change reads as a diff."""
    head = {k: v for k, v in document.items() if k != "features"}
    features = ",\n".join(json.dumps(f, ensure_ascii=False) for f in document["features"])
    return json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [\n' + features + "\n]}\n"


def groups_text(groups: list[tuple[str, str, str, str]]) -> str:
    """notify's broadcast groups file (notify_groups_path): one group and its robot a line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["group_id", "name", "jurisdiction_code", "robot_key"])
    writer.writerows(groups)
    return out.getvalue()
