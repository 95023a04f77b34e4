"""What the intake benchmarks share: realistic report bodies spread over the demo county, an
open-loop load (requests leave on schedule whether or not earlier ones were answered, so a slow
server shows up as latency, not as a politely lower rate) and percentiles."""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from services.intake.settings import IntakeSettings
from shared.jurisdictions import load_county
from shared.taxonomy import load_taxonomy

DESCRIPTIONS = (
    "{place}附近{what}，已经好几天了，请尽快处理",
    "{place}门口{what}，影响居民出行",
    "反映一下：{place}{what}，麻烦派人看看",
)


class ReportMaker:
    """Reports at random grid centroids (jittered) with random categories: near-duplicates, which
    intake attaches to an open case, stay rare, as in a real county."""

    def __init__(self, seed: int = 7):
        settings = IntakeSettings()
        self.random = random.Random(seed)
        self.grids = list(load_county(settings.county_map_path).grids.values())
        self.categories = [
            (code, spec.name)
            for code, spec in load_taxonomy(settings.responsibility_list_path).categories.items()
            if code != "other"
        ]

    def body(self) -> dict:
        grid = self.random.choice(self.grids)
        category, name = self.random.choice(self.categories)
        lat, lng = grid.centroid
        template = self.random.choice(DESCRIPTIONS)
        return {
            "description": template.format(place=grid.name, what=name),
            "category": category,
            "lat": round(lat + self.random.uniform(-0.002, 0.002), 6),
            "lng": round(lng + self.random.uniform(-0.002, 0.002), 6),
            "channel": "api",
        }

    def client_address(self) -> str:
        """A resident's address as the ingress reports it (X-Forwarded-For): many residents,
        so per-IP rate limits are exercised but not hit."""
        return f"10.{self.random.randrange(256)}.{self.random.randrange(256)}.{self.random.randrange(1, 255)}"


@dataclass
class Offered:
    sent: int = 0
    answered: dict[int, int] = field(default_factory=dict)  # status → count
    failures: int = 0
    latencies_s: list[float] = field(default_factory=list)  # request → answer, 201s only


async def offer_reports(
    client: httpx.AsyncClient,
    maker: ReportMaker,
    *,
    rate: float,
    seconds: float,
    on_accepted: Callable[[dict, float], Awaitable[None] | None] | None = None,
) -> Offered:
    """POST /api/v1/reports at `rate` per second for `seconds` (open loop); `on_accepted(answer,
    answered_at)` is called for each 201, with answered_at on time.perf_counter()'s clock."""
    offered = Offered()
    pending: set[asyncio.Task] = set()

    async def one() -> None:
        started = time.perf_counter()
        try:
            r = await client.post(
                "/api/v1/reports", json=maker.body(), headers={"x-forwarded-for": maker.client_address()}
            )
        except httpx.HTTPError:
            offered.failures += 1
            return
        answered = time.perf_counter()
        offered.answered[r.status_code] = offered.answered.get(r.status_code, 0) + 1
        if r.status_code == 201:
            offered.latencies_s.append(answered - started)
            if on_accepted is not None:
                result = on_accepted(r.json(), answered)
                if result is not None:
                    await result

    begin = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one())
        pending.add(task)
        task.add_done_callback(pending.discard)
        offered.sent += 1
    if pending:
        await asyncio.wait(pending, timeout=60)
    return offered


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values; nan when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]
