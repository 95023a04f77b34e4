"""Real headless Chromium (Debian's chromium and chromium-driver) driven through chromedriver's
W3C WebDriver API, for the page tests: just the commands they need."""

import base64
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from devtools.local_servers import free_port

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C web element identifier

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="Debian's chromium and chromium-driver are not installed"
)


class Browser:
    """Just the WebDriver commands the page tests need."""

    def __init__(self, http: httpx.Client, session: str):
        self.http, self.session = http, session

    def command(self, method: str, path: str, body: dict | None = None):
        response = self.http.request(method, f"/session/{self.session}{path}", json=body)
        response.raise_for_status()
        return response.json()["value"]

    def cdp(self, cmd: str, **params):
        return self.command("POST", "/goog/cdp/execute", {"cmd": cmd, "params": params})

    def open(self, url: str):
        self.command("POST", "/url", {"url": url})

    def url(self) -> str:
        return self.command("GET", "/url")

    def element(self, css: str) -> str:
        return self.command("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def count(self, css: str) -> int:
        return len(self.command("POST", "/elements", {"using": "css selector", "value": css}))

    def click(self, css: str):
        self.command("POST", f"/element/{self.element(css)}/click", {})

    def type(self, css: str, text: str):
        self.command("POST", f"/element/{self.element(css)}/value", {"text": text})

    def text(self, css: str) -> str:
        return self.command("GET", f"/element/{self.element(css)}/text")

    def script(self, source: str, *args):
        return self.command("POST", "/execute/sync", {"script": source, "args": list(args)})

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.command("GET", "/screenshot")))
        return path


@contextmanager
def chromium(*, width: int = 1280, height: int = 900) -> Iterator[Browser]:
    """A fresh headless Chromium (own profile, Chinese locale) for one test."""
    port, profile = free_port(), tempfile.mkdtemp(prefix="gridlink-chromium-")
    driver = subprocess.Popen(
        [str(CHROMEDRIVER), f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if http.get("/status").json()["value"]["ready"]:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chromedriver did not start")
            time.sleep(0.1)
        # The flags keep Chromium off the network this machine cannot reach anyway.
        args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--lang=zh-CN",
            f"--window-size={width},{height}",
        ]
        session = http.post(
            "/session",
            json={
                "capabilities": {
                    "alwaysMatch": {
                        "browserName": "chrome",
                        "goog:chromeOptions": {"binary": str(CHROMIUM), "args": args},
                    }
                }
            },
        ).json()
        browser = Browser(http, session["value"]["sessionId"])
        yield browser
        http.delete(f"/session/{browser.session}")
    finally:
        http.close()
        driver.terminate()
        driver.wait(20)
        shutil.rmtree(profile, ignore_errors=True)
