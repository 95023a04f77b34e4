"""Helpers for tests that run services in-process against the real servers."""

import asyncio
import json
import re
import time
from contextlib import asynccontextmanager
from uuid import uuid4

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.console.settings import ConsoleSettings
from services.dispatch.settings import DispatchSettings
from services.intake.settings import IntakeSettings
from services.media.settings import MediaSettings
from services.notify.settings import NotifySettings
from services.sla.settings import SlaSettings
from shared.events import CaseDispatched, Event, new_event, utcnow
from shared.settings import PROJECT_ROOT, ServiceSettings

INFRA = PROJECT_ROOT / "deploy" / "local" / "infra.sh"

# Each service's settings class, for tests that build settings by service name.
SETTINGS_CLASSES: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings,
    "dispatch": DispatchSettings,
    "sla": SlaSettings,
    "notify": NotifySettings,
    "media": MediaSettings,
    "console": ConsoleSettings,
}


@asynccontextmanager
async def running(app, *, raise_app_exceptions: bool = True):
    """Run an app's lifespan (pool, consumer, relay…) and give an HTTP client for it; with
    raise_app_exceptions=False a failing route answers 500 as it would to a real client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@asynccontextmanager
async def serving(app, *, port: int | None = None):
    """Run an app with uvicorn on a free loopback port, or on `port` (the console's address the
    identity provider knows), for a browser or another service calling it over HTTP; its base URL.
    Open streams (the console's live queue) get a second to close."""
    import uvicorn

    from devtools.local_servers import free_port

    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # startup failed: raise its error
                raise RuntimeError("server stopped during startup")
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def eventually(check, *, timeout: float = 15.0, interval: float = 0.1):
    """Poll an async check until it returns a truthy value (for effects that cross Kafka)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last result: {result!r})")
        await asyncio.sleep(interval)


async def read_topic(settings: ServiceSettings, topic_name: str, *, until, timeout: float = 15.0) -> list[dict]:
    """Read a topic from the beginning until `until(messages)` is true; messages as JSON dicts."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic_name),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    messages: list[dict] = []
    try:
        deadline = time.monotonic() + timeout
        while not until(messages):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic_name}: condition not met; got {messages!r}")
            for records in (await consumer.getmany(timeout_ms=200)).values():
                messages.extend(json.loads(r.value) for r in records)
        return messages
    finally:
        await consumer.stop()


async def publish(settings: ServiceSettings, topic_name: str, *values: bytes) -> None:
    """Produce raw messages to a topic, as another department's system would."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(settings.topic(topic_name), value, key=b"k")
    finally:
        await producer.stop()


def bearer(
    settings: ServiceSettings,
    role: str,
    jurisdiction_code: str = "330727",
    department_code: str | None = None,
    subject: str | None = None,
) -> dict[str, str]:
    """Authorization headers for a test actor, signed with the settings' key."""
    from shared.auth import Actor, issue_token

    actor = Actor(
        subject=subject or f"{role}-{department_code or jurisdiction_code}",
        role=role,
        jurisdiction_code=jurisdiction_code,
        department_code=department_code,
    )
    return {"authorization": f"Bearer {issue_token(secret=settings.auth_jwt_secret, actor=actor)}"}


def load_fake_wecom():
    """The fake WeCom/WeChat server module (a script under deploy/local, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fake_wecom", PROJECT_ROOT / "deploy" / "local" / "fake_wecom.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeClock:
    """A monotonic clock a test moves by hand."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def case_dispatched(department_code: str = "zhujian", **facts) -> Event:
    """case.dispatched as dispatch publishes it (a 井盖 case by default), for tests of its consumers."""
    values = dict(
        case_id=uuid4(),
        report_id=uuid4(),
        category="manhole",
        category_name="井盖缺失",
        priority="urgent",
        department_code=department_code,
        department_name="住房和城乡建设局",
        description="幸福路井盖翻起来了",
        responsibility_list_version="v",
        rule="r",
        dispatched_at=utcnow(),
    )
    return new_event(
        CaseDispatched(**values | facts), producer="test", jurisdiction_code="330727", key=str(values["case_id"])
    )


async def follow(http: httpx.AsyncClient, response: httpx.Response, *, stop_at: str = "") -> httpx.Response:
    """Follow redirects by hand across servers (the console, the identity provider), stopping at
    the first one to an address starting with `stop_at` (a callback no server answers)."""
    while response.is_redirect:
        target = str(response.url.join(response.headers["location"]))
        if stop_at and target.startswith(stop_at):
            return response
        response = await http.get(target)
    return response


async def log_in_at_provider(
    http: httpx.AsyncClient, login_form: httpx.Response, *, username: str, password: str, stop_at: str = ""
) -> httpx.Response:
    """Fill in the identity provider's login form (as a person would) and follow where it leads."""
    action = re.search(r'<form method="post" action="([^"]+)"', login_form.text)
    assert action, login_form.text
    answer = await http.post(str(login_form.url.join(action[1])), data={"username": username, "password": password})
    return await follow(http, answer, stop_at=stop_at)
