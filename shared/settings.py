"""Settings: what every service needs, and what two services must agree on, declared once here;
each service's own options live in `services/<name>/settings.py` on top of these.

Values come from GRIDLINK_* environment variables (the field name in capitals). Settings are built
once (in `create_app` or a test) and passed in, never read at import time, so a test can point a
fresh app at fresh servers.
"""

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.phones import LEGACY_KEY_ID, PhoneKeys

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Keys published in WeChat's and WeCom's own documentation samples: anyone can forge with them.
PUBLISHED_SAMPLE_KEYS = frozenset(
    {"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
)
MIN_SECRET_BYTES = 32
# The development key pair of the console's WeCom sessions (its private half is the default of
# GRIDLINK_CONSOLE_WECOM_SIGNING_KEY): published here, so production refuses both.
DEV_WECOM_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9Tfn+Q7/nakU1Wse1wb23p4Z/uNo
gr1y44pFXsNVYMtYY7wNnaHBWxjp7xgDyGJZaqd069gYi4GYA3gNwKJFag==
-----END PUBLIC KEY-----
"""


def secret(default: Any, *, min_bytes: int = MIN_SECRET_BYTES) -> Any:
    """A setting that is a secret: in production it may be neither its default, nor a published
    sample, nor shorter than `min_bytes` (WeCom and WeChat callback tokens are at most 32 characters,
    so theirs is the platform's own limit)."""
    return Field(default=default, json_schema_extra={"secret": True, "min_bytes": min_bytes})


class UnsafeProductionSettings(ValueError):
    """GRIDLINK_ENV=production with a setting no county may run on."""


class ServiceSettings(BaseSettings):
    """What the shared modules (db, kafka, topics, objects, service, web) read, for any service."""

    model_config = SettingsConfigDict(env_prefix="GRIDLINK_", extra="ignore")

    # development (the default: make up, tests) or production, where unsafe settings stop the start.
    env: Literal["development", "production"] = "development"
    service_name: str = "gridlink"
    # Jurisdiction this instance serves (6-digit county code of the demo county by default).
    jurisdiction_code: str = "330727"
    jurisdiction_level: str = "county"

    database_url: str = "postgresql://gridlink@127.0.0.1:15432/gridlink"
    # The Postgres schema this instance owns; empty: the service's name. Dispatch instances sharing
    # one database each set their own (dispatch_330727101), so their cases, outbox and
    # processed-events tables never meet.
    database_schema: str = ""
    # Development: each service applies its migrations as it starts. Production: an init container
    # applies them with a role that may change the schema (`python -m shared.migrate <service>`),
    # and the service, whose role may not, only checks that none is pending.
    database_migrate_on_start: bool = True
    db_pool_min: int = 1
    db_pool_max: int = 5

    kafka_bootstrap: str = "127.0.0.1:19092"
    # How services talk to Kafka. PLAINTEXT is for the local broker only (make up, tests); production
    # requires SASL_SSL with SCRAM-SHA-512, each service as its own principal, whose ACLs
    # (shared.topics.service_topics) let it read and write only its own topics.
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512"] = "SCRAM-SHA-512"
    # The service's principal; empty means gridlink-<service_name> (shared.settings.kafka_principal).
    kafka_sasl_username: str = ""
    # The principal's SCRAM password (a Strimzi KafkaUser's generated `password`).
    kafka_sasl_password: str = ""
    # PEM file of the CA that signed the brokers' certificates (Strimzi's cluster CA `ca.crt`);
    # empty: the system's trusted CAs.
    kafka_ssl_cafile: Path | None = None
    # Prepended to every topic name and consumer group: lets tests (and tenants) share one cluster.
    topic_prefix: str = ""
    # Development: services create missing topics as they start. Production: topics are cluster
    # resources (deploy/k8s/kafka, Strimzi KafkaTopic) and the services' users may not create them.
    kafka_create_topics: bool = True
    # Replication of the topics created from the registry (here or as KafkaTopic resources):
    # 3 and 2 on a county's three brokers, so one broker may be down without losing a write.
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_min_insync_replicas: int = Field(default=1, ge=1)
    consumer_max_attempts: int = Field(default=3, ge=1)
    consumer_retry_backoff_s: float = 0.2
    # A transient failure is retried for as long as it lasts, waiting at most this long between tries.
    consumer_retry_max_backoff_s: float = 30.0
    # How often the background loops that poll their own tables (notify's queue, media's work) look.
    outbox_poll_interval_s: float = 0.1
    # The outbox relay is woken by NOTIFY when events commit; it polls this rarely only as a fallback.
    outbox_fallback_poll_s: float = 1.0

    # The largest request body a service reads (JSON, forms, callbacks); services that take files
    # (intake's photos, media's uploads) allow what their file limits need.
    http_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    # Logs: text for a terminal (make up, tests); json in a cluster, one object a line (shared/logs.py).
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"

    # Tracing (OpenTelemetry, shared/tracing.py), off by default: the OTLP/HTTP endpoint spans are sent
    # to (a collector's http://otel-collector.monitoring:4318/v1/traces); empty: no spans, no cost.
    tracing_otlp_endpoint: str = ""
    # The share of traces kept (a trace started elsewhere keeps its caller's decision).
    tracing_sample_ratio: float = Field(default=1.0, ge=0, le=1)

    # Origins whose pages may call this service from a browser (CORS); none by default.
    cors_origins: list[str] = []

    # HS256 key of the development issuer's tokens (GRIDLINK_ENV=development only; production
    # refuses them whatever this is): every service checks them with it, so all are given the same.
    auth_jwt_secret: str = secret("local-development-only")

    # OIDC agreement: every service checks staff tokens from the same OpenID Connect provider (the
    # console also logs staff in there). Its issuer URL (empty: none, so only development tokens);
    # the audience its access tokens name for the GridLink services; its keys (JWKS) are found
    # through {issuer}/.well-known/openid-configuration unless auth_oidc_jwks_url names them.
    auth_oidc_issuer: str = ""
    auth_oidc_audience: str = "urn:gridlink:services"
    auth_oidc_jwks_url: str = ""
    # WeCom sessions agreement: the console signs (ES256) a short-lived token for a person who opened
    # the mobile pages in WeCom (OAuth2 网页授权) and whom dispatch's directory knows; every service
    # checks it with this public key (PEM), for `wecom:<userid>` subjects only (shared.auth's
    # WecomVerifier says why). Not secret, but the default's private key is in this repository, so
    # production refuses it: give the public half of GRIDLINK_CONSOLE_WECOM_SIGNING_KEY. Empty: off.
    auth_wecom_public_key: str = secret(DEV_WECOM_PUBLIC_KEY, min_bytes=0)

    def unsafe_settings(self) -> list[str]:
        """Why each secret setting is unsafe to run a county on, one line per setting."""
        problems = []
        for name, field in type(self).model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            if not extra.get("secret"):
                continue
            min_bytes = extra.get("min_bytes")
            limit = min_bytes if isinstance(min_bytes, int) else MIN_SECRET_BYTES
            defaults = field.default if isinstance(field.default, list) else [field.default]
            value = getattr(self, name)
            env_name = f"GRIDLINK_{name.upper()}"
            for item in value if isinstance(value, list) else [value]:
                if item in defaults:
                    problems.append(f"{env_name} is the development default")
                elif item in PUBLISHED_SAMPLE_KEYS:
                    problems.append(f"{env_name} is a key published in WeChat's documentation")
                elif len(str(item).encode()) < limit:
                    problems.append(f"{env_name} is shorter than {limit} bytes")
        if getattr(self, "auth_dev_issuer", False):
            problems.append("GRIDLINK_AUTH_DEV_ISSUER is on: anyone could take any role")
        for key_id, old_key in getattr(self, "phone_encryption_old_keys", {}).items():
            if len(old_key.encode()) < MIN_SECRET_BYTES or old_key == "local-development-only":
                problems.append(f"GRIDLINK_PHONE_ENCRYPTION_OLD_KEYS[{key_id}] is not a real key")
        if self.kafka_security_protocol != "SASL_SSL":
            problems.append(
                "GRIDLINK_KAFKA_SECURITY_PROTOCOL is PLAINTEXT: anyone on the network could read reports and "
                "publish events; use SASL_SSL"
            )
        elif len(self.kafka_sasl_password.encode()) < MIN_SECRET_BYTES:
            problems.append(
                f"GRIDLINK_KAFKA_SASL_PASSWORD is shorter than {MIN_SECRET_BYTES} bytes (or unset): give the "
                "service's own KafkaUser password"
            )
        return problems

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> "ServiceSettings":
        if self.env == "production":
            problems = self.unsafe_settings()
            if problems:
                raise UnsafeProductionSettings(
                    "GRIDLINK_ENV=production refuses to start; set real secrets in the gridlink-secrets "
                    "Secret (deploy/k8s/base/secrets.example.yaml): " + "; ".join(problems)
                )
        return self

    def kafka_client_options(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client of this service is built with (producer,
        consumers, admin): where the brokers are, who the service is, and how it proves it."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.kafka_bootstrap,
            "client_id": self.service_name,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol == "SASL_SSL":
            options |= {
                "sasl_mechanism": self.kafka_sasl_mechanism,
                "sasl_plain_username": self.kafka_sasl_username or kafka_principal(self.service_name),
                "sasl_plain_password": self.kafka_sasl_password,
                "ssl_context": kafka_ssl_context(self.kafka_ssl_cafile),
            }
        return options

    def topic(self, name: str) -> str:
        """The physical topic name for a registry topic name."""
        return f"{self.topic_prefix}{name}"

    def consumer_group(self) -> str:
        """Each service consumes as its own group (dispatch, one per jurisdiction, overrides this)."""
        return f"{self.topic_prefix}{self.service_name}"


def kafka_principal(service: str) -> str:
    """The Kafka user (SCRAM principal, Strimzi KafkaUser name) a service connects as."""
    return f"gridlink-{service}"


def kafka_ssl_context(cafile: Path | None) -> ssl.SSLContext:
    """TLS to the brokers, verifying their certificates and host names against `cafile` (or the
    system's CAs)."""
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# Agreements: a setting two services must agree on is declared once, in one of these, and each
# service that needs it inherits the class, so both read the same GRIDLINK_* variable with the
# same default. Each says who must agree; tests/unit/test_settings.py checks exactly those inherit it.


class PhoneEncryptionKey(BaseModel):
    """Intake encrypts reporters' phones with this key, notify decrypts them to send SMS."""

    # Key for encrypting reporter phones (AES-GCM); keep it apart from phone_hash_key in production.
    phone_encryption_key: str = secret("local-development-only")
    # Its id, written into every ciphertext (shared.phones). Rotating: give the new key a new id,
    # move the old one to phone_encryption_old_keys, re-encrypt (python -m services.intake.privacy
    # rekey, python -m services.notify.privacy rekey), then drop the old key.
    phone_encryption_key_id: str = Field(default=LEGACY_KEY_ID, pattern=r"^[A-Za-z0-9_-]{1,16}$")
    # Retired keys by id ({"k1": "…"}, JSON): still decrypted, never used to encrypt.
    phone_encryption_old_keys: dict[str, str] = {}

    def phone_keys(self) -> PhoneKeys:
        return PhoneKeys(
            current_id=self.phone_encryption_key_id,
            keys={**self.phone_encryption_old_keys, self.phone_encryption_key_id: self.phone_encryption_key},
        )


class PersonalDataRetention(BaseModel):
    """How long reporters' personal data is kept (PIPL), per kind, counted from the report: intake
    and notify each anonymise what they hold once it is over (0 keeps that kind)."""

    # Phones: the keyed hash, the masked and the encrypted number, 我要查询 codes and attempts.
    retention_days_phones: int = Field(default=365, ge=0)
    # Channel identities: official-account openids, WeCom user ids, Open311 account ids.
    retention_days_openids: int = Field(default=365, ge=0)
    # Where the reporter stood: exact points are coarsened to about 100 m, the input as sent dropped.
    retention_days_locations: int = Field(default=365, ge=0)
    # How often each service looks for personal data past its retention.
    retention_interval_s: float = Field(default=3600.0, gt=0)


class SlaPolicyFile(BaseModel):
    """The SLA policy sla enforces and notify quotes (deadlines in 派单 messages)."""

    sla_policy_path: Path = PROJECT_ROOT / "shared" / "data" / "sla_policies.yaml"


class ResponsibilityListFile(BaseModel):
    """The taxonomy and responsibility list: intake classifies into its categories, dispatch routes by
    them, the console names categories and departments by them."""

    responsibility_list_path: Path = PROJECT_ROOT / "shared" / "data" / "taxonomy.yaml"


class ObjectStoreServer(BaseModel):
    """The S3 server (MinIO locally) intake parks report photos on (notify too: the photos staff
        send the AI bot with 办结) and media keeps evidence on; no other service holds its keys. Which
    bucket is each service's own business."""

    minio_endpoint: str = "127.0.0.1:19000"
    minio_access_key: str = "gridlink"
    minio_secret_key: str = secret("gridlink-secret")
    minio_secure: bool = False


class IncomingPhotosBucket(BaseModel):
    """Photos sent with a report (multipart), and those staff send the AI bot with 办结: intake (or
    notify) parks them here until media has taken them in."""

    intake_incoming_bucket: str = "gridlink-incoming"


class ImageMaxBytes(BaseModel):
    """The largest photo: intake refuses bigger ones sent with a report, media refuses bigger images."""

    media_image_max_bytes: int = 20 * 1024 * 1024


class CountyMapFile(BaseModel):
    """The county map (divisions, grids, grid workers, residents' groups): intake places reports on
    it, the console names divisions, notify tells each grid's worker of new reports in it. Written
    by the county import (services/dispatch/county_import.py, `make import-county`), which loads
    dispatch's division tables from the same files in the same step."""

    county_map_path: Path = PROJECT_ROOT / "shared" / "data" / "county.geojson"


class DevTokenIssuer(BaseModel):
    """Local development only: dispatch serves the development token issuer, and the console offers
    its demo people (who get their tokens from it) — both on or both off."""

    auth_dev_issuer: bool = False
