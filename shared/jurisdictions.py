"""The demo county's jurisdictions: county → towns (乡镇/街道) → villages (村/社区) → grids (网格).

The demo county (division code 330727) is generated from a fixed seed, so every process and every
test sees exactly the same map: ~12 towns with 9-digit codes, ~150 villages and communities with
12-digit codes and ~600 grids, each grid with a polygon, a grid worker (网格员) and the WeChat group
its residents report in. Names are fictional; codes follow the national division-code layout
(town = county + 3 digits, village = town + 3 digits; grid = village + 3 digits).

Geometry: a jittered lattice of convex quadrilaterals clipped to a convex county boundary, so the
grids tile the county without gaps or overlaps. Towns and villages are groups of whole grids.
Coordinates are WGS-84 (convert GCJ-02 first, see shared.geo). `find_grid` answers through a
uniform bucket index in a few microseconds.
"""

import math
import random
from dataclasses import dataclass
from functools import lru_cache

COUNTY_CODE = "330727"
COUNTY_NAME = "示范县"
SEED = 330727

Point = tuple[float, float]  # (lat, lng), WGS-84
Polygon = tuple[Point, ...]  # ring without the closing point repeated

_CENTER: Point = (29.08, 120.05)
_RADIUS_DEG_LAT = 0.125  # ≈ 14 km
_LAT_STEP = 0.0100  # ≈ 1.1 km
_LNG_STEP = 0.0115  # ≈ 1.1 km at 29°N
_JITTER = 0.2  # of a step: small enough that every lattice cell stays convex

_TOWNS = (
    ("001", "城关街道"), ("002", "东城街道"), ("003", "西城街道"),
    ("101", "青山镇"), ("102", "白石镇"), ("103", "龙潭镇"), ("104", "桃源镇"), ("105", "清溪镇"),
    ("106", "石门镇"), ("201", "柳林乡"), ("202", "枫岭乡"), ("203", "云峰乡"),
)
_NAME_ROOTS = (
    "幸福", "锦华", "和平", "翠苑", "金顶", "瑞湖", "莲源", "新城", "学府", "滨河", "东关", "建设", "人民",
    "光明", "团结", "胜利", "长江", "黄河", "花园", "文昌", "兴隆", "永安", "太平", "安康", "丰收", "红星",
    "前进", "向阳", "朝阳", "长青", "松柏", "杏林", "梅园", "竹溪", "荷塘", "枫桥", "桂花", "樟树", "柳湾",
    "石桥", "溪口", "塘头", "上洋", "下洋", "岭脚", "山背", "田畈", "后宅", "前山", "后山", "高坪", "大坞",
    "小坞", "里岙", "外岙", "章家", "王家", "李家", "陈家", "周家", "吴家", "郑家", "何家", "胡家", "徐家",
    "孙家", "马家", "朱家", "林家", "黄家", "赵家", "杨家", "叶家", "潘家", "卢家", "方家", "金家", "施家",
    "楼家", "厉家", "羊山", "龙头", "凤凰", "仙岩", "云溪", "白云", "青龙", "玉泉", "清泉", "双溪", "三合",
    "四联", "五星", "六和", "七里", "八角", "九龙", "十里", "新建", "新丰", "新华", "新民", "新安", "新塘",
    "东山", "西山", "南山", "北山", "东溪", "西溪", "南岙", "北岙", "上塘", "下塘", "中村", "横路", "古竹",
    "茶坞", "桑园", "梨树", "桃花", "杜鹃", "兰溪", "芦田", "稻香", "麦田", "谷丰", "泉水", "观音", "仁和",
    "积善", "同心", "和睦", "民主", "振兴", "富民", "康宁", "长乐", "万福", "百合", "千岛", "锦绣", "雅居",
    "御景", "泰和", "嘉禾", "华庭", "金桂", "银杏", "翡翠", "明珠", "海棠", "紫荆", "玉兰", "丹桂", "望江",
)
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严欧莫孔向常汤"
_GIVEN = "建国军华明丽英秀兰芳玲红平伟强磊洋勇艳杰娟涛超霞静敏燕鹏辉刚健波斌宇浩凯晨婷雪琳丹萍晶慧莉梅琴云飞峰海林春"


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
    for (a_lat, a_lng), (b_lat, b_lng) in zip(polygon, polygon[1:] + polygon[:1]):
        s += a_lng * b_lat - b_lng * a_lat
    return s / 2


def _centroid(polygon: Polygon) -> Point:
    # Relative to the first vertex: with raw coordinates (~120°) the cross products cancel
    # catastrophically for the small slivers at the county's rim.
    o_lat, o_lng = polygon[0]
    local = tuple((lat - o_lat, lng - o_lng) for lat, lng in polygon)
    area = polygon_area(local)
    c_lat = c_lng = 0.0
    for (a_lat, a_lng), (b_lat, b_lng) in zip(local, local[1:] + local[:1]):
        cross = a_lng * b_lat - b_lng * a_lat
        c_lat += (a_lat + b_lat) * cross
        c_lng += (a_lng + b_lng) * cross
    return (o_lat + c_lat / (6 * area), o_lng + c_lng / (6 * area))


def _convex_hull(points: list[Point]) -> Polygon:
    """Andrew's monotone chain, counter-clockwise in (lng, lat)."""
    pts = sorted(set((lng, lat) for lat, lng in points))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return tuple((lat, lng) for lng, lat in lower[:-1] + upper[:-1])


def _clip(subject: Polygon, clip: Polygon) -> Polygon:
    """Sutherland–Hodgman: the part of `subject` inside the convex, counter-clockwise `clip`."""

    def inside(p, a, b):
        return (b[1] - a[1]) * (p[0] - a[0]) - (b[0] - a[0]) * (p[1] - a[1]) >= 0

    def intersection(p, q, a, b):
        # Lines p-q and a-b, in (lat, lng) coordinates.
        x1, y1, x2, y2 = p[1], p[0], q[1], q[0]
        x3, y3, x4, y4 = a[1], a[0], b[1], b[0]
        den = (x1 - x2) * (y3 - y4) - (y1 - y2) * (x3 - x4)
        t = ((x1 - x3) * (y3 - y4) - (y1 - y3) * (x3 - x4)) / den
        return (y1 + t * (y2 - y1), x1 + t * (x2 - x1))

    output = list(subject)
    for a, b in zip(clip, clip[1:] + clip[:1]):
        if not output:
            break
        points, output = output, []
        for p, q in zip(points, points[1:] + points[:1]):
            if inside(q, a, b):
                if not inside(p, a, b):
                    output.append(intersection(p, q, a, b))
                output.append(q)
            elif inside(p, a, b):
                output.append(intersection(p, q, a, b))
    return tuple(output)


class GridIndex:
    """Uniform bucket index: each bucket lists the grids whose bounding box touches it."""

    def __init__(self, grids: list[Grid], *, bucket_lat: float, bucket_lng: float):
        self.grids = grids
        self.bucket_lat, self.bucket_lng = bucket_lat, bucket_lng
        lats = [p[0] for g in grids for p in g.polygon]
        lngs = [p[1] for g in grids for p in g.polygon]
        self.min_lat, self.min_lng = min(lats), min(lngs)
        self.max_lat, self.max_lng = max(lats), max(lngs)
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
        if not (self.min_lat <= lat <= self.max_lat and self.min_lng <= lng <= self.max_lng):
            return None
        for g in self.buckets.get((self._row(lat), self._col(lng)), ()):
            if point_in_polygon(lat, lng, g.polygon):
                return g
        return None


@dataclass(frozen=True)
class County:
    code: str
    name: str
    boundary: Polygon
    towns: dict[str, Town]
    villages: dict[str, Village]
    grids: dict[str, Grid]
    index: GridIndex

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
        grid = self.grids.get(group_id[2:]) if group_id.startswith("wr") else None
        if grid is None or grid.group.group_id != group_id:
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


def _person_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))


def _nearest(point: Point, seeds: list[Point]) -> int:
    return min(range(len(seeds)), key=lambda k: (point[0] - seeds[k][0]) ** 2 + (point[1] - seeds[k][1]) ** 2)


def _balanced_seeds(rng: random.Random, points: list[Point], k: int) -> list[Point]:
    """k seeds spread over the points by a few Lloyd (k-means) rounds, so regions are similar in size."""
    seeds = rng.sample(points, k)
    for _ in range(8):
        groups: list[list[Point]] = [[] for _ in seeds]
        for p in points:
            groups[_nearest(p, seeds)].append(p)
        seeds = [
            (sum(p[0] for p in g) / len(g), sum(p[1] for p in g) / len(g)) if g else seeds[n]
            for n, g in enumerate(groups)
        ]
    return seeds


def _lattice_cells(rng: random.Random, boundary: Polygon) -> list[Polygon]:
    """Jittered lattice cells clipped to the boundary; neighbours share vertices exactly."""
    lat_scale = 1.0
    lng_scale = 1.0 / math.cos(math.radians(_CENTER[0]))
    half_lat = _RADIUS_DEG_LAT * 1.3 * lat_scale
    half_lng = _RADIUS_DEG_LAT * 1.3 * lng_scale
    rows = int(2 * half_lat / _LAT_STEP) + 1
    cols = int(2 * half_lng / _LNG_STEP) + 1
    lat0, lng0 = _CENTER[0] - half_lat, _CENTER[1] - half_lng
    vertices = [
        [
            (
                lat0 + i * _LAT_STEP + rng.uniform(-_JITTER, _JITTER) * _LAT_STEP,
                lng0 + j * _LNG_STEP + rng.uniform(-_JITTER, _JITTER) * _LNG_STEP,
            )
            for j in range(cols + 1)
        ]
        for i in range(rows + 1)
    ]
    cells = []
    for i in range(rows):
        for j in range(cols):
            quad = (vertices[i][j], vertices[i][j + 1], vertices[i + 1][j + 1], vertices[i + 1][j])
            clipped = _clip(quad, boundary)
            # Every non-degenerate piece is kept (small rim grids included), so the grids tile the
            # county exactly: a point is inside the boundary iff it has a grid.
            if len(clipped) >= 3 and abs(polygon_area(clipped)) > 1e-12:
                cells.append(clipped)
    return cells


@lru_cache(maxsize=1)
def load_demo_county() -> County:
    """The demo county, built deterministically from SEED (cached: built once per process)."""
    rng = random.Random(SEED)
    lng_scale = 1.0 / math.cos(math.radians(_CENTER[0]))
    outline = []
    for k in range(28):
        angle = 2 * math.pi * k / 28
        r = _RADIUS_DEG_LAT * rng.uniform(0.85, 1.15)
        outline.append((_CENTER[0] + r * math.sin(angle), _CENTER[1] + r * math.cos(angle) * lng_scale))
    boundary = _convex_hull(outline)
    cells = _lattice_cells(rng, boundary)
    centroids = [_centroid(c) for c in cells]

    # Subdistricts (街道) come first in _TOWNS and take the seeds nearest the county seat.
    town_seeds = sorted(
        _balanced_seeds(rng, centroids, len(_TOWNS)),
        key=lambda p: (p[0] - _CENTER[0]) ** 2 + ((p[1] - _CENTER[1]) / lng_scale) ** 2,
    )
    town_of_cell = [_nearest(c, town_seeds) for c in centroids]
    names = list(_NAME_ROOTS)
    rng.shuffle(names)

    towns: dict[str, Town] = {}
    villages: dict[str, Village] = {}
    grids: dict[str, Grid] = {}
    for t, (suffix, town_name) in enumerate(_TOWNS):
        town_code = COUNTY_CODE + suffix
        kind = "subdistrict" if town_name.endswith("街道") else "town" if town_name.endswith("镇") else "township"
        members = [k for k in range(len(cells)) if town_of_cell[k] == t]
        # About four grids per village; subdistricts have communities, townships villages.
        n_villages = max(1, round(len(members) / 4))
        village_seeds = _balanced_seeds(rng, [centroids[k] for k in members], n_villages)
        village_of_cell = {k: _nearest(centroids[k], village_seeds) for k in members}
        village_codes = []
        community_no, village_no = 0, 0
        for v in range(n_villages):
            v_members = sorted(
                (k for k in members if village_of_cell[k] == v), key=lambda k: (-centroids[k][0], centroids[k][1])
            )
            if not v_members:
                continue
            is_community = kind == "subdistrict" or (kind == "town" and v < 2)
            if is_community:
                community_no += 1
                village_code, v_kind, v_name = f"{town_code}{community_no:03d}", "community", names.pop() + "社区"
            else:
                village_no += 1
                village_code, v_kind, v_name = f"{town_code}{199 + village_no:03d}", "village", names.pop() + "村"
            grid_codes = []
            for n, k in enumerate(v_members, start=1):
                grid_code = f"{village_code}{n:03d}"
                grids[grid_code] = Grid(
                    code=grid_code,
                    name=f"{v_name}第{n}网格",
                    village_code=village_code,
                    town_code=town_code,
                    polygon=cells[k],
                    centroid=centroids[k],
                    worker=GridWorker(worker_id=f"gw{grid_code}", name=_person_name(rng)),
                    group=WeChatGroup(group_id=f"wr{grid_code}", name=f"{town_name}{v_name}第{n}网格群"),
                )
                grid_codes.append(grid_code)
            villages[village_code] = Village(
                code=village_code, name=v_name, kind=v_kind, town_code=town_code,
                grid_codes=tuple(grid_codes), polygons=tuple(grids[g].polygon for g in grid_codes),
            )
            village_codes.append(village_code)
        towns[town_code] = Town(
            code=town_code, name=town_name, kind=kind, county_code=COUNTY_CODE,
            village_codes=tuple(village_codes),
            polygons=tuple(grids[g].polygon for v in village_codes for g in villages[v].grid_codes),
        )
    index = GridIndex(list(grids.values()), bucket_lat=_LAT_STEP, bucket_lng=_LNG_STEP)
    return County(
        code=COUNTY_CODE, name=COUNTY_NAME, boundary=boundary,
        towns=towns, villages=villages, grids=grids, index=index,
    )


def find_grid(lat: float, lng: float) -> GridMatch | None:
    """The demo county's grid for a WGS-84 point, or None outside the county."""
    return load_demo_county().find_grid(lat, lng)


def county_boundary() -> Polygon:
    """The demo county's boundary polygon (WGS-84, counter-clockwise)."""
    return load_demo_county().boundary


def in_county(lat: float, lng: float) -> bool:
    """Whether a WGS-84 point lies inside the demo county."""
    return load_demo_county().contains(lat, lng)


DEMO_BROADCAST_GROUPS = 2413  # the seed county's count of resident groups


def demo_broadcast_groups(county: County) -> list[tuple[str, str, str, str]]:
    """The demo county's resident WeChat groups for broadcasts, one robot each, as
    (group_id, name, grid_code, robot_key): every grid's residents' group, then building groups
    (楼栋群) spread evenly over the grids until the seed county's 2,413 are reached."""
    grids = sorted(county.grids.values(), key=lambda g: g.code)
    extra, spare = divmod(DEMO_BROADCAST_GROUPS - len(grids), len(grids))
    rows = []
    for i, grid in enumerate(grids):
        rows.append((grid.group.group_id, grid.group.name, grid.code, f"grp-{grid.code}-00"))
        for n in range(1, extra + (1 if i < spare else 0) + 1):
            rows.append((f"{grid.group.group_id}-{n:02d}", f"{grid.group.name[:-1]}{n}号楼栋群", grid.code,
                         f"grp-{grid.code}-{n:02d}"))
    return rows
