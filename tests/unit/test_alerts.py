"""The alert rules (deploy/k8s/monitoring/alerts.yaml) pass `promtool check rules` and their unit
tests (alerts.test.yaml, `promtool test rules`), and query only metrics the services export."""

import importlib
import json
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


def dashboard_panels() -> list[dict]:
    return json.loads((MONITORING / "gridlink-overview.json").read_text(encoding="utf-8"))["panels"]


def test_the_dashboard_shows_beijing_time():
    dashboard = json.loads((MONITORING / "gridlink-overview.json").read_text(encoding="utf-8"))
    assert dashboard["timezone"] == "Asia/Shanghai"


def test_every_dashboard_query_is_valid_promql_and_tells_dispatch_centres_apart(tmp_path):
    """Each panel's query as a recording rule: promtool parses them all; then, on series shaped as
    the services export them (two dispatch centres in two pods), the latency panel shows each centre
    on its own line and the notifications panel counts sent messages only."""
    rules = [
        {"record": f"panel:{panel['id']}:{target['refId']}", "expr": target["expr"]}
        for panel in dashboard_panels()
        for target in panel["targets"]
    ]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    check = subprocess.run([promtool(), "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    http = "gridlink_http_request_duration_seconds_count"
    series = [
        (f'{http}{{instance="a:8000",service="dispatch",method="GET",route="/x",status="500"}}', "0+6x10"),
        (f'{http}{{instance="b:8000",service="dispatch",method="GET",route="/x",status="500"}}', "0+60x10"),
        # The errors panel reads the per-service 5xx counter (made at 0 when a service starts).
        ('gridlink_http_server_errors_total{instance="a:8000",service="dispatch"}', "0+6x10"),
        ('gridlink_http_server_errors_total{instance="b:8000",service="dispatch"}', "0+60x10"),
        (
            'gridlink_service_info{instance="a:8000",service="dispatch",jurisdiction_code="330727",jurisdiction_level="county"}',
            "1x10",
        ),
        (
            'gridlink_service_info{instance="b:8000",service="dispatch",jurisdiction_code="330727101",jurisdiction_level="town"}',
            "1x10",
        ),
        ('gridlink_notify_deliveries_total{channel="sms",template="t",outcome="sent"}', "0+60x10"),
        ('gridlink_notify_deliveries_total{channel="sms",template="t",outcome="retry"}', "0+600x10"),
    ]
    county = '{service="dispatch",jurisdiction_level="county",jurisdiction_code="330727"}'
    town = '{service="dispatch",jurisdiction_level="town",jurisdiction_code="330727101"}'
    [errors] = [t["expr"] for p in dashboard_panels() if p["id"] == 2 for t in p["targets"]]
    [sent] = [t["expr"] for p in dashboard_panels() if p["id"] == 11 for t in p["targets"] if "sent" in t["expr"]]
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "promql_expr_test": [
                    {
                        "expr": errors,
                        "eval_time": "10m",
                        "exp_samples": [
                            {
                                "labels": county,
                                "value": 0.1,
                            },
                            {
                                "labels": town,
                                "value": 1,
                            },
                        ],
                    },
                    {"expr": sent, "eval_time": "10m", "exp_samples": [{"labels": '{channel="sms"}', "value": 1}]},
                ],
            }
        ],
    }
    (tmp_path / "panels.test.yaml").write_text(yaml.safe_dump(test))
    tested = subprocess.run(
        [promtool(), "test", "rules", "panels.test.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
