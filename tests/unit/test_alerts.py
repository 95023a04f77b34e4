"""The alert rules (deploy/k8s/monitoring/alerts.yaml) pass `promtool check rules` and their unit
tests (alerts.test.yaml, `promtool test rules`), and query only metrics the services export."""

import importlib
import re
import shutil
import subprocess

import yaml
from prometheus_client import REGISTRY

from shared.settings import PROJECT_ROOT

MONITORING = PROJECT_ROOT / "deploy" / "k8s" / "monitoring"


def promtool() -> str:
    """promtool from Debian's prometheus package, installed by `make install` (deploy/local/tools.sh)."""
    found = shutil.which("promtool")
    if not found:
        subprocess.run([str(PROJECT_ROOT / "deploy" / "local" / "tools.sh"), "install"], check=True)
        found = shutil.which("promtool")
    assert found, "promtool is missing: run deploy/local/tools.sh install (apt-get install prometheus)"
    return found


def rule_groups() -> dict:
    rule = yaml.safe_load((MONITORING / "alerts.yaml").read_text(encoding="utf-8"))
    assert rule["kind"] == "PrometheusRule"
    return {"groups": rule["spec"]["groups"]}


def test_the_alert_rules_pass_promtool_and_their_unit_tests(tmp_path):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups(), allow_unicode=True), encoding="utf-8")
    shutil.copy(MONITORING / "alerts.test.yaml", tmp_path / "alerts.test.yaml")
    check = subprocess.run([promtool(), "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(
        [promtool(), "test", "rules", "alerts.test.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout + tested.stderr


def test_every_alert_is_unit_tested_and_queries_exported_metrics():
    for service in ("intake", "dispatch", "sla", "notify", "media", "console"):
        importlib.import_module(f"services.{service}.app")
    exported = {n for names in list(REGISTRY._collector_to_names.values()) for n in names}
    alerts = {r["alert"]: r["expr"] for g in rule_groups()["groups"] for r in g["rules"]}
    tests = yaml.safe_load((MONITORING / "alerts.test.yaml").read_text(encoding="utf-8"))["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert tested == set(alerts)
    for name, expr in alerts.items():
        used = set(re.findall(r"gridlink_\w+", expr))
        assert used and used <= exported, (name, used - exported)
