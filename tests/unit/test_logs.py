"""Structured logs: JSON lines with Beijing time, level, service, logger and the ids of the work at
hand; the HTTP request id is the caller's (when safe) or a new one, and comes back in the response."""

import io
import json
import logging
from contextlib import asynccontextmanager

import httpx

from shared import logs
from shared.settings import ServiceSettings
from shared.web import create_service_app, public


def test_a_log_line_is_one_json_object_with_time_level_service_logger_and_ids():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure_logging(service="dispatch", stream=stream)
        with logs.bound(request="req-1", correlation="c0ffee", case="case-9"):
            logging.getLogger("services.dispatch.cases").warning("case %s dispatched", "A-1")
        # uvicorn's loggers reach the same handler (warning: their level is uvicorn's --log-level).
        logging.getLogger("uvicorn.error").warning("started")
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger("x").exception("failed")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["time"].endswith("+08:00") and first["level"] == "WARNING"
    assert first["service"] == "dispatch" and first["logger"] == "services.dispatch.cases"
    assert first["message"] == "case A-1 dispatched"
    assert (first["request_id"], first["correlation_id"], first["case_id"]) == ("req-1", "c0ffee", "case-9")
    assert second["logger"] == "uvicorn.error" and "request_id" not in second  # ids only inside the block
    assert third["level"] == "ERROR" and "ValueError: bad" in third["error"]


async def test_the_request_id_is_the_callers_when_safe_and_comes_back():
    @asynccontextmanager
    async def lifespan(app):
        yield

    app = create_service_app(ServiceSettings(service_name="echo"), title="t", lifespan=lifespan)

    @app.get("/whoami")
    @public("a test route that answers its request id")
    async def whoami():
        return {"request_id": logs.request_id.get()}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        given = await client.get("/whoami", headers={"X-Request-ID": "abc-123"})
        forged = await client.get("/whoami", headers={"X-Request-ID": 'x" level="ERROR'})
        none = await client.get("/whoami")
    assert given.json()["request_id"] == given.headers["X-Request-ID"] == "abc-123"
    assert forged.headers["X-Request-ID"] != 'x" level="ERROR' and len(forged.headers["X-Request-ID"]) == 32
    assert none.json()["request_id"] == none.headers["X-Request-ID"]
