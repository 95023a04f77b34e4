"""The topic registry: every event type on one topic, and each service's access declared."""

import pytest

from shared.topics import ALL_TOPICS, CASES, REPORTS, SERVICE_TOPICS, SLA, UndeclaredTopic, check_produces, topic_config
from tests.support import SETTINGS_CLASSES


def test_a_service_may_publish_only_on_the_topics_it_declares():
    check_produces("dispatch", CASES)
    with pytest.raises(UndeclaredTopic, match="dispatch publishes on gridlink.sla.*devtools.deploy_gen kafka"):
        check_produces("dispatch", SLA)
    check_produces("a-test-tool", REPORTS)  # not a deployed service: no cluster user to keep in step


def test_every_service_is_in_the_registry_and_consumes_registry_topics():
    assert set(SERVICE_TOPICS) == set(SETTINGS_CLASSES)
    for access in SERVICE_TOPICS.values():
        assert set(access.produces) | set(access.consumes) <= set(ALL_TOPICS)


def test_topics_are_created_with_the_configured_replication():
    settings = SETTINGS_CLASSES["sla"](kafka_replication_factor=3, kafka_min_insync_replicas=2)
    assert topic_config(CASES, settings) == {
        "retention.ms": "-1",
        "cleanup.policy": "delete",
        "min.insync.replicas": "2",
    }


def test_kafka_clients_sign_in_as_the_service_user_over_tls_in_the_cluster(tmp_path):
    local = SETTINGS_CLASSES["sla"]().kafka_options()
    assert local == {"bootstrap_servers": "127.0.0.1:19092", "security_protocol": "PLAINTEXT"}
    cluster = SETTINGS_CLASSES["sla"](
        kafka_security_protocol="SASL_SSL", kafka_username="gridlink-sla", kafka_password="pw"
    ).kafka_options()
    assert (cluster["sasl_mechanism"], cluster["sasl_plain_username"], cluster["sasl_plain_password"]) == (
        "SCRAM-SHA-512",
        "gridlink-sla",
        "pw",
    )
    assert cluster["ssl_context"].verify_mode.name == "CERT_REQUIRED"
