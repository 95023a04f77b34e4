"""Maps drawn on the server as SVG from the county's grid polygons (WGS-84, shared/data).

Why SVG and not a map library: the grids are the map staff need, and a county intranet may have no
tile server at all; an inline SVG needs no script, no download and no network, prints, and each grid
is a link. When `console_map_tiles_url` is set (天地图's Web-Mercator tiles in production), the
tiles covering the view are laid under the grids at the view's zoom level; without it the map is
grid outlines on a plain background, which is still enough to see where a case is."""

import math
from dataclasses import dataclass
from html import escape

from shared.jurisdictions import County, Polygon

TILE = 256  # Web-Mercator tile size in pixels
MAX_ZOOM = 18


def pixel(lat: float, lng: float, zoom: int) -> tuple[float, float]:
    """Web-Mercator pixel coordinates of a point at a zoom level (the tile servers' projection)."""
    scale = TILE * 2**zoom
    sin = math.sin(math.radians(max(min(lat, 85.0), -85.0)))
    x = (lng + 180.0) / 360.0 * scale
    y = (0.5 - math.log((1 + sin) / (1 - sin)) / (4 * math.pi)) * scale
    return x, y


@dataclass(frozen=True)
class Shape:
    """A polygon to draw: its CSS class, a tooltip and where clicking it goes."""

    polygon: Polygon
    css: str
    title: str = ""
    href: str = ""
    label: str = ""


@dataclass(frozen=True)
class Marker:
    lat: float
    lng: float
    title: str


@dataclass(frozen=True)
class View:
    """The part of the world shown: a zoom level and the top-left pixel, fitted to the shapes."""

    zoom: int
    left: float
    top: float
    width: int
    height: int

    def xy(self, lat: float, lng: float) -> tuple[float, float]:
        x, y = pixel(lat, lng, self.zoom)
        return round(x - self.left, 1), round(y - self.top, 1)


def fit(points: list[tuple[float, float]], *, width: int, height: int, margin: int = 12) -> View:
    """The deepest zoom at which every point fits the frame, centred."""
    south, north = min(p[0] for p in points), max(p[0] for p in points)
    west, east = min(p[1] for p in points), max(p[1] for p in points)
    zoom = MAX_ZOOM
    while zoom > 0:
        x0, y0 = pixel(north, west, zoom)
        x1, y1 = pixel(south, east, zoom)
        if x1 - x0 <= width - 2 * margin and y1 - y0 <= height - 2 * margin:
            break
        zoom -= 1
    x0, y0 = pixel(north, west, zoom)
    x1, y1 = pixel(south, east, zoom)
    return View(zoom=zoom, left=(x0 + x1 - width) / 2, top=(y0 + y1 - height) / 2, width=width, height=height)


def tiles(view: View, url: str) -> str:
    """<image> elements for the base tiles under a view; `url` has {z}, {x} and {y}."""
    if not url:
        return ""
    first_x, first_y = int(view.left // TILE), int(view.top // TILE)
    last_x, last_y = int((view.left + view.width) // TILE), int((view.top + view.height) // TILE)
    images = []
    for tx in range(first_x, last_x + 1):
        for ty in range(first_y, last_y + 1):
            href = url.replace("{z}", str(view.zoom)).replace("{x}", str(tx)).replace("{y}", str(ty))
            images.append(
                f'<image href="{escape(href)}" x="{tx * TILE - view.left:.1f}" y="{ty * TILE - view.top:.1f}"'
                f' width="{TILE}" height="{TILE}"/>'
            )
    return f'<g class="tiles">{"".join(images)}</g>'


def svg(*, shapes: list[Shape], markers: list[Marker], tiles_url: str, width: int, height: int, caption: str) -> str:
    """An SVG map of shapes and markers; shapes with an href are links."""
    points = [p for shape in shapes for p in shape.polygon] + [(m.lat, m.lng) for m in markers]
    if not points:
        return ""
    view = fit(points, width=width, height=height)
    parts = [tiles(view, tiles_url)]
    for shape in shapes:
        path = " ".join(f"{x},{y}" for x, y in (view.xy(lat, lng) for lat, lng in shape.polygon))
        title = f"<title>{escape(shape.title)}</title>" if shape.title else ""
        polygon = f'<polygon points="{path}" class="{escape(shape.css)}">{title}</polygon>'
        if shape.href:
            polygon = f'<a href="{escape(shape.href)}" aria-label="{escape(shape.title)}">{polygon}</a>'
        parts.append(polygon)
    for shape in shapes:  # labels above every polygon, so a neighbour never covers one
        if shape.label:
            lat = sum(p[0] for p in shape.polygon) / len(shape.polygon)
            lng = sum(p[1] for p in shape.polygon) / len(shape.polygon)
            x, y = view.xy(lat, lng)
            parts.append(f'<text x="{x}" y="{y}" class="map-label">{escape(shape.label)}</text>')
    for marker in markers:
        x, y = view.xy(marker.lat, marker.lng)
        parts.append(
            f'<g class="map-marker"><circle cx="{x}" cy="{y}" r="7"/><circle cx="{x}" cy="{y}" r="2.5" class="dot"/>'
            f"<title>{escape(marker.title)}</title></g>"
        )
    # The view travels with the map, so a page script can turn a click back into a point (定位).
    return (
        f'<svg class="map" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(caption)}"'
        f' data-zoom="{view.zoom}" data-left="{view.left:.1f}" data-top="{view.top:.1f}"'
        f' xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


def case_map(*, county: County, grid_code: str | None, lat: float | None, lng: float | None, tiles_url: str) -> str:
    """A case on the map: its grid outlined among the other grids of its village, and its point."""
    grid = county.grids.get(grid_code or "")
    if grid is None and lat is None:
        return ""
    shapes = []
    if grid is not None:
        village = county.villages[grid.village_code]
        shapes = [
            Shape(
                polygon=county.grids[code].polygon,
                css="grid-this" if code == grid.code else "grid-other",
                title=county.grids[code].name,
                label=county.grids[code].name.removeprefix(village.name) if code == grid.code else "",
            )
            for code in village.grid_codes
        ]
    markers = [Marker(lat=lat, lng=lng, title="上报位置")] if lat is not None and lng is not None else []
    caption = f"案件位置：{grid.name}" if grid else "案件位置"
    return svg(shapes=shapes, markers=markers, tiles_url=tiles_url, width=560, height=320, caption=caption)


def load_class(open_cases: int, overdue: int) -> str:
    """A grid's colour on the overview: none open, some open, some overdue."""
    if overdue:
        return "grid-overdue"
    return "grid-open" if open_cases else "grid-quiet"


def overview_map(*, county: County, jurisdiction_code: str, load: dict[str, tuple[int, int]], tiles_url: str) -> str:
    """Every grid under a place, coloured by its open and overdue cases; each a link to its cases."""
    shapes = []
    for code, grid in county.grids.items():
        if not code.startswith(jurisdiction_code):
            continue
        open_cases, overdue = load.get(code, (0, 0))
        shapes.append(
            Shape(
                polygon=grid.polygon,
                css=load_class(open_cases, overdue),
                title=f"{county.villages[grid.village_code].name}{grid.name.removeprefix(county.villages[grid.village_code].name)}："
                f"在办 {open_cases} 件，逾期 {overdue} 件",
                href=f"/?tab=all&place={code}",
            )
        )
    return svg(shapes=shapes, markers=[], tiles_url=tiles_url, width=960, height=640, caption="在办案件分布图")


def area_map(
    *, county: County, jurisdiction_code: str, tiles_url: str, caption: str, width: int = 640, height: int = 420
) -> str:
    """A person's own area to place a point in: their grid among its village's grids, or every grid
    of their village or town (the county is too large to click a precise point in). `width` and
    `height`: the frame (a phone's is narrower)."""
    grid = county.grids.get(jurisdiction_code)
    prefix = grid.village_code if grid else jurisdiction_code
    shapes = [
        Shape(
            polygon=g.polygon,
            css="grid-this" if grid is None or code == grid.code else "grid-other",
            title=g.name,
            label=g.name.removeprefix(county.villages[g.village_code].name) if grid and code == grid.code else "",
        )
        for code, g in county.grids.items()
        if code.startswith(prefix)
    ]
    return svg(shapes=shapes, markers=[], tiles_url=tiles_url, width=width, height=height, caption=caption)
