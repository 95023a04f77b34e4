"""A county's map: county → towns (乡镇/街道) → villages (村/社区) → grids (网格), and where a point is.

The map is data. Services load it once at start-up from the GeoJSON file `county_map_path` names
(`load_county`) and pass the `County` to whatever needs it; nothing here loads a map unasked.
The demo county's file (shared/data/county.geojson) is written by devtools/demo_county.py.

Codes follow the national division-code layout: county 6 digits, town = county + 3, village =
town + 3; a grid is village + 3 (a micro grid, 微网格, is its grid + 3). Coordinates are WGS-84
(convert GCJ-02 first, see shared.geo). `County.find_grid` answers through a uniform bucket index
in a few microseconds.

A county's map is made from its standard files (divisions, grids, groups, workers) by
`python -m services.dispatch.county_import DIR` (shared/county_files.py validates them), which
writes this file and loads dispatch's division tables from the same content in one go.

The one placement rule, here and nowhere else: a point belongs to the special grid (专属网格: an
industrial park, a school) that contains it, else to the ordinary grid that contains it (ordinary
grids never overlap, so there is at most one). Micro grids (微网格) subdivide an ordinary grid for
its grid workers and are kept in the map, but a case is placed in the grid: their codes start
with the grid's, so everything scoped to the grid covers them.
"""

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

Point = tuple[float, float]  # (lat, lng), WGS-84
Polygon = tuple[Point, ...]  # ring without the closing point repeated


@dataclass(frozen=True)
class GridWorker:
    worker_id: str  # WeCom user id, used to @ the worker
    name: str


@dataclass(frozen=True)
class WeChatGroup:
    group_id: str  # chat id of the grid's residents group
    name: str


@dataclass(frozen=True)
class Grid:
    code: str  # 15 digits: village code + 3
    name: str
    village_code: str
    town_code: str
    polygon: Polygon
    centroid: Point
    worker: GridWorker
    group: WeChatGroup
    kind: str = "ordinary"  # ordinary, special (专属网格) or micro (微网格)
    parent_grid: str | None = None  # a micro grid's ordinary grid


@dataclass(frozen=True)
class Village:
    code: str  # 12 digits
    name: str
    kind: str  # "community" (社区) or "village" (村)
    town_code: str
    grid_codes: tuple[str, ...]
    # A village's area is the union of its grids' polygons.
    polygons: tuple[Polygon, ...]


@dataclass(frozen=True)
class Town:
    code: str  # 9 digits
    name: str
    kind: str  # "subdistrict" (街道), "town" (镇) or "township" (乡)
    county_code: str
    village_codes: tuple[str, ...]
    polygons: tuple[Polygon, ...]


@dataclass(frozen=True)
class GridMatch:
    """Where a point falls: its grid and the codes of every level above it."""

    grid_code: str
    village_code: str
    town_code: str
    county_code: str


def point_in_polygon(lat: float, lng: float, polygon: Polygon) -> bool:
    """Even-odd ray casting (a ray towards +lng)."""
    inside = False
    n = len(polygon)
    j = n - 1
    for i in range(n):
        lat_i, lng_i = polygon[i]
        lat_j, lng_j = polygon[j]
        if (lat_i > lat) != (lat_j > lat):
            crossing = lng_i + (lat - lat_i) * (lng_j - lng_i) / (lat_j - lat_i)
            if lng < crossing:
                inside = not inside
        j = i
    return inside


def polygon_area(polygon: Polygon) -> float:
    """Signed shoelace area in degrees² (positive when counter-clockwise in (lng, lat))."""
    s = 0.0
    for (a_lat, a_lng), (b_lat, b_lng) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        s += a_lng * b_lat - b_lng * a_lat
    return s / 2


def polygon_centroid(polygon: Polygon) -> Point:
    """The area centroid of a polygon."""
    # Relative to the first vertex: with raw coordinates (~120°) the cross products cancel
    # catastrophically for the small slivers at the county's rim.
    o_lat, o_lng = polygon[0]
    local = tuple((lat - o_lat, lng - o_lng) for lat, lng in polygon)
    area = polygon_area(local)
    c_lat = c_lng = 0.0
    for (a_lat, a_lng), (b_lat, b_lng) in zip(local, local[1:] + local[:1], strict=True):
        cross = a_lng * b_lat - b_lng * a_lat
        c_lat += (a_lat + b_lat) * cross
        c_lng += (a_lng + b_lng) * cross
    return (o_lat + c_lat / (6 * area), o_lng + c_lng / (6 * area))


class GridIndex:
    """Uniform bucket index: each bucket lists the grids whose bounding box touches it."""

    def __init__(self, grids: list[Grid], *, bucket_lat: float, bucket_lng: float):
        self.grids = grids
        self.bucket_lat, self.bucket_lng = bucket_lat, bucket_lng
        lats = [p[0] for g in grids for p in g.polygon]
        lngs = [p[1] for g in grids for p in g.polygon]
        self.min_lat, self.min_lng = min(lats), min(lngs)
        self.max_lat, self.max_lng = max(lats), max(lngs)
        self.has_special = any(g.kind == "special" for g in grids)  # else the first grid found is the one
        self.buckets: dict[tuple[int, int], list[Grid]] = {}
        for g in grids:
            g_lats = [p[0] for p in g.polygon]
            g_lngs = [p[1] for p in g.polygon]
            for i in range(self._row(min(g_lats)), self._row(max(g_lats)) + 1):
                for j in range(self._col(min(g_lngs)), self._col(max(g_lngs)) + 1):
                    self.buckets.setdefault((i, j), []).append(g)

    def _row(self, lat: float) -> int:
        return int((lat - self.min_lat) // self.bucket_lat)

    def _col(self, lng: float) -> int:
        return int((lng - self.min_lng) // self.bucket_lng)

    def find(self, lat: float, lng: float) -> Grid | None:
        """The placement rule (see the module docstring): a special grid before an ordinary one."""
        if not (self.min_lat <= lat <= self.max_lat and self.min_lng <= lng <= self.max_lng):
            return None
        found = None
        for g in self.buckets.get((self._row(lat), self._col(lng)), ()):
            if point_in_polygon(lat, lng, g.polygon):
                if g.kind == "special" or not self.has_special:
                    return g
                found = found or g
        return found


@dataclass(frozen=True)
class County:
    code: str
    name: str
    boundary: Polygon
    towns: dict[str, Town]
    villages: dict[str, Village]
    grids: dict[str, Grid]
    index: GridIndex
    grid_of_group_id: dict[str, str]  # residents' WeChat group id → its grid's code
    version: int = 0  # the imported version (county_import), 0 for a map written by hand
    content_hash: str = ""

    def contains(self, lat: float, lng: float) -> bool:
        """Whether a WGS-84 point is inside the county boundary."""
        return point_in_polygon(lat, lng, self.boundary)

    def find_grid(self, lat: float, lng: float) -> GridMatch | None:
        """The grid (and its village, town, county) of a WGS-84 point; None outside the county."""
        grid = self.index.find(lat, lng)
        if grid is None:
            return None
        return GridMatch(grid.code, grid.village_code, grid.town_code, self.code)

    def grid_of_group(self, group_id: str) -> GridMatch | None:
        """The grid whose residents' WeChat group this is, if any."""
        grid = self.grids.get(self.grid_of_group_id.get(group_id, ""))
        if grid is not None and grid.parent_grid:
            grid = self.grids.get(grid.parent_grid)  # a micro grid's report is placed in its grid
        if grid is None:
            return None
        return GridMatch(grid.code, grid.village_code, grid.town_code, self.code)

    def level_of(self, code: str) -> str:
        """'county', 'town', 'village' or 'grid' for a code of this county."""
        if code == self.code:
            return "county"
        for level, table in (("town", self.towns), ("village", self.villages), ("grid", self.grids)):
            if code in table:
                return level
        raise KeyError(code)


class InvalidCountyMap(ValueError):
    """The county map file is not a county map this module can read."""


def _ring(geometry: dict | None, what: str) -> Polygon:
    if not geometry or geometry.get("type") != "Polygon" or not geometry.get("coordinates"):
        raise InvalidCountyMap(f"{what}: a Polygon geometry is required")
    ring = [(lat, lng) for lng, lat in geometry["coordinates"][0]]  # GeoJSON positions are [lng, lat]
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring.pop()  # GeoJSON repeats the first position at the end; our rings don't
    if len(ring) < 3:
        raise InvalidCountyMap(f"{what}: a polygon needs at least three points")
    return tuple(ring)


def parse_county(document: dict) -> County:
    """A County from its map: a GeoJSON FeatureCollection (WGS-84, [lng, lat] positions) with one
    feature per division, in order (county, towns, villages, grids), each with `level` and `code`
    properties, a `name`, and:

    - county: the boundary as its Polygon geometry;
    - town, village: `kind` and `parent_code`; no geometry (their area is their grids');
    - grid: `parent_code` (its village), its Polygon, the grid worker (`worker_id` — the WeCom user
      id — and `worker_name`) and its residents' WeChat group (`group_id`, `group_name`).
    """
    if document.get("type") != "FeatureCollection":
        raise InvalidCountyMap("a GeoJSON FeatureCollection is required")
    by_level: dict[str, list[dict]] = {"county": [], "town": [], "village": [], "grid": []}
    for feature in document.get("features", []):
        props = feature.get("properties") or {}
        if props.get("level") not in by_level or not props.get("code"):
            raise InvalidCountyMap(f"feature {props!r}: level (county/town/village/grid) and code are required")
        by_level[props["level"]].append(feature)
    if len(by_level["county"]) != 1:
        raise InvalidCountyMap("exactly one county feature is required")
    county_props = by_level["county"][0]["properties"]
    boundary = _ring(by_level["county"][0].get("geometry"), county_props["code"])

    town_rows = [f["properties"] for f in by_level["town"]]
    village_rows = [f["properties"] for f in by_level["village"]]
    town_codes = {t["code"] for t in town_rows}
    for v in village_rows:
        if v.get("parent_code") not in town_codes:
            raise InvalidCountyMap(f"village {v['code']}: parent town {v.get('parent_code')!r} is not in the map")
    town_of_village = {v["code"]: v["parent_code"] for v in village_rows}

    grids: dict[str, Grid] = {}
    for feature in by_level["grid"]:
        g = feature["properties"]
        if g.get("parent_code") not in town_of_village:
            raise InvalidCountyMap(f"grid {g['code']}: parent village {g.get('parent_code')!r} is not in the map")
        polygon = _ring(feature.get("geometry"), g["code"])
        grids[g["code"]] = Grid(
            code=g["code"],
            name=g["name"],
            village_code=g["parent_code"],
            town_code=town_of_village[g["parent_code"]],
            polygon=polygon,
            centroid=polygon_centroid(polygon),
            worker=GridWorker(worker_id=g["worker_id"], name=g["worker_name"]),
            group=WeChatGroup(group_id=g["group_id"], name=g["group_name"]),
            kind=g.get("kind", "ordinary"),
            parent_grid=g.get("parent_grid"),
        )
    if not grids:
        raise InvalidCountyMap("the map has no grids")

    villages: dict[str, Village] = {}
    for v in village_rows:
        grid_codes = tuple(code for code, grid in grids.items() if grid.village_code == v["code"])
        villages[v["code"]] = Village(
            code=v["code"],
            name=v["name"],
            kind=v["kind"],
            town_code=v["parent_code"],
            grid_codes=grid_codes,
            polygons=tuple(grids[code].polygon for code in grid_codes if grids[code].kind == "ordinary"),
        )
    towns: dict[str, Town] = {}
    for t in town_rows:
        village_codes = tuple(code for code, village in villages.items() if village.town_code == t["code"])
        towns[t["code"]] = Town(
            code=t["code"],
            name=t["name"],
            kind=t["kind"],
            county_code=county_props["code"],
            village_codes=village_codes,
            polygons=tuple(p for v in village_codes for p in villages[v].polygons),
        )

    # Buckets about one grid in size: each holds a handful of grids to test.
    extents = [
        (
            max(p[0] for p in g.polygon) - min(p[0] for p in g.polygon),
            max(p[1] for p in g.polygon) - min(p[1] for p in g.polygon),
        )
        for g in grids.values()
    ]
    index = GridIndex(
        [g for g in grids.values() if g.kind != "micro"],
        bucket_lat=sum(e[0] for e in extents) / len(extents),
        bucket_lng=sum(e[1] for e in extents) / len(extents),
    )
    return County(
        code=county_props["code"],
        name=county_props["name"],
        boundary=boundary,
        towns=towns,
        villages=villages,
        grids=grids,
        index=index,
        grid_of_group_id={g.group.group_id: g.code for g in grids.values()},
        version=int(document.get("version") or 0),
        content_hash=str(document.get("content_hash") or ""),
    )


def load_county(path: Path) -> County:
    """The county map in a GeoJSON file (see parse_county), gzipped when its name ends in .gz; read
    once at start-up. In Kubernetes the map arrives gzipped in a ConfigMap (deploy/k8s/county):
    a county's map is larger than kubectl apply's 256 KiB annotation allows, its gzip is not."""
    data = Path(path).read_bytes()
    if Path(path).suffix == ".gz":
        data = gzip.decompress(data)
    return parse_county(json.loads(data.decode("utf-8")))
