"""What the intake benchmarks share: an open-loop load (requests leave on schedule whether or not
earlier ones were answered, so a slow server shows up as latency, not as a politely lower rate),
percentiles and the CPU time processes used."""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

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


def _proc_stats() -> dict[int, tuple[int, float]]:
    """pid → (parent pid, CPU seconds of the process and of its children it has reaped)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), here 11-14 after the name
        stats[int(entry)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / tick)
    return stats


def cpu_seconds(*roots: int) -> float:
    """CPU time (user + system) used so far by these processes and all their descendants, live or
    ended: a uvicorn master and its workers, a postmaster and its backends. On a machine shared
    with other work, CPU per request is the figure that does not move with their load."""
    stats = _proc_stats()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0.0, [r for r in roots if r in stats]
    while todo:
        pid = todo.pop()
        total += stats[pid][1]
        todo.extend(children.get(pid, ()))
    return total
