"""Placement benchmark: which grid a point is in (intake places every report this way), through the
county's grid index, against testing every grid's polygon in turn, measured in the same run on the
demo county's map. Target: a lookup well under 100 µs and far cheaper than the scan.

Run: .cache/venv/bin/python bench/placement.py [--points 20000]
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.jurisdictions import load_county, point_in_polygon  # noqa: E402
from shared.settings import PROJECT_ROOT  # noqa: E402

TARGET_US = 100.0


def per_lookup_us(lookup, points, rounds: int = 5) -> float:
    """Median over rounds of the mean time per lookup, in microseconds."""
    figures = []
    for _ in range(rounds):
        started = time.perf_counter()
        for lat, lng in points:
            lookup(lat, lng)
        figures.append((time.perf_counter() - started) / len(points) * 1e6)
    return statistics.median(figures)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20_000)
    args = parser.parse_args()
    county = load_county(PROJECT_ROOT / "shared" / "data" / "county.geojson")
    grids = list(county.grids.values())
    west, south, east, north = 119.89, 28.93, 120.20, 29.22
    rng = random.Random(7)
    points = [(rng.uniform(south, north), rng.uniform(west, east)) for _ in range(args.points)]

    def scan(lat: float, lng: float):
        return next((g for g in grids if point_in_polygon(lat, lng, g.polygon)), None)

    indexed = per_lookup_us(county.find_grid, points)
    baseline = per_lookup_us(scan, points[: max(1, len(points) // 10)], rounds=3)
    ok = indexed < TARGET_US
    print(f"placement over {len(grids)} grids, {len(points)} random points in the county's bounds")
    verdict = "met" if ok else "MISSED"
    print(f"  grid index      {indexed:8.1f} µs per lookup   (target < {TARGET_US:.0f} µs: {verdict})")
    print(f"  scan baseline   {baseline:8.1f} µs per lookup   (every polygon in turn)")
    print(f"  ratio           {baseline / indexed:8.1f}× faster than the scan")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
