"""Broadcast benchmark: one policy message to all 2,413 resident groups of the demo county.

Starts its own PostgreSQL, Kafka and MinIO (the scripts `make up` uses, on free ports, in their own run
directory), the fake WeCom server and the notify service as real processes talking real HTTP, one
group robot per group with WeCom's limit of 20 messages a minute each. Posts the broadcast, waits
until every group's delivery is confirmed (errcode 0 recorded as sent), checks with the fake that
each robot received exactly one message, prints the time against the seed county's two hours,
and stops what it started. Exits non-zero if a group was missed or the target was not met.

Run: .cache/venv/bin/python bench/notify_broadcast.py [--target all|<division prefix>]
"""

import argparse
import csv
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devtools.local_servers import free_port, local_servers, wait_http  # noqa: E402
from devtools.local_services import service_env  # noqa: E402
from shared.auth import Actor, issue_token  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BASELINE_S = 2 * 3600  # the seed county: two hours by hand, group by group
TARGET_S = 5 * 60
TIMEOUT_S = 15 * 60  # the benchmark gives up (and fails) after this


def robot_keys(target: str) -> set[str]:
    with (ROOT / "shared" / "data" / "groups.csv").open(encoding="utf-8", newline="") as f:
        return {
            r["robot_key"] for r in csv.DictReader(f) if target == "all" or r["jurisdiction_code"].startswith(target)
        }


def run(target: str, env: dict, run_dir: Path) -> int:
    python = sys.executable
    fake_port, notify_port = free_port(), free_port()
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    try:
        fake = subprocess.Popen(
            [python, str(ROOT / "deploy" / "local" / "fake_wecom.py"), "--port", str(fake_port)],
            stdout=(logs / "fake-wecom.log").open("w"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        processes.append(fake)
        wait_http(f"http://127.0.0.1:{fake_port}/healthz", fake, 30)
        # A broadcast is a county supervisor's to send (the route is private): sign one for the run.
        secret = secrets.token_urlsafe(32)
        supervisor = Actor(subject="bench", role="supervisor", jurisdiction_code="330727", name="压测督查员")
        staff = {"authorization": f"Bearer {issue_token(secret=secret, actor=supervisor)}"}
        notify_env = env | {
            "GRIDLINK_AUTH_JWT_SECRET": secret,
            "GRIDLINK_SERVICE_NAME": "notify",
            "GRIDLINK_WECOM_BASE_URL": f"http://127.0.0.1:{fake_port}",
        }
        notify = subprocess.Popen(
            [
                python,
                "-m",
                "uvicorn",
                "services.notify.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(notify_port),
                "--log-level",
                "warning",
            ],
            env=notify_env,
            stdout=(logs / "notify.log").open("w"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        processes.append(notify)
        base = f"http://127.0.0.1:{notify_port}"
        wait_http(f"{base}/readyz", notify, 120)

        expected = robot_keys(target)
        print(f"[bench] broadcasting to {len(expected)} groups ({target}), one robot each, 20 msg/min/robot")
        started = time.monotonic()
        response = httpx.post(
            f"{base}/api/v1/broadcasts",
            json={
                "content": "**【政策宣传】冬季防火安全提示**\n请各户检查电线、燃气，离家断电，楼道不堆放杂物。",
                "msgtype": "markdown",
                "target": target,
            },
            headers=staff,
            timeout=60,
        )
        response.raise_for_status()
        broadcast = response.json()
        accepted_s = time.monotonic() - started
        last_print = 0.0
        while True:
            state = httpx.get(f"{base}{broadcast['status_url']}", headers=staff, timeout=30).json()
            elapsed = time.monotonic() - started
            if state["done"]:
                break
            if elapsed - last_print >= 2:
                print(
                    f"[bench] {elapsed:6.1f}s  sent {state['sent']:5d}  failed {state['failed']}  "
                    f"pending {state['pending']}"
                )
                last_print = elapsed
            if elapsed > TIMEOUT_S:
                print(f"[bench] gave up after {TIMEOUT_S}s: {state}")
                return 1
            time.sleep(0.2)
        elapsed = time.monotonic() - started

        received = httpx.get(f"http://127.0.0.1:{fake_port}/_fake/messages", timeout=60).json()
        per_key: dict[str, int] = {}
        for message in received:
            per_key[message["key"]] = per_key.get(message["key"], 0) + 1
        reached_once = {k for k, n in per_key.items() if n == 1} & expected
        duplicates = {k for k, n in per_key.items() if n > 1}
        rejected_45009 = sum(1 for f in state["failures"] if "45009" in (f["last_error"] or ""))
        print()
        print(f"groups                    {len(expected)}")
        print(f"accepted (POST answered)  {accepted_s:.2f} s")
        print(f"confirmed sent            {state['sent']}  (failed {state['failed']}, 45009 failures {rejected_45009})")
        print(f"reached exactly once      {len(reached_once)}  (duplicates {len(duplicates)})")
        print(f"reached and confirmed in  {elapsed:.1f} s  ({len(expected) / elapsed:.0f} groups/s)")
        print(f"target                    < {TARGET_S} s: {'met' if elapsed < TARGET_S else 'NOT met'}")
        print(f"vs the seed county        {BASELINE_S} s by hand → {BASELINE_S / elapsed:.0f}x faster")
        ok = state["sent"] == len(expected) and reached_once == expected and not duplicates and elapsed < TARGET_S
        return 0 if ok else 1
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="all", help='"all" or a division-code prefix')
    args = parser.parse_args()
    run_dir = ROOT / ".cache" / f"bench-run-{os.getpid()}"
    # notify parks the photos staff send in MinIO's incoming bucket, so it starts only with one.
    with local_servers(run_dir, parts=("postgres", "kafka", "minio")) as infra:
        return run(args.target, service_env(infra), run_dir)


if __name__ == "__main__":
    sys.exit(main())
