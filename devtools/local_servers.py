"""Real Kafka, PostgreSQL, MinIO and the OpenID Connect provider for tests and benchmarks, started
by the same script as `make up` (deploy/local/infra.sh) on free ports and in their own run
directory, so they never meet `make up`'s servers."""

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.settings import PROJECT_ROOT

INFRA = PROJECT_ROOT / "deploy" / "local" / "infra.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen, seconds: float) -> None:
    """Wait until `url` answers 200 (a service or fake the benchmarks started as `process`)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not become ready")
        time.sleep(0.2)


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    pg_port: int
    minio_endpoint: str
    minio_user: str
    minio_password: str
    # The OpenID Connect provider with the demo county's people, and the one console address it
    # returns people to (a console under test serves there: tests/support.py `serving(port=)`).
    oidc_issuer: str
    console_port: int
    run_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)  # what infra.sh was started with

    def database_url(self, name: str) -> str:
        return f"postgresql://gridlink@127.0.0.1:{self.pg_port}/{name}"

    def pid(self, part: str) -> int:
        """The process id infra.sh recorded for "kafka", "postgres" (the postmaster) or "minio"."""
        assert self.run_dir is not None
        return int((self.run_dir / "pids" / f"{part}.pid").read_text().split()[0])

    def kill(self, part: str) -> None:
        """kill -9 one server, as a crash or an OOM kill would (fault-injection tests)."""
        os.kill(self.pid(part), signal.SIGKILL)

    def start(self, part: str) -> None:
        """Start one server again on its ports and data, and wait until it is ready."""
        subprocess.run([str(INFRA), "start", part], env=self.env, check=True, stdout=subprocess.DEVNULL)


@contextmanager
def local_servers(run_dir: Path, parts: tuple[str, ...] = ("all",), *, durable: bool = False):
    """Start the given parts of the local stack ("all", or "postgres", "kafka", "minio", "oidc") on
    free ports in `run_dir`; stop them and remove their data afterwards. PostgreSQL trades durability
    for speed (the data is thrown away) unless `durable`: a test that kills PostgreSQL needs what
    it acknowledged as committed to survive (synchronous_commit=off loses the last ~0.6 s)."""
    oidc_port, console_port = free_port(), free_port()
    env = {
        **os.environ,
        "GRIDLINK_RUN_DIR": str(run_dir),
        "GRIDLINK_KAFKA_PORT": str(free_port()),
        "GRIDLINK_KAFKA_CONTROLLER_PORT": str(free_port()),
        "GRIDLINK_PG_PORT": str(free_port()),
        "GRIDLINK_MINIO_PORT": str(free_port()),
        "GRIDLINK_MINIO_CONSOLE_PORT": str(free_port()),
        "MINIO_ROOT_USER": "gridlink-test",
        "MINIO_ROOT_PASSWORD": "gridlink-test-secret",
        "GRIDLINK_PG_EPHEMERAL": "0" if durable else "1",  # the data is thrown away: no fsync
        "GRIDLINK_OIDC_PORT": str(oidc_port),
        "GRIDLINK_AUTH_OIDC_ISSUER": f"http://127.0.0.1:{oidc_port}",
        "GRIDLINK_OIDC_CONSOLE_URLS": f"http://127.0.0.1:{console_port}",
        "GRIDLINK_CONSOLE_OIDC_CLIENT_SECRET": "local-development-only",
    }
    try:
        for part in parts:
            subprocess.run([str(INFRA), "start", part], env=env, check=True)
        yield Infra(
            kafka_bootstrap=f"127.0.0.1:{env['GRIDLINK_KAFKA_PORT']}",
            pg_port=int(env["GRIDLINK_PG_PORT"]),
            minio_endpoint=f"127.0.0.1:{env['GRIDLINK_MINIO_PORT']}",
            minio_user=env["MINIO_ROOT_USER"],
            minio_password=env["MINIO_ROOT_PASSWORD"],
            oidc_issuer=env["GRIDLINK_AUTH_OIDC_ISSUER"],
            console_port=console_port,
            run_dir=run_dir,
            env=env,
        )
    finally:
        subprocess.run([str(INFRA), "stop"], env=env, check=False)
        shutil.rmtree(run_dir, ignore_errors=True)
