"""The demo county (division code 330727, 示范县): generated from a fixed seed and written to the
files services load — the county map (shared/data/county.geojson, read with shared.jurisdictions.
load_county) and notify's broadcast groups (shared/data/groups.csv).

Regenerate both after changing the generator: `make county` (python -m devtools.demo_county);
tests/unit/test_demo_county.py fails while the committed files differ from what it makes.

~12 towns with 9-digit codes, ~150 villages and communities with 12-digit codes and ~600 grids,
each grid with a polygon, a grid worker (网格员) and the WeChat group its residents report in.
Names are fictional. Geometry: a jittered lattice of convex quadrilaterals clipped to a convex
county boundary, so the grids tile the county without gaps or overlaps; towns and villages are
groups of whole grids. Coordinates are WGS-84.
"""

import argparse
import csv
import io
import json
import math
import random
import tempfile
from pathlib import Path

from shared.county_files import county_map as county_map_document
from shared.county_files import groups_text, map_text, read_county_dir
from shared.geo import wgs84_to_gcj02
from shared.jurisdictions import County, Point, Polygon, parse_county, polygon_area, polygon_centroid
from shared.settings import PROJECT_ROOT

COUNTY_MAP_PATH = PROJECT_ROOT / "shared" / "data" / "county.geojson"
GROUPS_PATH = PROJECT_ROOT / "shared" / "data" / "groups.csv"

COUNTY_CODE = "330727"
COUNTY_NAME = "示范县"
SEED = 330727

_CENTER: Point = (29.08, 120.05)
_RADIUS_DEG_LAT = 0.125  # ≈ 14 km
_LAT_STEP = 0.0100  # ≈ 1.1 km
_LNG_STEP = 0.0115  # ≈ 1.1 km at 29°N
_JITTER = 0.2  # of a step: small enough that every lattice cell stays convex

_TOWNS = (
    ("001", "城关街道"),
    ("002", "东城街道"),
    ("003", "西城街道"),
    ("101", "青山镇"),
    ("102", "白石镇"),
    ("103", "龙潭镇"),
    ("104", "桃源镇"),
    ("105", "清溪镇"),
    ("106", "石门镇"),
    ("201", "柳林乡"),
    ("202", "枫岭乡"),
    ("203", "云峰乡"),
)
_NAME_ROOTS = tuple(
    (
        "幸福 锦华 和平 翠苑 金顶 瑞湖 莲源 新城 学府 滨河 东关 建设 人民 光明 团结 胜利 长江 黄河 花园 文昌 "
        "兴隆 永安 太平 安康 丰收 红星 前进 向阳 朝阳 长青 松柏 杏林 梅园 竹溪 荷塘 枫桥 桂花 樟树 柳湾 石桥 "
        "溪口 塘头 上洋 下洋 岭脚 山背 田畈 后宅 前山 后山 高坪 大坞 小坞 里岙 外岙 章家 王家 李家 陈家 周家 "
        "吴家 郑家 何家 胡家 徐家 孙家 马家 朱家 林家 黄家 赵家 杨家 叶家 潘家 卢家 方家 金家 施家 楼家 厉家 "
        "羊山 龙头 凤凰 仙岩 云溪 白云 青龙 玉泉 清泉 双溪 三合 四联 五星 六和 七里 八角 九龙 十里 新建 新丰 "
        "新华 新民 新安 新塘 东山 西山 南山 北山 东溪 西溪 南岙 北岙 上塘 下塘 中村 横路 古竹 茶坞 桑园 梨树 "
        "桃花 杜鹃 兰溪 芦田 稻香 麦田 谷丰 泉水 观音 仁和 积善 同心 和睦 民主 振兴 富民 康宁 长乐 万福 百合 "
        "千岛 锦绣 雅居 御景 泰和 嘉禾 华庭 金桂 银杏 翡翠 明珠 海棠 紫荆 玉兰 丹桂 望江"
    ).split()
)
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任卢"
    "姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严欧莫孔向常汤"
)
_GIVEN = "建国军华明丽英秀兰芳玲红平伟强磊洋勇艳杰娟涛超霞静敏燕鹏辉刚健波斌宇浩凯晨婷雪琳丹萍晶慧莉梅琴云飞峰海林春"


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
    for a, b in zip(clip, clip[1:] + clip[:1], strict=True):
        if not output:
            break
        points, output = output, []
        for p, q in zip(points, points[1:] + points[:1], strict=True):
            if inside(q, a, b):
                if not inside(p, a, b):
                    output.append(intersection(p, q, a, b))
                output.append(q)
            elif inside(p, a, b):
                output.append(intersection(p, q, a, b))
    return tuple(output)


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


def _feature(properties: dict, polygon: Polygon | None) -> dict:
    geometry = None
    if polygon is not None:
        # GeoJSON positions are [lng, lat] and a ring repeats its first position at the end.
        geometry = {"type": "Polygon", "coordinates": [[[lng, lat] for lat, lng in (*polygon, polygon[0])]]}
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def demo_county_map() -> dict:
    """The demo county's map as shared.jurisdictions.parse_county reads it, built deterministically
    from SEED."""
    rng = random.Random(SEED)
    lng_scale = 1.0 / math.cos(math.radians(_CENTER[0]))
    outline = []
    for k in range(28):
        angle = 2 * math.pi * k / 28
        r = _RADIUS_DEG_LAT * rng.uniform(0.85, 1.15)
        outline.append((_CENTER[0] + r * math.sin(angle), _CENTER[1] + r * math.cos(angle) * lng_scale))
    boundary = _convex_hull(outline)
    cells = _lattice_cells(rng, boundary)
    centroids = [polygon_centroid(c) for c in cells]

    # Subdistricts (街道) come first in _TOWNS and take the seeds nearest the county seat.
    town_seeds = sorted(
        _balanced_seeds(rng, centroids, len(_TOWNS)),
        key=lambda p: (p[0] - _CENTER[0]) ** 2 + ((p[1] - _CENTER[1]) / lng_scale) ** 2,
    )
    town_of_cell = [_nearest(c, town_seeds) for c in centroids]
    names = list(_NAME_ROOTS)
    rng.shuffle(names)

    towns, villages, grids = [], [], []
    for t, (suffix, town_name) in enumerate(_TOWNS):
        town_code = COUNTY_CODE + suffix
        kind = "subdistrict" if town_name.endswith("街道") else "town" if town_name.endswith("镇") else "township"
        towns.append(
            _feature(
                {"level": "town", "code": town_code, "name": town_name, "kind": kind, "parent_code": COUNTY_CODE}, None
            )
        )
        members = [k for k in range(len(cells)) if town_of_cell[k] == t]
        # About four grids per village; subdistricts have communities, townships villages.
        n_villages = max(1, round(len(members) / 4))
        village_seeds = _balanced_seeds(rng, [centroids[k] for k in members], n_villages)
        village_of_cell = {k: _nearest(centroids[k], village_seeds) for k in members}
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
            villages.append(
                _feature(
                    {
                        "level": "village",
                        "code": village_code,
                        "name": v_name,
                        "kind": v_kind,
                        "parent_code": town_code,
                    },
                    None,
                )
            )
            for n, k in enumerate(v_members, start=1):
                grid_code = f"{village_code}{n:03d}"
                grids.append(
                    _feature(
                        {
                            "level": "grid",
                            "code": grid_code,
                            "name": f"{v_name}第{n}网格",
                            "parent_code": village_code,
                            "worker_id": f"gw{grid_code}",
                            "worker_name": _person_name(rng),
                            "group_id": f"wr{grid_code}",
                            "group_name": f"{town_name}{v_name}第{n}网格群",
                        },
                        cells[k],
                    )
                )
    county = _feature({"level": "county", "code": COUNTY_CODE, "name": COUNTY_NAME}, boundary)
    return {"type": "FeatureCollection", "features": [county, *towns, *villages, *grids]}


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
            rows.append(
                (
                    f"{grid.group.group_id}-{n:02d}",
                    f"{grid.group.name[:-1]}{n}号楼栋群",
                    grid.code,
                    f"grp-{grid.code}-{n:02d}",
                )
            )
    return rows


COUNTIES_DIR = PROJECT_ROOT / "shared" / "data" / "counties"
DEMO_DIR = COUNTIES_DIR / COUNTY_CODE
SAMPLE_CODE = "330799"  # made up: no county has it
SAMPLE_DIR = COUNTIES_DIR / SAMPLE_CODE


def _csv(header: list[str], rows: list[list[str]] | list[tuple[str, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _code12(code: str) -> str:
    return code.ljust(12, "0")


def _grids_text(datum: str, features: list[dict]) -> str:
    body = ",\n".join(json.dumps(f, ensure_ascii=False) for f in features)
    return '{"type": "FeatureCollection", "datum": "' + datum + '", "features": [\n' + body + "\n]}\n"


def county_source_files(county_map: dict, groups: list[tuple[str, str, str, str]]) -> dict[str, str]:
    """A county map (parse_county's format) as the four standard files an import reads."""
    features = county_map["features"]
    divisions, grid_features, workers = [], [], []
    for f in features:
        p = f["properties"]
        if p["level"] in ("county", "town", "village"):
            parent = _code12(p["parent_code"]) if p.get("parent_code") else ""
            divisions.append([_code12(p["code"]), p["name"], p["level"], parent, p.get("kind") or ""])
        if p["level"] == "county":
            grid_features.append(
                {"type": "Feature", "properties": {"division_code": _code12(p["code"])}, "geometry": f["geometry"]}
            )
        if p["level"] == "grid":
            props = {
                "grid_code": p["code"],
                "name": p["name"],
                "village_code": p["parent_code"],
                "kind": p.get("kind", "ordinary"),
            }
            grid_features.append({"type": "Feature", "properties": props, "geometry": f["geometry"]})
            workers.append([p["worker_id"], p["worker_name"], p["code"]])
    return {
        "divisions.csv": _csv(["code", "name", "level", "parent_code", "kind"], divisions),
        "grids.geojson": _grids_text("WGS-84", grid_features),
        "groups.csv": _csv(["group_id", "name", "code", "robot_key"], groups),
        "workers.csv": _csv(["worker_id", "name", "grid_code"], workers),
    }


def _rect(lat0: float, lng0: float, lat1: float, lng1: float, *, gcj: bool = False) -> dict:
    """A rectangle as a GeoJSON Polygon (counter-clockwise, closed), optionally in GCJ-02."""
    ring = [(lat0, lng0), (lat0, lng1), (lat1, lng1), (lat1, lng0), (lat0, lng0)]
    if gcj:
        ring = [wgs84_to_gcj02(lat, lng) for lat, lng in ring]
    return {"type": "Polygon", "coordinates": [[[lng, lat] for lat, lng in ring]]}


def _ring(points: list[Point], *, gcj: bool) -> dict:
    ring = [*points, points[0]]
    if gcj:
        ring = [wgs84_to_gcj02(lat, lng) for lat, lng in ring]
    return {"type": "Polygon", "coordinates": [[[lng, lat] for lat, lng in ring]]}


_SAMPLE_TOWNS = (
    ("001", "南湖街道", ("001", "湖滨社区"), ("002", "柳岸社区")),
    ("101", "北岭镇", ("001", "北岭社区"), ("201", "松坞村")),
    ("201", "东坪乡", ("201", "东坪村"), ("202", "石涧村")),
)


def sample_county_files() -> dict[str, str]:
    """The second sample county (样板县, 330799, made up): 3 towns, 6 villages, 2×2 ordinary grids
    a village (about 500 m each), one school's special grid (专属网格) across two grids and two
    micro grids (微网格) in one grid; drawn in GCJ-02 as a county's own GIS exports usually are,
    with 湖滨社区's outline given so its grids are checked to cover it."""
    lat0, lng0, step = 29.40, 120.40, 0.005  # far from the demo county
    divisions = [[_code12(SAMPLE_CODE), "样板县", "county", "", ""]]
    grids, workers, groups = [], [], []
    people = iter(_person_name(random.Random(SAMPLE_CODE)) for _ in range(1000))
    for t, (town_suffix, town_name, *villages) in enumerate(_SAMPLE_TOWNS):
        town = SAMPLE_CODE + town_suffix
        divisions.append([_code12(town), town_name, "town", _code12(SAMPLE_CODE), ""])
        groups.append((f"town{town}", f"{town_name}工作群", _code12(town), f"robot-{town}"))
        for v, (village_suffix, village_name) in enumerate(villages):
            village = town + village_suffix
            divisions.append([village, village_name, "village", _code12(town), ""])
            vlat, vlng = lat0 + v * 2 * step, lng0 + t * 2 * step
            if village_name == "湖滨社区":
                outline = [
                    (vlat, vlng),
                    (vlat, vlng + step),
                    (vlat, vlng + 2 * step),
                    (vlat + step, vlng + 2 * step),
                    (vlat + 2 * step, vlng + 2 * step),
                    (vlat + 2 * step, vlng + step),
                    (vlat + 2 * step, vlng),
                    (vlat + step, vlng),
                ]
                grids.append(
                    {"type": "Feature", "properties": {"division_code": village}, "geometry": _ring(outline, gcj=True)}
                )
            for n in range(4):
                i, j = divmod(n, 2)
                code = f"{village}{n + 1:03d}"
                name = f"{village_name}第{n + 1}网格"
                box = (vlat + i * step, vlng + j * step, vlat + (i + 1) * step, vlng + (j + 1) * step)
                grids.append(
                    {
                        "type": "Feature",
                        "properties": {"grid_code": code, "name": name, "village_code": village, "kind": "ordinary"},
                        "geometry": _rect(*box, gcj=True),
                    }
                )
                workers.append([f"gw{code}", next(people), code])
                groups.append((f"wr{code}", f"{town_name}{name}群", code, f"grp-{code}"))
    # 湖滨社区第1网格's two micro grids, and 南湖中学's special grid across its first two grids.
    hubin = SAMPLE_CODE + "001001"
    for m in range(2):
        code = f"{hubin}001{m + 1:03d}"
        box = (lat0, lng0 + m * step / 2, lat0 + step, lng0 + (m + 1) * step / 2)
        grids.append(
            {
                "type": "Feature",
                "properties": {
                    "grid_code": code,
                    "name": f"湖滨社区第1网格第{m + 1}微网格",
                    "village_code": hubin,
                    "kind": "micro",
                },
                "geometry": _rect(*box, gcj=True),
            }
        )
        workers.append([f"mw{code}", next(people), code])
        groups.append((f"wr{code}", f"湖滨社区第1网格第{m + 1}微网格群", code, f"grp-{code}"))
    school = f"{hubin}901"
    box = (lat0 + step * 0.3, lng0 + step * 0.5, lat0 + step * 0.7, lng0 + step * 1.5)
    grids.append(
        {
            "type": "Feature",
            "properties": {"grid_code": school, "name": "南湖中学专属网格", "village_code": hubin, "kind": "special"},
            "geometry": _rect(*box, gcj=True),
        }
    )
    workers.append([f"gw{school}", next(people), school])
    groups.append((f"wr{school}", "南湖中学专属网格群", school, f"grp-{school}"))
    outline = (lat0, lng0, lat0 + 4 * step, lng0 + 6 * step)  # the grids tile it
    grids.insert(
        0,
        {
            "type": "Feature",
            "properties": {"division_code": _code12(SAMPLE_CODE)},
            "geometry": _rect(*outline, gcj=True),
        },
    )
    return {
        "divisions.csv": _csv(["code", "name", "level", "parent_code", "kind"], divisions),
        "grids.geojson": _grids_text("GCJ-02", grids),
        "groups.csv": _csv(["group_id", "name", "code", "robot_key"], groups),
        "workers.csv": _csv(["worker_id", "name", "grid_code"], workers),
    }


def demo_files() -> dict[Path, str]:
    """Every file the demo and sample counties are shipped as, with the text it must hold: each
    county's four standard files, and the demo county's map and broadcast groups as its import
    (version 1) makes them — what services load by default."""
    county_map = demo_county_map()
    groups = demo_broadcast_groups(parse_county(county_map))
    demo = county_source_files(county_map, groups)
    files = {DEMO_DIR / name: text for name, text in demo.items()}
    files |= {SAMPLE_DIR / name: text for name, text in sample_county_files().items()}
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in demo.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        imported = read_county_dir(Path(tmp))
    files[COUNTY_MAP_PATH] = map_text(county_map_document(imported, version=1))
    files[GROUPS_PATH] = groups_text(imported.groups)
    return files


def main() -> None:
    argparse.ArgumentParser(
        description="Write the demo and sample counties' files (shared/data/counties/) and the demo county's"
        " map and broadcast groups into shared/data."
    ).parse_args()
    for path, text in demo_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"[demo county] wrote {path.relative_to(PROJECT_ROOT)} ({len(text):,} characters)")


if __name__ == "__main__":
    main()
