"""The Grafana dashboards tell the truth about a running stack: a real Prometheus (Debian's package,
installed by `make install`) scrapes the five services, each its own uvicorn process as in the
cluster (so each has its own metrics registry, and nothing another test counted in this process can
answer a query), while a report, a case's whole life and a broadcast go through them; then every
panel query of every dashboard shipped in deploy/k8s/monitoring is asked through Prometheus's HTTP
API and must return a series with a value.

The traffic makes the events the panels count. Some are events an operator hopes not to see, which
ordinary traffic does not produce, so the test produces each the way it happens in production:
- 5xx: sla is told of an identity provider that is down (a closed port), and a caller sends it a
  provider-signed token: sla answers 503, as it would while the county's provider is unreachable;
- dead letters: a message that is not JSON on the reports topic (another department's bug);
- 催办 and 督办: a dispatched case's acknowledgement deadline arrives (its timer's warning and due
  times are moved to now, as the clock would bring them);
- notifications failed for good and broadcast failures: one group's robot answers a permanent error.
"""

import base64
import io
import json
import math
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from uuid import UUID, uuid4

import asyncpg
import httpx
import yaml
from PIL import Image

from devtools.local_servers import free_port, wait_http
from services.notify.app import load_groups
from shared.settings import PROJECT_ROOT, ServiceSettings
from shared.topics import REPORTS
from tests.support import bearer, eventually, publish

SERVICES = ("intake", "dispatch", "sla", "notify", "media")
MONITORING = PROJECT_ROOT / "deploy" / "k8s" / "monitoring"
TOOLS = PROJECT_ROOT / "deploy" / "local" / "tools.sh"


def prometheus_binary() -> str:
    """The Prometheus server from Debian's prometheus package (deploy/local/tools.sh installs it)."""
    found = subprocess.run([str(TOOLS), "path", "prometheus"], capture_output=True, text=True)
    if found.returncode != 0 or not found.stdout.strip():
        subprocess.run([str(TOOLS), "install"], check=True)
        found = subprocess.run([str(TOOLS), "path", "prometheus"], capture_output=True, text=True, check=True)
    return found.stdout.strip()


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL) for every target of every shipped dashboard."""
    queries = []
    for path in sorted(MONITORING.glob("*.json")):
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    queries.append((path.name, panel["title"], target["expr"]))
    return queries


def environment(settings: ServiceSettings) -> dict[str, str]:
    """The settings as the GRIDLINK_* variables a service process reads."""
    env = {}
    for name, value in settings.model_dump(mode="json", exclude_unset=True).items():
        env[f"GRIDLINK_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), (30, 160, 60)).save(buffer, format="JPEG")
    return buffer.getvalue()


def provider_token(issuer: str) -> str:
    """A token as the county's identity provider issues them (RS256, its issuer): checking it needs
    the provider's keys. The signature is never reached while the provider is down."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": "county-key"}
    claims = {"iss": issuer, "sub": "someone", "aud": "urn:gridlink:services", "iat": now, "exp": now + 600}
    return f"{part(header)}.{part(claims)}.{base64.urlsafe_b64encode(b'x' * 256).rstrip(b'=').decode()}"


async def test_every_dashboard_panel_returns_data_after_traffic(make_settings, infra, fake_wecom, tmp_path):
    queries = panel_queries()
    assert len(queries) >= 20  # both dashboards were read
    down_provider = f"http://127.0.0.1:{free_port()}"
    settings = {
        "intake": make_settings("intake"),
        "dispatch": make_settings("dispatch"),
        "sla": make_settings("sla", analytics_metrics_interval_s=1.0, auth_oidc_issuer=down_provider),
        "notify": make_settings("notify"),
        "media": make_settings("media"),
    }
    ports: dict[str, int] = {}
    processes: dict[str, subprocess.Popen] = {}
    with ExitStack() as stack:

        def start(service: str) -> None:
            port = free_port()
            while port in ports.values():
                port = free_port()
            ports[service] = port
            log = stack.enter_context((tmp_path / f"{service}.log").open("a"))
            processes[service] = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", f"services.{service}.app:create_app", "--factory"]
                + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                cwd=PROJECT_ROOT,
                env={**os.environ, **environment(settings[service])},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        stack.callback(lambda: _stop(*processes.values()))
        for service in SERVICES:
            start(service)
        for service in SERVICES:
            for attempt in range(3):
                try:
                    wait_ready(f"http://127.0.0.1:{ports[service]}", processes[service])
                    break
                except AssertionError:
                    log = (tmp_path / f"{service}.log").read_text(encoding="utf-8", errors="replace")
                    if attempt == 2 or "address already in use" not in log:
                        raise
                    start(service)  # something else on this machine took the free port first
        url = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
        prometheus_port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "gridlink", "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in ports.values()]}]}
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        prometheus = subprocess.Popen(
            [
                prometheus_binary(),
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            stdout=stack.enter_context((tmp_path / "prometheus.log").open("w")),
            stderr=subprocess.STDOUT,
        )
        stack.callback(_stop, prometheus)
        prometheus_url = f"http://127.0.0.1:{prometheus_port}"
        wait_http(f"{prometheus_url}/-/ready", prometheus, 30)

        async def every_service_scraped():  # so the counters' zeros are seen before their events
            answer = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": "up == 1"}, timeout=10).json()
            return len(answer["data"]["result"]) == len(SERVICES)

        await eventually(every_service_scraped, timeout=20, interval=0.5)
        await make_traffic(settings, url, fake_wecom, down_provider, prometheus_url)

        async def every_panel_has_data():
            empty = [(f, title, expr) for f, title, expr in queries if not has_value(prometheus_url, expr)]
            return empty == [] or None

        try:
            # Two scrapes after the last event, for rate() and increase() to have their two samples.
            await eventually(every_panel_has_data, timeout=20, interval=1)
        except AssertionError:
            empty = [(f, title, expr) for f, title, expr in queries if not has_value(prometheus_url, expr)]
            raise AssertionError(f"panels without data: {empty}") from None


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 180) -> None:
    """Wait for a service process to answer /readyz 200 (generous: five processes import and start at
    once on a machine that may be busy)."""
    deadline, last = time.monotonic() + seconds, "no answer"
    while time.monotonic() < deadline and process.poll() is None:
        try:
            answer = httpx.get(f"{url}/readyz", timeout=2)
            if answer.status_code == 200:
                return
            last = answer.text
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready (exit code {process.poll()}): {last}")


def has_value(prometheus_url: str, expr: str) -> bool:
    """Whether the instant query answers at least one series with a number (NaN is Grafana's "No data");
    a rate or an increase must be above 0, since the traffic made its events while Prometheus watched.
    (Prometheus 2 sees no increase in a series born at its first event, so the counters the panels
    read have their series made at 0 in advance: dead letters, 5xx per service, broadcast deliveries,
    催办 and 督办, handler latency. Notifications other than broadcasts are labelled by template, known
    only at the first send; on that panel this traffic's broadcast counts.)"""
    answer = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    values = [float(series["value"][1]) for series in answer["data"]["result"]]
    if "rate(" in expr or "increase(" in expr:
        return any(value > 0 for value in values)
    return any(not math.isnan(value) for value in values)


def _stop(*processes: subprocess.Popen) -> None:
    """Stop them all at once (SIGTERM: each service shuts down gracefully), killing laggards."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def make_traffic(settings: dict, url: dict, fake_wecom: str, down_provider: str, prometheus_url: str) -> None:
    dispatch_settings = settings["dispatch"]
    dispatcher = bearer(dispatch_settings, "dispatcher")
    handler = bearer(dispatch_settings, "handler", department_code="huanwei")
    supervisor = bearer(dispatch_settings, "supervisor")
    async with httpx.AsyncClient(timeout=20) as http:

        async def report(description: str, category: str, lat: float, lng: float) -> str:
            answer = await http.post(
                f"{url['intake']}/api/v1/reports",
                json={"description": description, "category": category, "lat": lat, "lng": lng, "channel": "api"},
            )
            assert answer.status_code == 201, answer.text
            return answer.json()["case_id"]

        async def case(case_id: str, status: str):
            r = await http.get(f"{url['dispatch']}/api/v1/cases/{case_id}", headers=dispatcher)
            return r.json() if r.status_code == 200 and r.json()["status"] == status else None

        # A case's whole life: reported, dispatched, acknowledged, resolved with its 整改后 photo, rated.
        whole = await report("东关街菜市场后门垃圾堆了三天没人清运，臭气熏天", "exposed_garbage", 29.0829, 120.0546)
        # A second case whose acknowledgement deadline comes: 催办, then 督办.
        late = await report("幸福路与建设街交叉口往南50米，井盖翻起来了", "manhole", 29.0812, 120.0431)
        await eventually(lambda: case(whole, "dispatched"))
        await eventually(lambda: case(late, "dispatched"))

        r = await http.post(f"{url['dispatch']}/api/v1/cases/{whole}/acknowledge", json={}, headers=handler)
        assert r.status_code == 200, r.text
        upload = await http.post(
            f"{url['media']}/api/v1/media", files={"file": ("after.jpg", jpeg(), "image/jpeg")}, headers=handler
        )
        assert upload.status_code == 201, upload.text
        after = upload.json()["media_id"]
        r = await http.post(
            f"{url['media']}/api/v1/cases/{whole}/media", json={"media_id": after, "role": "after"}, headers=handler
        )
        assert r.status_code == 201, r.text

        async def dispatch_knows_the_photo():
            r = await http.get(f"{url['dispatch']}/api/v1/cases/{whole}", headers=dispatcher)
            return [e for e in r.json()["evidence"] if e["media_id"] == after]

        await eventually(dispatch_knows_the_photo)
        r = await http.post(
            f"{url['dispatch']}/api/v1/cases/{whole}/resolve",
            json={"result": "已清运并消杀", "after_media_ids": [after]},
            headers=handler,
        )
        assert r.status_code == 200, r.text
        r = await http.post(f"{url['dispatch']}/api/v1/cases/{whole}/verify", json={"rating": 5}, headers=dispatcher)
        assert r.status_code == 200, r.text

        # The late case's acknowledgement deadline arrives: its warning is due now, its deadline in 2 s.
        sla = await asyncpg.connect(settings["sla"].database_url, server_settings={"search_path": "sla"})
        try:

            async def timer_started():
                return await sla.fetchval("SELECT count(*) FROM timers WHERE case_id = $1", UUID(late))

            await eventually(timer_started)
            department = await sla.fetchval(
                "SELECT department_code FROM timers WHERE case_id = $1 AND stage = 'acknowledge'", UUID(late)
            )

            async def zeros_scraped():
                # The timer made its department's 催办 and 督办 series at 0: Prometheus must have seen
                # the 0 before the events, or increase() has no rise to show.
                for name in ("gridlink_sla_warnings_total", "gridlink_sla_breaches_total"):
                    query = f'{name}{{department="{department}"}}'
                    answer = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": query}, timeout=10).json()
                    if not answer["data"]["result"]:
                        return False
                return True

            await eventually(zeros_scraped, timeout=20, interval=0.5)
            await sla.execute(
                "UPDATE timers SET warn_at = now() - interval '1 minute', next_fire_at = now() - interval '1 minute',"
                " due_at = now() + interval '2 seconds' WHERE case_id = $1 AND stage = 'acknowledge'",
                UUID(late),
            )

            async def breached():
                return await sla.fetchval(
                    "SELECT fired_at IS NOT NULL FROM timers WHERE case_id = $1 AND stage = 'acknowledge'", UUID(late)
                )

            await eventually(breached)
        finally:
            await sla.close()

        # A broadcast to a village's groups, one of whose robots answers a permanent error.
        groups = load_groups(settings["notify"].notify_groups_path)
        village = groups[0].jurisdiction_code[:12]  # a group's grid code starts with its village's
        dead = groups[0]
        httpx.post(f"{fake_wecom}/_fake/failures", params={"key": dead.robot_key, "errcode": 93000, "times": 1})
        r = await http.post(
            f"{url['notify']}/api/v1/broadcasts",
            json={"content": f"冬季防火提示 {uuid4().hex[:6]}", "target": village},
            headers=supervisor,
        )
        assert r.status_code == 202, r.text
        broadcast = r.json()["broadcast_id"]

        async def broadcast_done():
            r = await http.get(f"{url['notify']}/api/v1/broadcasts/{broadcast}", headers=supervisor)
            return r.json()["done"] and r.json()["failed"] == 1

        await eventually(broadcast_done, timeout=30)

        # Another department's bug: a message that is not an event on the reports topic.
        await publish(settings["intake"], REPORTS.name, b"not json")

        # The county's identity provider is down: sla cannot check a token it signed.
        r = await http.get(
            f"{url['sla']}/api/v1/cases/{late}/timers",
            headers={"authorization": f"Bearer {provider_token(down_provider)}"},
        )
        assert r.status_code == 503, r.text
