"""The one shape of every background loop: do a step until the service stops."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def repeat_until_stopped(
    stopping: asyncio.Event,
    interval_s: float,
    step: Callable[[], Awaitable[object]],
    *,
    what: str,
    wake: asyncio.Event | None = None,
) -> None:
    """Run `step` again at once while it reports work done (a truthy result), else after
    `interval_s` or as soon as `wake` is set; a failing step is logged and retried, and
    `stopping` ends the loop promptly."""
    while not stopping.is_set():
        if wake is not None:
            wake.clear()  # before the step: a wake-up during it means more work, not a lost signal
        try:
            if await step():
                continue
        except Exception:
            log.exception("%s failed; retrying", what)
        waits = [asyncio.ensure_future(e.wait()) for e in (stopping, wake) if e is not None]
        try:
            await asyncio.wait(waits, timeout=interval_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
