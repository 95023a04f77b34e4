"""The one shape of every background loop: do a step until the service stops."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def repeat_until_stopped(
    stopping: asyncio.Event, interval_s: float, step: Callable[[], Awaitable[object]], *, what: str
) -> None:
    """Run `step` again at once while it reports work done (a truthy result), else after
    `interval_s`; a failing step is logged and retried, and `stopping` ends the loop promptly."""
    while not stopping.is_set():
        try:
            if await step():
                continue
        except Exception:
            log.exception("%s failed; retrying", what)
        try:
            await asyncio.wait_for(stopping.wait(), interval_s)
        except TimeoutError:
            pass
