"""The registry of topics: name, partitions, retention, cleanup policy and the event types on each,
and which service produces and consumes which topic.

Brokers run with auto.create.topics.enable=false. Locally topics exist because `ensure_topics`
created them from this registry (`python -m shared.topics` creates them by hand); in a county's
cluster they are Strimzi KafkaTopic resources, and each service a KafkaUser whose ACLs follow
SERVICE_TOPICS, all generated from here (`python -m devtools.deploy_gen kafka`).
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


@dataclass(frozen=True)
class TopicAccess:
    """What one service does on the topics: `produces` through its outbox, `consumes` as its
    consumer group (`group` False: a reader without a group, which commits no offsets). Every
    consumer with a group also produces dead letters."""

    produces: tuple[Topic, ...]
    consumes: tuple[Topic, ...]
    group: bool = True


# Kept true by the code: services subscribe to `consumes`, and `enqueue` refuses a topic that is
# not in the service's `produces` (so a new event on another topic fails its tests until it is
# declared here, and the cluster's ACLs follow).
SERVICE_TOPICS: dict[str, TopicAccess] = {
    "intake": TopicAccess(produces=(REPORTS,), consumes=(CASES, REPORTS, MESSAGES)),
    # Dispatch also publishes triage.corrected (a reclassified case teaches intake's triage).
    "dispatch": TopicAccess(produces=(CASES, REPORTS), consumes=(REPORTS, CASES, SLA)),
    "sla": TopicAccess(produces=(SLA,), consumes=(CASES,)),
    "notify": TopicAccess(produces=(NOTIFICATIONS, MESSAGES), consumes=(REPORTS, CASES, SLA, MEDIA)),
    "media": TopicAccess(produces=(MEDIA,), consumes=(REPORTS, CASES)),
    # The console's live updates: every process reads the case topic (new and changed cases) and
    # the SLA topic (missed deadlines flag their rows) from their end, without a group.
    "console": TopicAccess(produces=(), consumes=(CASES, SLA), group=False),
}


class UndeclaredTopic(RuntimeError):
    """A service publishing on a topic SERVICE_TOPICS does not let it produce to."""


def check_produces(service: str, topic: Topic) -> None:
    """Refuse an event a known service may not publish (its cluster user could not write it)."""
    access = SERVICE_TOPICS.get(service)
    if access is not None and topic not in access.produces:
        raise UndeclaredTopic(
            f"{service} publishes on {topic.name}, which SERVICE_TOPICS in shared/topics.py does not let it "
            "produce to: declare it there and regenerate the cluster's users (python -m devtools.deploy_gen kafka)"
        )


_TOPIC_OF_EVENT = {event_type: topic for topic in ALL_TOPICS for event_type in topic.event_types}


def topic_for(event_type: str) -> Topic:
    """The topic an event type is published on."""
    return _TOPIC_OF_EVENT[event_type]


def topic_config(topic: Topic, settings: ServiceSettings) -> dict[str, str]:
    """The broker-side configuration of a registry topic."""
    return {
        "retention.ms": str(topic.retention_ms),
        "cleanup.policy": topic.cleanup_policy,
        "min.insync.replicas": str(settings.kafka_min_insync_replicas),
    }


async def ensure_topics(settings: ServiceSettings, *, attempts: int = 30) -> None:
    """Create every registry topic that does not exist yet (idempotent; waits for the broker)."""
    for attempt in range(1, attempts + 1):
        admin = AIOKafkaAdminClient(**settings.kafka_options())
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(
                    name=settings.topic(t.name),
                    num_partitions=t.partitions,
                    replication_factor=settings.kafka_replication_factor,
                    topic_configs=topic_config(t, settings),
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
