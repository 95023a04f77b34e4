"""GridLink services as real processes (uvicorn, one per service) against `local_servers`' Kafka,
PostgreSQL and MinIO, for benchmarks and fault-injection tests: started, killed with SIGKILL and
started again by the process id they were given, never by name."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devtools.local_servers import Infra, free_port
from shared.settings import PROJECT_ROOT

FAKE_WECOM = PROJECT_ROOT / "deploy" / "local" / "fake_wecom.py"


def service_env(infra: Infra, *, database: str = "gridlink", **settings: str) -> dict[str, str]:
    """The environment a service process reads its settings from (GRIDLINK_*), pointed at `infra`;
    `settings` are further settings by field name (intake_trusted_proxies='["127.0.0.1"]')."""
    return {
        **os.environ,
        "GRIDLINK_DATABASE_URL": infra.database_url(database),
        "GRIDLINK_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "GRIDLINK_MINIO_ENDPOINT": infra.minio_endpoint,
        "GRIDLINK_MINIO_ACCESS_KEY": infra.minio_user,
        "GRIDLINK_MINIO_SECRET_KEY": infra.minio_password,
        **{f"GRIDLINK_{name.upper()}": value for name, value in settings.items()},
    }


@dataclass
class ServiceProcess:
    """One service (or the fake WeCom server, name "fake-wecom") as a uvicorn process in its own
    process group, logging to `log_dir/<name>.log`."""

    name: str
    env: dict[str, str]
    log_dir: Path
    workers: int = 1
    app: str | None = None  # the uvicorn factory, services.<name>.app:create_app by default
    launcher: tuple[str, ...] = ()  # python arguments before "-m uvicorn" (a profiler's)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.name == "fake-wecom":
            return [sys.executable, str(FAKE_WECOM), "--port", str(self.port)]
        return [
            sys.executable,
            *self.launcher,
            "-m",
            "uvicorn",
            self.app or f"services.{self.name}.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]

    def start(self, *, wait_s: float | None = 120) -> "ServiceProcess":
        """Start the process and wait until it is ready (wait_s=None: do not wait, see wait_ready)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.env | {"GRIDLINK_SERVICE_NAME": self.name}
        with (self.log_dir / f"{self.name}.log").open("a") as log:
            self.process = subprocess.Popen(
                self.command(), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, start_new_session=True
            )
        if wait_s is not None:
            self.wait_ready(wait_s)
        return self

    def wait_ready(self, seconds: float) -> None:
        path = "/healthz" if self.name == "fake-wecom" else "/readyz"
        deadline = time.monotonic() + seconds
        while True:
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.log_dir / f"{self.name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} did not become ready; its log ends:\n{tail}")
            time.sleep(0.2)

    def kill(self) -> None:
        """kill -9 the process and its workers (its process group), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, *, grace_s: float = 20) -> None:
        """SIGTERM (a graceful shutdown, as Kubernetes does), SIGKILL after `grace_s`."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.kill()
