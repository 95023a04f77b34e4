"""Each service has its own settings class; a setting two services must agree on is declared once,
in shared/settings.py, and inherited by exactly the services that must agree on it."""

import importlib
import json
from itertools import combinations
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from services.dispatch.settings import DispatchSettings
from services.notify.settings import NotifySettings
from services.sla.settings import SlaSettings
from shared.settings import (
    PROJECT_ROOT,
    CountyMapFile,
    DevTokenIssuer,
    ImageMaxBytes,
    IncomingPhotosBucket,
    ObjectStoreServer,
    PersonalDataRetention,
    PhoneEncryptionKey,
    ResponsibilityListFile,
    ServiceSettings,
    SlaPolicyFile,
)
from tests.support import SETTINGS_CLASSES

# Who must agree on what. Adding a service to an agreement (or a new agreement) is a reviewed
# change here, as it is in the class list of services/<name>/settings.py.
AGREEMENTS = {
    PhoneEncryptionKey: {"intake", "notify"},  # intake encrypts reporters' phones, notify decrypts them
    # sla enforces the deadlines, notify quotes them, dispatch tells staff asking 查 from WeCom
    SlaPolicyFile: {"sla", "notify", "dispatch"},
    # intake classifies into its categories, dispatch routes by them, the console and sla's reports name them
    ResponsibilityListFile: {"intake", "dispatch", "console", "sla"},
    # intake parks report photos, notify the photos staff send the AI bot; media takes them in
    IncomingPhotosBucket: {"intake", "notify", "media"},
    ImageMaxBytes: {"intake", "notify", "media"},  # intake and notify refuse photos media would refuse
    # intake places reports on it, dispatch seeds its divisions from it, the console names them,
    # notify finds each grid's worker on it, sla's reports name divisions by it
    CountyMapFile: {"intake", "dispatch", "console", "notify", "sla"},
    # photos in (intake, notify: staff's 办结 photos), evidence kept: no other service holds the S3 keys
    ObjectStoreServer: {"intake", "notify", "media"},
    DevTokenIssuer: {"dispatch", "console"},  # dispatch issues development tokens, the console asks for them
    PersonalDataRetention: {"intake", "notify"},  # both hold reporters' personal data and forget it alike
}

# A value of each field type that no default has, to see both services read the same variable.
SAMPLE = {
    str: "agreed-value",
    int: "12345",
    Path: "/srv/gridlink/agreed.yaml",
    bool: "True",
    float: "12.5",
    dict[str, str]: '{"k0": "agreed-value"}',
}


def declared_by(cls: type, field: str) -> type:
    """The class in cls's ancestry whose body declares the field."""
    return next(k for k in cls.__mro__ if field in vars(k).get("__annotations__", {}))


def test_each_agreement_is_inherited_by_exactly_the_services_that_must_agree():
    for agreement, services in AGREEMENTS.items():
        assert {s for s, cls in SETTINGS_CLASSES.items() if issubclass(cls, agreement)} == services, agreement


def test_a_setting_two_services_have_is_declared_once_in_shared():
    for (a, cls_a), (b, cls_b) in combinations(SETTINGS_CLASSES.items(), 2):
        for field in set(cls_a.model_fields) & set(cls_b.model_fields):
            owner = declared_by(cls_a, field)
            assert owner is declared_by(cls_b, field), (a, b, field)
            assert owner is ServiceSettings or owner in AGREEMENTS, (a, b, field, owner)


def test_services_that_agree_read_the_same_variable(monkeypatch):
    for agreement, services in AGREEMENTS.items():
        for field, info in agreement.model_fields.items():
            monkeypatch.setenv(f"GRIDLINK_{field.upper()}", SAMPLE[info.annotation])
            values = {service: getattr(SETTINGS_CLASSES[service](), field) for service in services}
            read = {json.dumps(v) if isinstance(v, dict) else str(v) for v in values.values()}
            assert read == {SAMPLE[info.annotation]}, field


def test_every_service_sees_only_its_own_options():
    # A few options of one service each, and that the others do not carry them.
    owners = {
        "phone_hash_key": "intake",
        "dispatch_centres": "dispatch",
        "sla_fire_batch": "sla",
        "notify_max_attempts": "notify",
        "wecom_base_url": "notify",
        "media_bucket": "media",
        "console_dispatch_url": "console",
    }
    for field, owner in owners.items():
        assert {s for s, cls in SETTINGS_CLASSES.items() if field in cls.model_fields} == {owner}, field


@pytest.mark.parametrize("service", SETTINGS_CLASSES)
def test_create_app_defaults_to_the_services_own_settings(service):
    settings = importlib.import_module(f"services.{service}.app").create_app().state.settings
    assert type(settings) is SETTINGS_CLASSES[service] and settings.service_name == service


def test_consumer_groups_one_per_service_and_one_per_dispatch_jurisdiction():
    assert SlaSettings(service_name="sla", topic_prefix="t.").consumer_group() == "t.sla"
    town = DispatchSettings(service_name="dispatch", topic_prefix="t.", jurisdiction_code="330727101")
    assert town.consumer_group() == "t.dispatch-330727101"


# --- production refuses what no county may run on ---------------------------------------------

SECRETS = {
    service: sorted(
        name
        for name, field in cls.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("secret")
    )
    for service, cls in SETTINGS_CLASSES.items()
}


def strong(name: str) -> str:
    """A value fit for production: 43 characters like WeChat's AES keys, unique per setting."""
    return (name.upper().replace("_", "") * 3)[:43]


@pytest.mark.parametrize("service", sorted(SETTINGS_CLASSES))
def test_production_refuses_every_default_secret_and_names_each(service, monkeypatch):
    monkeypatch.setenv("GRIDLINK_ENV", "production")
    with pytest.raises(ValidationError) as refused:
        SETTINGS_CLASSES[service]()
    for name in SECRETS[service]:
        assert f"GRIDLINK_{name.upper()}" in str(refused.value)


@pytest.mark.parametrize("service", sorted(SETTINGS_CLASSES))
def test_production_starts_with_real_secrets(service, monkeypatch):
    monkeypatch.setenv("GRIDLINK_ENV", "production")
    for name in SECRETS[service]:
        value = strong(name)
        monkeypatch.setenv(f"GRIDLINK_{name.upper()}", json.dumps([value]) if name.endswith("_keys") else value)
    monkeypatch.setenv("GRIDLINK_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("GRIDLINK_KAFKA_SASL_PASSWORD", strong("kafka_sasl_password"))
    settings = SETTINGS_CLASSES[service]()
    assert settings.env == "production" and settings.unsafe_settings() == []


def test_production_refuses_sample_keys_short_secrets_and_the_development_issuer(monkeypatch):
    monkeypatch.setenv("GRIDLINK_ENV", "production")
    for name in SECRETS["notify"]:
        monkeypatch.setenv(f"GRIDLINK_{name.upper()}", strong(name))
    # The official account's sample key, given to the WeCom setting (whose own default is WeCom's sample).
    monkeypatch.setenv("GRIDLINK_WECOM_CALLBACK_AES_KEY", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
    monkeypatch.setenv("GRIDLINK_AUTH_JWT_SECRET", "short")
    with pytest.raises(ValidationError) as refused:
        NotifySettings()
    assert "GRIDLINK_WECOM_CALLBACK_AES_KEY is a key published" in str(refused.value)
    assert "GRIDLINK_AUTH_JWT_SECRET is shorter than 32 bytes" in str(refused.value)
    for name in SECRETS["dispatch"]:
        monkeypatch.setenv(f"GRIDLINK_{name.upper()}", strong(name))
    monkeypatch.setenv("GRIDLINK_AUTH_DEV_ISSUER", "true")
    with pytest.raises(ValidationError, match="GRIDLINK_AUTH_DEV_ISSUER"):
        DispatchSettings()
    assert DispatchSettings(env="development").auth_dev_issuer  # make up and tests keep it


def test_every_secret_is_in_the_example_secret_and_the_cluster_runs_in_production():
    base = PROJECT_ROOT / "deploy" / "k8s" / "base"
    example = yaml.safe_load((base / "secrets.example.yaml").read_text(encoding="utf-8"))
    listed = set(example["stringData"])
    assert {f"GRIDLINK_{name.upper()}" for names in SECRETS.values() for name in names} <= listed
    config = yaml.safe_load((base / "config.yaml").read_text(encoding="utf-8"))
    assert config["data"]["GRIDLINK_ENV"] == "production"
