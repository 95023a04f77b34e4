"""Resident memory of each service process, idle after start and after some requests: the figures
the Deployments' memory requests are sized from (deploy/k8s). Starts its own Kafka, PostgreSQL and
MinIO on free ports, each service as its own uvicorn process as in the cluster, and reads VmRSS.

    .cache/venv/bin/python bench/service_memory.py
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devtools.local_servers import free_port, local_servers  # noqa: E402
from shared.settings import PROJECT_ROOT  # noqa: E402

SERVICES = ("intake", "dispatch", "sla", "notify", "media", "console")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    with local_servers(PROJECT_ROOT / ".cache" / f"bench-memory-{os.getpid()}") as infra:
        ports = {service: free_port() for service in SERVICES}
        env = {
            **os.environ,
            "GRIDLINK_DATABASE_URL": infra.database_url("gridlink"),
            "GRIDLINK_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            "GRIDLINK_MINIO_ENDPOINT": infra.minio_endpoint,
            "GRIDLINK_MINIO_ACCESS_KEY": infra.minio_user,
            "GRIDLINK_MINIO_SECRET_KEY": infra.minio_password,
            "GRIDLINK_CONSOLE_DISPATCH_URL": f"http://127.0.0.1:{ports['dispatch']}",
            "GRIDLINK_CONSOLE_MEDIA_URL": f"http://127.0.0.1:{ports['media']}",
            "GRIDLINK_CONSOLE_SLA_URL": f"http://127.0.0.1:{ports['sla']}",
            "GRIDLINK_CONSOLE_NOTIFY_URL": f"http://127.0.0.1:{ports['notify']}",
        }
        processes = {}
        try:
            for service in SERVICES:
                processes[service] = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        f"services.{service}.app:create_app",
                        "--factory",
                        "--port",
                        str(ports[service]),
                        "--log-level",
                        "warning",
                    ],
                    cwd=PROJECT_ROOT,
                    env=env,
                )
            for service in SERVICES:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        if httpx.get(f"http://127.0.0.1:{ports[service]}/readyz", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline or processes[service].poll() is not None:
                        raise RuntimeError(f"{service} did not become ready")
                    time.sleep(0.5)
            time.sleep(5)
            idle = {s: rss_mib(p.pid) for s, p in processes.items()}
            for service in SERVICES:  # some traffic: the documents, probes and metrics every pod answers
                for path in ("/openapi.json", "/asyncapi.json", "/metrics", "/readyz") * 20:
                    httpx.get(f"http://127.0.0.1:{ports[service]}{path}", timeout=10)
            busy = {s: rss_mib(p.pid) for s, p in processes.items()}
            print(f"{'service':10} {'idle MiB':>9} {'after requests MiB':>19}")
            for service in SERVICES:
                print(f"{service:10} {idle[service]:9.0f} {busy[service]:19.0f}")
        finally:
            for process in processes.values():
                process.terminate()
            for process in processes.values():
                process.wait(30)


if __name__ == "__main__":
    main()
