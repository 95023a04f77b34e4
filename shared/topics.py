"""The registry of topics: name, partitions, retention, cleanup policy, the event types on each,
and which service writes and reads each one.

Brokers run with auto.create.topics.enable=false. Locally topics exist because `ensure_topics`
created them from this registry (`python -m shared.topics` creates them by hand); in a county's
cluster they are Strimzi KafkaTopic resources, and each service a KafkaUser whose ACLs are
`kafka_acls`, all generated from here (`python -m devtools.deploy_gen kafka`). The code keeps it
true: services subscribe to what they read (`service_topics`), and `enqueue` refuses a topic a
service does not write (`check_produces`), so a new event on another topic fails its tests until
it is declared here, and the cluster's ACLs follow.
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.case_actions import CASE_TRANSITION_TYPES
from shared.settings import ServiceSettings, kafka_principal

log = logging.getLogger(__name__)

FOREVER = -1
DAY_MS = 24 * 3600 * 1000


# Who connects to Kafka: each service as its own principal, and the operators' dead-letter tool
# (python -m shared.deadletters) as one more.
SERVICES = ("intake", "dispatch", "sla", "notify", "media", "console")
OPERATOR = "operator"


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    retention_ms: int
    event_types: tuple[str, ...]
    cleanup_policy: str = "delete"
    # Who may publish to it and who may read it (each service's Kafka ACLs come from these; see
    # service_topics). Other departments that integrate through a topic get a reader principal of
    # their own, granted by the same rule: never one of the private topics.
    writers: tuple[str, ...] = ()
    readers: tuple[str, ...] = ()
    # Carries personal data only its readers may have: never granted to another department.
    private: bool = False


# Case history must be rebuildable from the topics alone, so report and case topics keep forever.
# Other departments may read them: nothing on them lets anyone reach a reporter (see REPORTER_CONTACTS).
REPORTS = Topic(
    "gridlink.reports",
    6,
    FOREVER,
    ("report.submitted", "report.attached", "report.located", "triage.corrected", "reporter.rated"),
    writers=("intake", "dispatch"),  # dispatch: triage.corrected
    readers=("intake", "dispatch", "notify", "media", "sla"),  # sla: its analytics consumer
)
CASES = Topic(
    "gridlink.cases",
    6,
    FOREVER,
    ("case.dispatched", *CASE_TRANSITION_TYPES),
    writers=("dispatch",),
    readers=("intake", "dispatch", "sla", "notify", "media", "console"),
)
SLA = Topic(
    "gridlink.sla",
    6,
    365 * DAY_MS,
    ("sla.breached", "sla.warning", "sla.notice_issued"),
    writers=("sla",),
    # console: the live queue flags missed deadlines; sla: its analytics consumer (三率) counts them
    readers=("dispatch", "notify", "console", "sla"),
)
MEDIA = Topic(
    "gridlink.media",
    3,
    365 * DAY_MS,
    ("media.stored", "media.rejected", "media.attached", "media.comparison_ready"),
    writers=("media",),
    readers=("notify", "dispatch"),  # dispatch: 办结 needs after photos media holds for the case
)
NOTIFICATIONS = Topic(
    "gridlink.notifications",
    3,
    90 * DAY_MS,
    ("notification.sent", "notification.failed"),
    writers=("notify",),
)
# Inbound WeCom/official-account messages for intake, keyed by sender so each one stays in order.
# Private: they name their senders (openids, WeCom user ids).
MESSAGES = Topic(
    "gridlink.messages",
    3,
    365 * DAY_MS,
    ("message.received",),
    writers=("notify",),
    readers=("intake",),
    private=True,
)
# Staff acting on cases from WeCom (template-card buttons, commands to the AI bot), keyed by case
# number: notify writes what was asked, dispatch applies it and asks media for a 办结's photos.
# Private: they name WeCom users.
STAFF_COMMANDS = Topic(
    "gridlink.staff-commands",
    3,
    30 * DAY_MS,
    ("staff.command", "staff.photos_submitted"),
    writers=("notify", "dispatch"),  # dispatch: staff.photos_submitted
    readers=("dispatch", "media"),  # media: staff.photos_submitted
    private=True,
)
# Dispatch's answers to them, for notify to show on the card or in the group.
STAFF_ANSWERS = Topic(
    "gridlink.staff-answers",
    3,
    30 * DAY_MS,
    ("staff.command_answered",),
    writers=("dispatch",),
    readers=("notify",),
    private=True,
)
# How to reach reporters: their phones (ciphertext), openids and WeCom user ids, the one-time
# 我要查询 codes and the phones proved by them. Private to intake, which takes them, and notify,
# which alone sends to them: PIPL allows personal data only where it is needed, and other
# departments read gridlink.reports, which is kept forever. Notify keeps what it needs in its own
# database, and retention here is short (a code lives minutes, a contact is read within seconds).
REPORTER_CONTACTS = Topic(
    "gridlink.reporter-contacts",
    3,
    30 * DAY_MS,
    ("reporter.contact_given", "query.code_requested", "reporter.verified"),
    writers=("intake",),
    readers=("notify",),
    private=True,
)
# The directory's people (WeCom user ids, roles, departments — never mobiles) and the departments'
# duty rosters (值班表), as dispatch keeps them, for notify to @ the person on duty and their backup
# and to send them cards. Private: it names staff and their WeCom accounts. Compacted by key (a
# person's or a shift's id), so a new notify database rebuilds the current directory from it.
DIRECTORY = Topic(
    "gridlink.directory",
    3,
    FOREVER,
    ("directory.person_saved", "duty.shift_added", "duty.shift_removed"),
    cleanup_policy="compact",
    writers=("dispatch",),
    readers=("notify",),
    private=True,
)
# Poison messages and messages whose handler kept failing, with the reason, for an operator.
# Private: a letter holds the original message, whichever topic it came from.
DEAD_LETTERS = Topic(
    "gridlink.dead-letters",
    1,
    90 * DAY_MS,
    (),
    writers=("intake", "dispatch", "sla", "notify", "media"),  # every service that runs a ConsumerRunner
    readers=(OPERATOR,),
    private=True,
)

ALL_TOPICS = (
    REPORTS,
    CASES,
    SLA,
    MEDIA,
    NOTIFICATIONS,
    MESSAGES,
    STAFF_COMMANDS,
    STAFF_ANSWERS,
    REPORTER_CONTACTS,
    DIRECTORY,
    DEAD_LETTERS,
)
_TOPIC_OF_EVENT = {event_type: topic for topic in ALL_TOPICS for event_type in topic.event_types}


@dataclass(frozen=True)
class ServiceTopics:
    """What one principal may do on Kafka: the registry topics it reads and writes, and the
    consumer-group prefix it consumes as. Kafka ACLs (Strimzi KafkaUser resources) are made from it."""

    principal: str
    reads: tuple[Topic, ...]
    writes: tuple[Topic, ...]
    # Its consumer groups start with this (dispatch has one per jurisdiction: dispatch-330727).
    group_prefix: str
    # Whether it reads as a consumer group (committing offsets; it then also writes dead letters).
    group: bool = True


# The console's live queue: every process reads from the end without a group and commits nothing.
GROUPLESS = ("console",)


def service_topics(service: str) -> ServiceTopics:
    """The topics a service (or OPERATOR) reads and writes, from the registry's readers and writers.
    The operator replays dead letters to the topic they came from, so it writes every topic."""
    if service not in (*SERVICES, OPERATOR):
        raise ValueError(f"unknown service {service!r}; known: {', '.join((*SERVICES, OPERATOR))}")
    writes = ALL_TOPICS if service == OPERATOR else tuple(t for t in ALL_TOPICS if service in t.writers)
    group = "gridlink-dead-letter-replay" if service == OPERATOR else service
    reads = tuple(t for t in ALL_TOPICS if service in t.readers)
    return ServiceTopics(
        principal=kafka_principal(service),
        reads=reads,
        writes=writes,
        group_prefix=group,
        group=bool(reads) and service not in GROUPLESS,
    )


def kafka_acls(service: str, *, topic_prefix: str = "", create_topics: bool = True) -> list[dict[str, Any]]:
    """The service's Kafka ACLs, in the shape of a Strimzi KafkaUser's `spec.authorization.acls`:
    Read on what it reads (and its consumer groups), Write on what it writes, and Describe on every
    registry topic (each service checks at start-up that they exist); Create too where services
    create missing topics themselves (`kafka_create_topics`; in a county's cluster the topics are
    KafkaTopic resources and nobody else may create one)."""
    allowed = service_topics(service)
    acls: list[dict[str, Any]] = []

    def topic_acl(topic: Topic, operations: list[str]) -> None:
        resource = {"type": "topic", "name": f"{topic_prefix}{topic.name}", "patternType": "literal"}
        acls.append({"resource": resource, "operations": operations})

    for topic in ALL_TOPICS:
        operations = ["Describe"] + ["Create"] * create_topics
        operations += ["Read"] if topic in allowed.reads else []
        operations += ["Write"] if topic in allowed.writes else []
        topic_acl(topic, operations)
    if allowed.group:
        group = {"type": "group", "name": f"{topic_prefix}{allowed.group_prefix}", "patternType": "prefix"}
        acls.append({"resource": group, "operations": ["Read", "Describe"]})
    return acls


class UndeclaredTopic(RuntimeError):
    """A service publishing on a topic the registry does not let it write."""


def check_produces(service: str, topic: Topic) -> None:
    """Refuse an event a known service may not publish (its cluster user could not write it)."""
    if service in SERVICES and service not in topic.writers:
        raise UndeclaredTopic(
            f"{service} publishes on {topic.name}, whose writers in shared/topics.py do not include it: "
            "declare it there and regenerate the cluster's users (python -m devtools.deploy_gen kafka)"
        )


def topic_config(topic: Topic, settings: ServiceSettings) -> dict[str, str]:
    """The broker-side configuration of a registry topic."""
    return {
        "retention.ms": str(topic.retention_ms),
        "cleanup.policy": topic.cleanup_policy,
        "min.insync.replicas": str(settings.kafka_min_insync_replicas),
    }


def topic_for(event_type: str) -> Topic:
    """The topic an event type is published on."""
    return _TOPIC_OF_EVENT[event_type]


async def ensure_topics(settings: ServiceSettings, *, attempts: int = 30) -> None:
    """Create every registry topic that does not exist yet (idempotent; waits for the broker)."""
    for attempt in range(1, attempts + 1):
        admin = AIOKafkaAdminClient(**settings.kafka_client_options())
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
