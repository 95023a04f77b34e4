"""The registry of topics: name, partitions, retention, cleanup policy and the event types on each.

Brokers run with auto.create.topics.enable=false; topics exist because `ensure_topics` created
them from this registry. Run `python -m shared.topics` to create them by hand.
"""

import asyncio
import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.case_actions import CASE_TRANSITION_TYPES
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

FOREVER = -1
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    retention_ms: int
    event_types: tuple[str, ...]
    cleanup_policy: str = "delete"


# Case history must be rebuildable from the topics alone, so report and case topics keep forever.
REPORTS = Topic(
    "gridlink.reports",
    6,
    FOREVER,
    (
        "report.submitted",
        "report.attached",
        "report.located",
        "triage.corrected",
        "query.code_requested",
        "reporter.verified",
        "reporter.rated",
    ),
)
CASES = Topic("gridlink.cases", 6, FOREVER, ("case.dispatched", *CASE_TRANSITION_TYPES))
SLA = Topic("gridlink.sla", 6, 365 * DAY_MS, ("sla.breached", "sla.warning"))
MEDIA = Topic("gridlink.media", 3, 365 * DAY_MS, ("media.stored", "media.rejected", "media.attached"))
NOTIFICATIONS = Topic("gridlink.notifications", 3, 90 * DAY_MS, ("notification.sent", "notification.failed"))
# Inbound WeCom/official-account messages for intake, keyed by sender so each one stays in order.
MESSAGES = Topic("gridlink.messages", 3, 365 * DAY_MS, ("message.received",))
# Poison messages and messages whose handler kept failing, with the reason, for an operator.
DEAD_LETTERS = Topic("gridlink.dead-letters", 1, 90 * DAY_MS, ())

ALL_TOPICS = (REPORTS, CASES, SLA, MEDIA, NOTIFICATIONS, MESSAGES, DEAD_LETTERS)
_TOPIC_OF_EVENT = {event_type: topic for topic in ALL_TOPICS for event_type in topic.event_types}


def topic_for(event_type: str) -> Topic:
    """The topic an event type is published on."""
    return _TOPIC_OF_EVENT[event_type]


async def ensure_topics(settings: ServiceSettings, *, attempts: int = 30) -> None:
    """Create every registry topic that does not exist yet (idempotent; waits for the broker)."""
    for attempt in range(1, attempts + 1):
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(
                    name=settings.topic(t.name),
                    num_partitions=t.partitions,
                    replication_factor=1,
                    topic_configs={"retention.ms": str(t.retention_ms), "cleanup.policy": t.cleanup_policy},
                )
                for t in ALL_TOPICS
                if settings.topic(t.name) not in existing
            ]
            if missing:
                response = await admin.create_topics(missing)
                for name, code, *_ in response.topic_errors:
                    if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS (another service won the race)
                        raise RuntimeError(f"creating topic {name} failed with Kafka error code {code}")
                log.info("created topics %s", [t.name for t in missing])
            return
        except Exception as exc:
            if attempt == attempts:
                raise
            log.info("kafka not ready (%s), retrying", exc)
            await asyncio.sleep(1)
        finally:
            await admin.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(ensure_topics(ServiceSettings()))
