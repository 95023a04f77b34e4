"""Kafka in production: SASL_SSL with SCRAM-SHA-512, each service as its own principal, and ACLs
that let it read and write only the topics the registry gives it."""

import ssl

import pytest
from pydantic import ValidationError

from shared.settings import ServiceSettings, kafka_principal
from shared.topics import (
    ALL_TOPICS,
    CASES,
    DEAD_LETTERS,
    DIRECTORY,
    MESSAGES,
    OPERATOR,
    REPORTER_CONTACTS,
    REPORTS,
    SERVICES,
    STAFF_ANSWERS,
    STAFF_COMMANDS,
    kafka_acls,
    service_topics,
)
from tests.support import SETTINGS_CLASSES

PASSWORD = "p" * 32


def test_local_development_connects_in_plaintext_without_credentials():
    options = ServiceSettings(service_name="notify").kafka_client_options()
    assert options == {"bootstrap_servers": "127.0.0.1:19092", "client_id": "notify", "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_sends_the_services_principal_over_verified_tls(tmp_path):
    settings = ServiceSettings(service_name="notify", kafka_security_protocol="SASL_SSL", kafka_sasl_password=PASSWORD)
    options = settings.kafka_client_options()
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("gridlink-notify", PASSWORD)
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    # A named principal wins over the derived one.
    named = settings.model_copy(update={"kafka_sasl_username": "county-330727-notify"})
    assert named.kafka_client_options()["sasl_plain_username"] == "county-330727-notify"


def test_the_cluster_ca_file_is_what_the_brokers_are_verified_against(tmp_path):
    missing = tmp_path / "ca.crt"
    settings = ServiceSettings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_password=PASSWORD, kafka_ssl_cafile=missing
    )
    with pytest.raises(FileNotFoundError):  # a wrong path fails at start-up, not at the first message
        settings.kafka_client_options()


async def test_every_kafka_client_is_built_with_the_security_options():
    """aiokafka takes the options as they are (a misspelt keyword would raise here)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    from shared.kafka import create_producer

    settings = ServiceSettings(service_name="intake", kafka_security_protocol="SASL_SSL", kafka_sasl_password=PASSWORD)
    producer = create_producer(settings)
    assert producer.client._security_protocol == "SASL_SSL"
    assert producer.client._sasl_mechanism == "SCRAM-SHA-512"
    assert producer.client._sasl_plain_username == "gridlink-intake"
    consumer = AIOKafkaConsumer("t", **settings.kafka_client_options(), group_id="intake")
    assert consumer._client._sasl_plain_password == PASSWORD
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    assert admin._client._ssl_context is not None
    await producer.stop()
    await consumer.stop()
    await admin.close()


@pytest.mark.parametrize("service", sorted(SETTINGS_CLASSES))
def test_production_refuses_plaintext_kafka_and_a_missing_password(service, monkeypatch):
    monkeypatch.setenv("GRIDLINK_ENV", "production")
    with pytest.raises(ValidationError, match="GRIDLINK_KAFKA_SECURITY_PROTOCOL is PLAINTEXT"):
        SETTINGS_CLASSES[service]()
    monkeypatch.setenv("GRIDLINK_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError, match="GRIDLINK_KAFKA_SASL_PASSWORD is shorter than 32 bytes"):
        SETTINGS_CLASSES[service]()


def test_each_service_reads_and_writes_only_its_own_topics():
    reads = {s: {t.name for t in service_topics(s).reads} for s in (*SERVICES, OPERATOR)}
    writes = {s: {t.name for t in service_topics(s).writes} for s in (*SERVICES, OPERATOR)}
    # Reporters' contacts and query codes: intake writes them, notify alone reads them.
    assert {s for s in reads if REPORTER_CONTACTS.name in reads[s]} == {"notify"}
    assert {s for s in writes if s != OPERATOR and REPORTER_CONTACTS.name in writes[s]} == {"intake"}
    assert {s for s in reads if MESSAGES.name in reads[s]} == {"intake"}
    assert {s for s in reads if DEAD_LETTERS.name in reads[s]} == {OPERATOR}
    # sla's analytics consumer (三率) reads reports and missed deadlines besides the cases.
    assert writes["sla"] == {"gridlink.sla", DEAD_LETTERS.name} and reads["sla"] == {
        CASES.name,
        REPORTS.name,
        "gridlink.sla",
    }
    assert reads["console"] == {CASES.name, "gridlink.sla"} and writes["console"] == set()
    assert writes[OPERATOR] == {t.name for t in ALL_TOPICS}  # dead letters go back where they came from
    assert service_topics("dispatch").principal == kafka_principal("dispatch") == "gridlink-dispatch"
    with pytest.raises(ValueError, match="unknown service"):
        service_topics("payroll")


def test_every_event_type_is_written_by_someone_and_private_topics_say_so():
    for topic in ALL_TOPICS:
        assert topic.writers, topic.name
    assert {t.name for t in ALL_TOPICS if t.private} == {
        REPORTER_CONTACTS.name,
        MESSAGES.name,
        DIRECTORY.name,  # staff and their WeCom accounts, for notify alone
        DEAD_LETTERS.name,
        STAFF_COMMANDS.name,  # they name WeCom users
        STAFF_ANSWERS.name,
    }
    assert not {"query.code_requested", "reporter.verified", "reporter.contact_given"} & set(REPORTS.event_types)


def test_acls_grant_read_write_and_groups_from_the_registry():
    acls = kafka_acls("notify", topic_prefix="t1-")
    by_topic = {a["resource"]["name"]: a["operations"] for a in acls if a["resource"]["type"] == "topic"}
    assert set(by_topic) == {f"t1-{t.name}" for t in ALL_TOPICS}
    assert by_topic["t1-gridlink.reporter-contacts"] == ["Describe", "Create", "Read"]
    assert by_topic["t1-gridlink.notifications"] == ["Describe", "Create", "Write"]
    assert by_topic["t1-gridlink.messages"] == ["Describe", "Create", "Write"]
    assert "Read" not in by_topic["t1-gridlink.dead-letters"]
    [group] = [a for a in acls if a["resource"]["type"] == "group"]
    assert group == {
        "resource": {"type": "group", "name": "t1-notify", "patternType": "prefix"},
        "operations": ["Read", "Describe"],
    }
    media = {a["resource"]["name"]: a["operations"] for a in kafka_acls("media") if a["resource"]["type"] == "topic"}
    assert media["gridlink.reporter-contacts"] == ["Describe", "Create"]  # sees it exists, reads nothing


def test_a_service_consumes_exactly_the_topics_its_acls_let_it_read():
    """The apps subscribe to service_topics(name).reads: what the ACLs allow is what they use."""
    from pathlib import Path

    for service in ("intake", "dispatch", "sla", "notify", "media"):
        source = (Path("services") / service / "app.py").read_text(encoding="utf-8")
        assert f'topics=service_topics("{service}").reads' in source, service
