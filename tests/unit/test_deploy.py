"""The Kubernetes manifests and the Grafana dashboard agree with the code they deploy and watch."""

import importlib
import json
import re

import yaml
from prometheus_client import REGISTRY

from shared.settings import PROJECT_ROOT
from tests.support import SETTINGS_CLASSES

DEPLOY = PROJECT_ROOT / "deploy"
SERVICES = ("intake", "dispatch", "sla", "notify", "media", "console")


def deployments() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d and d["kind"] == "Deployment"]
    return docs


def test_every_service_is_deployed_with_probes_on_real_endpoints():
    seen = set()
    for deployment in deployments():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        module = re.fullmatch(r"services\.(\w+)\.app:create_app", container["command"][1]).group(1)
        app = importlib.import_module(f"services.{module}.app").create_app()
        paths = {getattr(route, "path", None) for route in app.routes}  # health routes sit on the app itself
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" in paths
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz" in paths
        assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"] in paths
        seen.add(module)
    assert seen == set(SERVICES)


def test_kustomization_lists_every_manifest_it_needs():
    listed = set(yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml", "secrets.example.yaml"}
    assert listed == on_disk


def test_dashboard_queries_only_metrics_the_services_export():
    for service in SERVICES:
        importlib.import_module(f"services.{service}.app")
    exported = {
        name for collector in list(REGISTRY._collector_to_names) for name in REGISTRY._collector_to_names[collector]
    }
    dashboard = json.loads((DEPLOY / "grafana" / "gridlink-overview.json").read_text(encoding="utf-8"))
    used = {
        m for panel in dashboard["panels"] for t in panel["targets"] for m in re.findall(r"gridlink_\w+", t["expr"])
    }
    assert used and used <= exported, used - exported


def test_every_variable_the_manifests_set_is_a_setting_of_a_service_that_receives_it():
    """Each service reads only its own settings (services/<name>/settings.py) and ignores other
    GRIDLINK_* variables, so a misspelt or misplaced one would be silently without effect."""
    sources = {}  # ConfigMap or Secret name → the variables it sets
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc["kind"] in ("ConfigMap", "Secret"):
                sources[doc["metadata"]["name"]] = set(doc.get("data") or doc.get("stringData"))
    readers = {variable: set() for variables in sources.values() for variable in variables}
    for deployment in deployments():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        service = re.fullmatch(r"services\.(\w+)\.app:create_app", container["command"][1]).group(1)
        fields = {f"GRIDLINK_{name.upper()}" for name in SETTINGS_CLASSES[service].model_fields}
        own = {env["name"] for env in container.get("env", [])}
        assert own <= fields, (deployment["metadata"]["name"], own - fields)
        for source in container["envFrom"]:
            ref = source.get("configMapRef") or source.get("secretRef")
            for variable in sources[ref["name"]] & fields:
                readers[variable].add(service)
        for env in container.get("env", []):
            if "valueFrom" in env:
                readers[env["valueFrom"]["secretKeyRef"]["key"]].add(service)
    assert all(readers.values()), [variable for variable, services in readers.items() if not services]


def test_each_pod_gets_exactly_the_secrets_its_settings_read():
    """No pod holds another service's keys: secrets are mapped one by one, never the whole Secret."""
    [secret] = [
        d for d in yaml.safe_load_all((DEPLOY / "k8s" / "secrets.example.yaml").read_text(encoding="utf-8")) if d
    ]
    for deployment in deployments():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert all("secretRef" not in source for source in container["envFrom"]), deployment["metadata"]["name"]
        service = re.fullmatch(r"services\.(\w+)\.app:create_app", container["command"][1]).group(1)
        fields = {f"GRIDLINK_{name.upper()}" for name in SETTINGS_CLASSES[service].model_fields}
        mapped = {
            env["name"]: env["valueFrom"]["secretKeyRef"]["key"] for env in container["env"] if "valueFrom" in env
        }
        assert all(name == key for name, key in mapped.items())
        assert set(mapped) == set(secret["stringData"]) & fields, deployment["metadata"]["name"]
