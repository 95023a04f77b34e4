"""The Kafka security settings against a real broker: a test-only KRaft node with a SASL_SSL
listener (SCRAM-SHA-512, a self-signed certificate) and Kafka's StandardAuthorizer, each service a
SCRAM user with exactly the ACLs shared.topics.kafka_acls derives from the topic registry.

It runs beside the suite's own PLAINTEXT broker, on free ports in its own directory, and is stopped
(by its process id) when the module is done."""

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from devtools.local_servers import free_port
from shared.events import ReporterContactGiven, new_event
from shared.kafka import create_producer
from shared.settings import PROJECT_ROOT, ServiceSettings, kafka_principal
from shared.topics import REPORTER_CONTACTS, REPORTS, ensure_topics, kafka_acls
from tests.support import eventually

KAFKA_LIBS = Path(os.environ.get("GRIDLINK_HOME", Path.home() / ".cache" / "gridlink")) / (
    f"kafka-{os.environ.get('GRIDLINK_KAFKA_VERSION', '4.1.1')}/libs"
)
PASSWORDS = {service: f"{service}-scram-password-{uuid.uuid4().hex}" for service in ("intake", "notify", "media")}
PREFIX = "scram."

pytestmark = pytest.mark.skipif(not (KAFKA_LIBS / ".complete").exists(), reason="make install caches Kafka's jars")


def _java(*args: str, log: Path) -> None:
    with log.open("ab") as out:
        subprocess.run(["java", "-Xmx256m", "-cp", f"{KAFKA_LIBS}/*", *args], stdout=out, stderr=out, check=True)


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the test broker exited: {log.read_text(errors='replace')[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"the test broker did not listen on {port}")


@pytest.fixture(scope="module")
def secured_kafka(tmp_path_factory):
    """(SASL_SSL bootstrap, the broker certificate as a CA file); ACLs granted per service."""
    home = tmp_path_factory.mktemp("scram-kafka")
    log = home / "kafka.log"
    sasl, internal, controller = free_port(), free_port(), free_port()
    keystore, ca, store_password = home / "broker.p12", home / "ca.pem", uuid.uuid4().hex
    subprocess.run(
        ["keytool", "-genkeypair", "-keystore", str(keystore), "-storetype", "PKCS12", "-storepass", store_password,
         "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048", "-validity", "2", "-dname", "CN=localhost",
         "-ext", "SAN=dns:localhost,ip:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["keytool", "-exportcert", "-rfc", "-keystore", str(keystore), "-storepass", store_password,
         "-alias", "broker", "-file", str(ca)],
        check=True, capture_output=True,
    )  # fmt: skip
    properties = home / "server.properties"
    properties.write_text(
        f"""process.roles=broker,controller
node.id=1
listeners=SASL_SSL://127.0.0.1:{sasl},INTERNAL://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=SASL_SSL://127.0.0.1:{sasl},INTERNAL://127.0.0.1:{internal}
listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:{controller}
log.dirs={home / "data"}
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location={keystore}
ssl.keystore.password={store_password}
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
# The loopback-only PLAINTEXT listeners (the broker's own and the ACL setup) are the superuser.
super.users=User:ANONYMOUS
"""
    )
    users = [f"SCRAM-SHA-512=[name={kafka_principal(s)},password={p}]" for s, p in PASSWORDS.items()]
    scram = [arg for user in users for arg in ("--add-scram", user)]
    _java("kafka.tools.StorageTool", "format", "--standalone", "-t", str(uuid.uuid4()), "-c", str(properties),
          *scram, log=log)  # fmt: skip
    with log.open("ab") as out:
        broker = subprocess.Popen(
            ["java", "-Xms384m", "-Xmx384m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
             f"-Dlog4j2.configurationFile={PROJECT_ROOT / 'deploy' / 'local' / 'kafka-log4j2.properties'}",
             "-cp", f"{KAFKA_LIBS}/*", "kafka.Kafka", str(properties)],
            stdout=out, stderr=out, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        _wait_for_port(sasl, broker, log)
        bindings = [
            f"User:{kafka_principal(service)}|{acl['resource']['type']}|{acl['resource']['name']}|"
            f"{acl['resource']['patternType']}|{operation}"
            for service in PASSWORDS
            for acl in kafka_acls(service, topic_prefix=PREFIX)
            for operation in acl["operations"]
        ]
        _java(str(Path(__file__).parent.parent / "kafka" / "CreateAcls.java"), f"127.0.0.1:{internal}", *bindings,
              log=log)  # fmt: skip
        yield f"127.0.0.1:{sasl}", ca
    finally:
        broker.terminate()
        try:
            broker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()
        shutil.rmtree(home / "data", ignore_errors=True)


def settings_of(service: str, secured_kafka, **overrides) -> ServiceSettings:
    bootstrap, ca = secured_kafka
    return ServiceSettings(
        service_name=service,
        kafka_bootstrap=bootstrap,
        topic_prefix=PREFIX,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_password=PASSWORDS[service],
        kafka_ssl_cafile=ca,
        **overrides,
    )


async def test_services_connect_with_scram_over_tls_and_reporters_contacts_reach_notify_alone(secured_kafka):
    intake, notify = settings_of("intake", secured_kafka), settings_of("notify", secured_kafka)
    await ensure_topics(intake)  # Describe and Create on the registry's topics, through SASL_SSL
    contact = ReporterContactGiven(report_id=uuid.uuid4(), case_id=uuid.uuid4(), openid="o-reporter")
    event = new_event(contact, producer="intake", jurisdiction_code="330727", key=str(contact.case_id))
    producer = create_producer(intake)
    await producer.start()
    try:
        await producer.send_and_wait(intake.topic(REPORTER_CONTACTS.name), event.to_bytes(), key=event.key.encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        notify.topic(REPORTER_CONTACTS.name),
        **notify.kafka_client_options(),
        group_id=notify.consumer_group(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:

        async def received():
            batches = await consumer.getmany(timeout_ms=500)
            return [r.value for records in batches.values() for r in records] or None

        [value] = await eventually(received, timeout=30)
        await consumer.commit()  # the group ACL lets notify keep its place
    finally:
        await consumer.stop()
    assert b"o-reporter" in value


async def test_a_service_is_refused_the_topics_the_registry_does_not_give_it(secured_kafka):
    media = settings_of("media", secured_kafka)
    await ensure_topics(media)
    producer = AIOKafkaProducer(**media.kafka_client_options(), request_timeout_ms=5000)
    await producer.start()
    try:
        # media reads reports but may not write them, nor see the contacts.
        with pytest.raises(KafkaError, match="TopicAuthorizationFailed"):
            await producer.send_and_wait(media.topic(REPORTS.name), b"{}")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        media.topic(REPORTER_CONTACTS.name),
        **media.kafka_client_options(),
        group_id=media.consumer_group(),
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        with pytest.raises(KafkaError, match="TopicAuthorizationFailed"):
            for _ in range(20):
                await consumer.getmany(timeout_ms=500)
    finally:
        await consumer.stop()


async def test_a_wrong_password_or_plaintext_does_not_get_in(secured_kafka):
    right = settings_of("notify", secured_kafka)
    producer = create_producer(right)
    await producer.start()  # the same broker and CA let the right password in
    await producer.stop()
    # aiokafka reports a refused SASL handshake, or bytes that are not TLS, as no usable broker.
    for wrong in (
        right.model_copy(update={"kafka_sasl_password": "x" * 40}),
        right.model_copy(update={"kafka_sasl_username": kafka_principal("media")}),  # notify's password
        right.model_copy(update={"kafka_security_protocol": "PLAINTEXT"}),
    ):
        producer = AIOKafkaProducer(**wrong.kafka_client_options(), request_timeout_ms=3000)
        with pytest.raises(KafkaError, match="Unable to bootstrap"):
            await producer.start()
        await producer.stop()
