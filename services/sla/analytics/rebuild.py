"""Rebuild every analytics figure from the start of the topics.

    python -m services.sla.analytics.rebuild     # with sla stopped (its analytics group must be empty)

Empties the analytics schema's tables (and its processed marks) and points the analytics consumer
group at the beginning of the report, case and sla topics; the next sla start reads them all again
and arrives at the same figures. sla's own timers and scores are untouched.
"""

import asyncio
import logging

from services.sla.analytics import store
from services.sla.analytics.consumer import SERVICE_DIR, analytics_settings, reset_offsets
from services.sla.settings import SlaSettings
from shared.db import apply_migrations, create_pool, schema_name

log = logging.getLogger(__name__)


async def rebuild(settings: SlaSettings) -> None:
    analytics = analytics_settings(settings)
    pool = await create_pool(analytics)
    try:
        await apply_migrations(pool, schema=schema_name(analytics), service_dir=SERVICE_DIR)
        async with pool.acquire() as conn:
            await store.reset(conn)
    finally:
        await pool.close()
    offsets = await reset_offsets(analytics)
    log.info("analytics reset: group %s at the start of %d partitions", analytics.consumer_group(), len(offsets))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(rebuild(SlaSettings(service_name="sla")))
