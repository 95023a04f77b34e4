"""What the intake benchmarks share: an open-loop load (requests leave on schedule whether or not
earlier ones were answered, so a slow server shows up as latency, not as a politely lower rate)
and percentiles."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from devtools.reports import ReportMaker


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
    if pending:  # stragglers get 15 s; what is still unanswered then counts as failed
        _, late = await asyncio.wait(pending, timeout=15)
        offered.failures += len(late)
        for task in late:
            task.cancel()
    return offered


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values; nan when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]
