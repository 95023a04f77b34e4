"""The Kubernetes manifests, as kustomize builds them for each overlay, are valid against the
Kubernetes API's schemas, meet the restricted Pod Security profile, and agree with the code they
deploy; the files generated from the code (topics and Kafka users, Ingresses, dispatch overlays)
are what the generator makes today; the Grafana dashboard queries what the services export."""

import base64
import functools
import importlib
import json
import re
import subprocess

import kubernetes_validate
import pytest
import yaml
from prometheus_client import REGISTRY

from devtools import deploy_gen
from shared.jurisdictions import load_county
from shared.settings import PROJECT_ROOT
from shared.topics import ALL_TOPICS, OPERATOR, SERVICES, service_topics
from tests.support import SETTINGS_CLASSES

DEPLOY = PROJECT_ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
# The Kubernetes version the manifests are validated against (kubernetes-validate ships its schemas).
KUBERNETES_VERSION = "1.33.0"


@functools.cache
def build(overlay: str) -> list[dict]:
    """`kustomize build` of an overlay: what `kubectl apply -k` would send."""
    kustomize = subprocess.run(
        [str(DEPLOY / "local" / "tools.sh"), "path", "kustomize"], check=True, capture_output=True, text=True
    ).stdout.strip()
    out = subprocess.run(
        [kustomize, "build", str(K8S / "overlays" / overlay)], check=True, capture_output=True, text=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def kinds(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def config_maps(docs: list[dict]) -> dict[str, dict]:
    """Each ConfigMap's settings by its name (a map of files in binaryData has none)."""
    return {d["metadata"]["name"]: d.get("data", {}) for d in kinds(docs, "ConfigMap")}


def all_docs() -> list[dict]:
    return [d for overlay in OVERLAYS for d in build(overlay)]


def deployments() -> list[dict]:
    return kinds(all_docs(), "Deployment")


def service_of(container: dict) -> str:
    return re.fullmatch(r"services\.(\w+)\.app:create_app", container["command"][1]).group(1)


def test_there_is_a_county_and_a_town_and_a_village_overlay():
    levels = {name.split("-")[0] for name in OVERLAYS}
    assert {"county", "town", "village"} <= levels


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_resource_is_valid_for_the_kubernetes_api(overlay):
    for doc in build(overlay):
        if doc["apiVersion"].startswith(("kafka.strimzi.io/", "monitoring.coreos.com/")):
            continue  # custom resources: checked against the generator below, not the core schemas
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_service_is_deployed_with_probes_on_real_endpoints():
    seen = set()
    for deployment in deployments():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        module = service_of(container)
        app = importlib.import_module(f"services.{module}.app").create_app()
        paths = {getattr(route, "path", None) for route in app.routes}  # health routes sit on the app itself
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz" in paths
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" in paths
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz" in paths
        assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"] in paths
        seen.add(module)
    assert seen == set(SERVICES)


def test_every_pod_meets_the_restricted_pod_security_profile():
    [namespace] = kinds(build("county"), "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for deployment in deployments():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert isinstance(pod["securityContext"]["runAsUser"], int) and pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, container["name"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert "memory" in container["resources"]["limits"] and "cpu" in container["resources"]["requests"]


def test_every_deployment_has_a_disruption_budget_and_an_autoscaler_on_cpu_and_lag():
    for overlay in OVERLAYS:
        docs = build(overlay)
        for deployment in kinds(docs, "Deployment"):
            name, labels = deployment["metadata"]["name"], deployment["spec"]["selector"]["matchLabels"]
            [pdb] = [d for d in kinds(docs, "PodDisruptionBudget") if d["metadata"]["name"] == name]
            assert pdb["spec"]["selector"]["matchLabels"] == labels
            [hpa] = [d for d in kinds(docs, "HorizontalPodAutoscaler") if d["metadata"]["name"] == name]
            assert hpa["spec"]["scaleTargetRef"]["name"] == name
            metrics = {
                m.get("resource", m.get("pods", {})).get("name") or m["pods"]["metric"]["name"]
                for m in hpa["spec"]["metrics"]
            }
            service = service_of(deployment["spec"]["template"]["spec"]["containers"][0])
            expected = {"cpu"} | ({"gridlink_consumer_lag_messages"} if service_topics(service).group else set())
            assert metrics == expected, name
            # More consumers than the busiest topic has partitions would sit idle.
            busiest = max(t.partitions for t in service_topics(service).reads)
            assert hpa["spec"]["maxReplicas"] <= max(busiest, 4)


def test_each_dispatch_centre_has_its_own_schema_group_and_name_and_all_agree_on_the_list():
    schemas: dict[str, str] = {}  # centre → its schema
    for overlay in OVERLAYS:
        docs = build(overlay)
        configs = config_maps(docs)
        for deployment in kinds(docs, "Deployment"):
            [container] = deployment["spec"]["template"]["spec"]["containers"]
            if service_of(container) != "dispatch":
                continue
            env = {}
            for source in container["envFrom"]:
                env |= configs.get(source["configMapRef"]["name"], {})
            code, level = env["GRIDLINK_JURISDICTION_CODE"], env["GRIDLINK_JURISDICTION_LEVEL"]
            assert overlay in ("county", f"{level}-{code}") and deployment["metadata"]["name"] == f"dispatch-{code}"
            settings = SETTINGS_CLASSES["dispatch"](
                jurisdiction_code=code, database_schema=env["GRIDLINK_DATABASE_SCHEMA"], service_name="dispatch"
            )
            assert settings.consumer_group() == f"dispatch-{code}"
            schemas[code] = env["GRIDLINK_DATABASE_SCHEMA"]
            centres = json.loads(env["GRIDLINK_DISPATCH_CENTRES"])
            assert code in centres and level in ("county", "town", "village")
            # The centres list comes from a generated ConfigMap: its name changes with its content.
            assert any(
                re.fullmatch(r"gridlink-dispatch-centres-\d+-[a-z0-9]{10}", s["configMapRef"]["name"])
                for s in container["envFrom"]
            )
    # One overlay per centre (plus `county`, the county-wide services with the county's centre).
    assert len(set(schemas.values())) == len(schemas) == len(OVERLAYS) - 1
    assert set(json.loads((K8S / "dispatch" / "centres.env").read_text().split("=", 1)[1])) == set(schemas)


def test_migrations_run_first_as_the_owner_and_the_services_cannot():
    config = config_maps(build("county"))["gridlink-config"]
    assert config["GRIDLINK_DATABASE_MIGRATE_ON_START"] == "false"
    for deployment in deployments():
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        service = service_of(container)
        if not (PROJECT_ROOT / "services" / service / "migrations").is_dir():
            assert "initContainers" not in pod
            continue
        [init] = pod["initContainers"]
        assert init["command"] == ["python", "-m", "shared.migrate", service]
        keys = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", {}).get("key") for e in init["env"]}
        assert keys["GRIDLINK_DATABASE_URL"] == "GRIDLINK_MIGRATION_DATABASE_URL"
        runtime = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"] if "valueFrom" in e}
        assert runtime["GRIDLINK_DATABASE_URL"] == "GRIDLINK_DATABASE_URL"
    [secret] = [d for d in yaml.safe_load_all((K8S / "base" / "secrets.example.yaml").read_text()) if d]
    runtime_user = re.match(r"postgresql://(\w+):", secret["stringData"]["GRIDLINK_DATABASE_URL"])[1]
    owner_user = re.match(r"postgresql://(\w+):", secret["stringData"]["GRIDLINK_MIGRATION_DATABASE_URL"])[1]
    assert runtime_user != owner_user
    for deployment in deployments():
        for init in deployment["spec"]["template"]["spec"].get("initContainers", []):
            role = {e["name"]: e.get("value") for e in init["env"]}["GRIDLINK_DATABASE_RUNTIME_ROLE"]
            assert role == runtime_user


def test_the_generated_files_are_what_the_code_generates_today():
    """Regenerate: python -m devtools.deploy_gen kafka | ingress | dispatch --level L --code C."""
    files = deploy_gen.kafka_resources() | deploy_gen.ingress_resources()
    centres = (K8S / "dispatch" / "centres.env").read_text(encoding="utf-8")
    for overlay in OVERLAYS:
        if overlay != "county":
            level, code = overlay.split("-")
            generated = deploy_gen.dispatch_overlay(level=level, code=code)
            assert generated.pop(K8S / "dispatch" / "centres.env") == centres  # already listed
            files |= generated
    for path, text in files.items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: regenerate it"
    for path, content in deploy_gen.county_map(PROJECT_ROOT / "shared" / "data" / "county.geojson").items():
        assert path.read_bytes() == content, f"{path} is stale: python -m devtools.deploy_gen county"


def test_the_pods_that_read_the_county_map_get_the_imported_one(tmp_path):
    """The map is not only the image's demo: intake, the console, notify and sla read the county's
    map from its ConfigMap (gzipped, rolled by its name's hash), and notify its broadcast groups
    from a Secret (robot keys)."""
    docs = build("county")
    [county_map] = [d for d in kinds(docs, "ConfigMap") if d["metadata"]["name"].startswith("gridlink-county-map-")]
    readers = set()
    for deployment in kinds(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        if "GRIDLINK_COUNTY_MAP_PATH" not in env:
            continue
        readers.add(service_of(container))
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        path = env["GRIDLINK_COUNTY_MAP_PATH"].rsplit("/", 1)
        assert volumes[mounts[path[0]]]["configMap"]["name"] == county_map["metadata"]["name"]
        assert path[1] in county_map["binaryData"]
        if service_of(container) == "notify":
            groups = env["GRIDLINK_NOTIFY_GROUPS_PATH"].rsplit("/", 1)
            assert volumes[mounts[groups[0]]]["secret"]["secretName"] == "gridlink-county-groups"
    assert readers == {"intake", "console", "notify", "sla"}
    shipped = tmp_path / "county.geojson.gz"
    shipped.write_bytes(base64.b64decode(county_map["binaryData"]["county.geojson.gz"]))
    demo, delivered = load_county(PROJECT_ROOT / "shared" / "data" / "county.geojson"), load_county(shipped)
    assert delivered.content_hash == demo.content_hash and delivered.grids.keys() == demo.grids.keys()


def test_topics_are_cluster_resources_replicated_as_production_says():
    docs = build("county")
    config = config_maps(docs)["gridlink-config"]
    assert config["GRIDLINK_KAFKA_CREATE_TOPICS"] == "false"
    assert (config["GRIDLINK_KAFKA_REPLICATION_FACTOR"], config["GRIDLINK_KAFKA_MIN_INSYNC_REPLICAS"]) == ("3", "2")
    topics = {t["spec"]["topicName"]: t for t in kinds(docs, "KafkaTopic")}
    assert set(topics) == {t.name for t in ALL_TOPICS}
    for topic in ALL_TOPICS:
        spec = topics[topic.name]["spec"]
        assert (spec["partitions"], spec["replicas"]) == (topic.partitions, 3)
        assert spec["config"]["min.insync.replicas"] == "2"
        assert spec["config"]["retention.ms"] == str(topic.retention_ms)


def test_each_service_user_may_do_exactly_what_the_registry_says():
    users = {u["metadata"]["name"]: u["spec"]["authorization"]["acls"] for u in kinds(build("county"), "KafkaUser")}
    assert set(users) == {f"gridlink-{s}" for s in (*SERVICES, OPERATOR)}
    for service in SERVICES:
        access = service_topics(service)
        acls = users[f"gridlink-{service}"]
        allowed = {
            (a["resource"]["name"], op) for a in acls if a["resource"]["type"] == "topic" for op in a["operations"]
        }
        assert {name for name, op in allowed if op == "Read"} == {t.name for t in access.reads}
        assert {name for name, op in allowed if op == "Write"} == {t.name for t in access.writes}
        # Topics are cluster resources: no service may create one.
        assert all(op in ("Read", "Write", "Describe") for a in acls for op in a["operations"])
        groups = [a["resource"] for a in acls if a["resource"]["type"] == "group"]
        assert len(groups) == (1 if access.group else 0)


def test_the_ingress_exposes_only_routes_meant_for_the_internet_with_their_body_limits():
    from fastapi.routing import iter_route_contexts

    from shared.web import public_reason

    ingresses = {i["metadata"]["name"]: i for i in kinds(build("county"), "Ingress")}
    for service in deploy_gen.INGRESS_SERVICES:
        app = importlib.import_module(f"services.{service}.app").create_app()
        public = {r.path for r in iter_route_contexts(app.routes) if public_reason(r)}
        paths = [p["path"] for rule in ingresses[service]["spec"]["rules"] for p in rule["http"]["paths"]]
        # Each path is a route template made a regular expression; together they are the public routes.
        assert len(paths) == len(public - deploy_gen.NOT_ON_THE_INTERNET)
        for template in public - deploy_gen.NOT_ON_THE_INTERNET:
            concrete = re.sub(r"\{\w+\}", "x1", template)
            assert any(re.fullmatch(path, concrete) for path in paths), template
        for private in ("/metrics", "/readyz", "/api/v1/cases", "/api/v1/admin/anything"):
            assert not any(re.fullmatch(path, private) for path in paths), private
        limit = int(ingresses[service]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"])
        assert limit == deploy_gen.body_limit(service) >= app.state.settings.http_max_body_bytes


def test_every_variable_the_manifests_set_is_a_setting_of_a_service_that_receives_it():
    """Each service reads only its own settings (services/<name>/settings.py) and ignores other
    GRIDLINK_* variables, so a misspelt or misplaced one would be silently without effect."""
    readers: dict[str, set[str]] = {}
    for overlay in OVERLAYS:
        docs = build(overlay)
        sources = {name: set(data) for name, data in config_maps(docs).items()}
        sources.pop("gridlink-dashboards", None)  # files for Grafana, not settings
        for variables in sources.values():
            for variable in variables:
                readers.setdefault(variable, set())
        for deployment in kinds(docs, "Deployment"):
            [container] = deployment["spec"]["template"]["spec"]["containers"]
            service = service_of(container)
            fields = {f"GRIDLINK_{name.upper()}" for name in SETTINGS_CLASSES[service].model_fields}
            own = {env["name"] for env in container.get("env", [])}
            assert own <= fields, (deployment["metadata"]["name"], own - fields)
            for source in container["envFrom"]:
                ref = source.get("configMapRef") or source.get("secretRef")
                if ref["name"] in sources:  # gridlink-config is the county's, applied by overlays/county
                    for variable in sources[ref["name"]] & fields:
                        readers[variable].add(service)
            for env in container.get("env", []):
                if "valueFrom" in env:
                    readers.setdefault(env["valueFrom"]["secretKeyRef"]["key"], set()).add(service)
    assert all(readers.values()), [variable for variable, services in readers.items() if not services]


def test_each_pod_gets_exactly_the_secrets_its_settings_read():
    """No pod holds another service's keys: secrets are mapped one by one, never the whole Secret."""
    [secret] = [d for d in yaml.safe_load_all((K8S / "base" / "secrets.example.yaml").read_text(encoding="utf-8")) if d]
    for deployment in deployments():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert all("secretRef" not in source for source in container["envFrom"]), deployment["metadata"]["name"]
        service = service_of(container)
        fields = {f"GRIDLINK_{name.upper()}" for name in SETTINGS_CLASSES[service].model_fields}
        refs = {env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"] if "valueFrom" in env}
        mapped = {name: ref["key"] for name, ref in refs.items() if ref["name"] == "gridlink-secrets"}
        assert all(name == key for name, key in mapped.items())
        assert set(mapped) == set(secret["stringData"]) & fields, deployment["metadata"]["name"]
        # And its own Kafka user's password, from the Secret Strimzi made for that user.
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["GRIDLINK_KAFKA_SASL_USERNAME"] == f"gridlink-{service}"
        assert refs["GRIDLINK_KAFKA_SASL_PASSWORD"] == {"name": f"gridlink-kafka-{service}", "key": "password"}
        assert set(refs) == set(mapped) | {"GRIDLINK_KAFKA_SASL_PASSWORD"}


def test_dashboard_queries_only_metrics_the_services_export():
    for service in SERVICES:
        importlib.import_module(f"services.{service}.app")
    exported = {
        name for collector in list(REGISTRY._collector_to_names) for name in REGISTRY._collector_to_names[collector]
    }
    dashboard = json.loads((K8S / "monitoring" / "gridlink-overview.json").read_text(encoding="utf-8"))
    used = {
        m for panel in dashboard["panels"] for t in panel["targets"] for m in re.findall(r"gridlink_\w+", t["expr"])
    }
    assert used and used <= exported, used - exported


def test_every_make_target_is_defined_once_and_declared():
    """A target written twice silently replaces the first recipe (make only warns), which once
    turned `make import-county` into a second `republish-directory`."""
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    defined = re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M)
    phony = re.search(r"^\.PHONY: (.*)$", makefile, flags=re.M).group(1).split()
    assert sorted(defined) == sorted(set(defined)), "a target is defined twice"
    assert sorted(defined) == sorted(phony)
    help_text = makefile.split("help:", 1)[1].split("\n\n", 1)[0]
    for target in set(defined) - {"help", "install", "unit", "logs"}:
        assert f"make {target}" in help_text, f"make help does not explain {target}"
