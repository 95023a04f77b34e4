"""The topic registry: every event type on one topic, and each service's access declared."""

import pytest

from shared.topics import (
    ALL_TOPICS,
    CASES,
    REPORTS,
    SERVICES,
    SLA,
    UndeclaredTopic,
    check_produces,
    service_topics,
    topic_config,
)
from tests.support import SETTINGS_CLASSES


def test_a_service_may_publish_only_on_the_topics_it_declares():
    check_produces("dispatch", CASES)
    with pytest.raises(UndeclaredTopic, match="dispatch publishes on gridlink.sla.*devtools.deploy_gen kafka"):
        check_produces("dispatch", SLA)
    check_produces("a-test-tool", REPORTS)  # not a deployed service: no cluster user to keep in step


def test_every_service_is_in_the_registry_and_uses_registry_topics():
    assert set(SERVICES) == set(SETTINGS_CLASSES)
    for service in SERVICES:
        access = service_topics(service)
        assert set(access.reads) | set(access.writes) <= set(ALL_TOPICS)


def test_topics_are_created_with_the_configured_replication():
    settings = SETTINGS_CLASSES["sla"](kafka_replication_factor=3, kafka_min_insync_replicas=2)
    assert topic_config(CASES, settings) == {
        "retention.ms": "-1",
        "cleanup.policy": "delete",
        "min.insync.replicas": "2",
    }
