"""Residents' reports for load: benchmarks and fault-injection tests offer these to intake."""

import random

from services.intake.settings import IntakeSettings
from shared.jurisdictions import load_county
from shared.taxonomy import load_taxonomy

DESCRIPTIONS = (
    "{place}附近{what}，已经好几天了，请尽快处理（{n}）",
    "{place}门口{what}，影响居民出行",
    "反映一下：{place}{what}，麻烦派人看看",
)


class ReportMaker:
    """Reports at random grid centroids (jittered) with random categories: near-duplicates, which
    intake attaches to an open case, stay rare, as in a real county."""

    def __init__(self, seed: int = 7):
        settings = IntakeSettings()
        self.random = random.Random(seed)
        self.county = load_county(settings.county_map_path)
        self.grids = list(self.county.grids.values())
        self.categories = [
            (code, spec.name)
            for code, spec in load_taxonomy(settings.responsibility_list_path).categories.items()
            if code != "other"
        ]

    def body(self) -> dict:
        grid = self.random.choice(self.grids)
        category, name = self.random.choice(self.categories)
        while True:  # near the grid's centre, inside the county (a border grid's surroundings are not)
            lat = round(grid.centroid[0] + self.random.uniform(-0.002, 0.002), 6)
            lng = round(grid.centroid[1] + self.random.uniform(-0.002, 0.002), 6)
            if self.county.find_grid(lat, lng):
                break
        template = self.random.choice(DESCRIPTIONS)
        return {
            "description": template.format(place=grid.name, what=name, n=self.random.randrange(10_000)),
            "category": category,
            "lat": lat,
            "lng": lng,
            "channel": "api",
        }

    def client_address(self) -> str:
        """A resident's address as the ingress reports it (X-Forwarded-For): many residents,
        so per-IP rate limits are exercised but not hit."""
        return f"10.{self.random.randrange(256)}.{self.random.randrange(256)}.{self.random.randrange(1, 255)}"
