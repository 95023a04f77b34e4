"""Structured logs: one JSON object a line (time in Beijing time, level, service, logger, message,
and the request, correlation and case ids of what is being done), for the county's log collector.

The ids live in context variables: the HTTP middleware (shared/web.py) sets the request id from
`X-Request-ID` or a new one, the outbox stores it with each event and the relay sends it as the
Kafka header `request_id`; a consumer (shared/kafka.py) sets it back from the header, with the
event's correlation id and case, while it handles the event, so one resident's report can be
followed through every service's logs. GRIDLINK_LOG_FORMAT=json turns it on (text stays the
default for `make up` and tests).
"""

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")
REQUEST_ID_HEADER = "X-Request-ID"
KAFKA_HEADER = "request_id"

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
case_id: ContextVar[str | None] = ContextVar("case_id", default=None)

# A caller's id is kept only if it is short and plain, so a log line cannot be forged through it.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id_from(value: str | None) -> str:
    """The caller's request id when it is a safe one, else a new one."""
    if value and _SAFE_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, BEIJING).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in (("request_id", request_id), ("correlation_id", correlation_id), ("case_id", case_id)):
            if (value := var.get()) is not None:
                line[name] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(*, service: str, level: str = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record (uvicorn's included) to one JSON handler on the root logger; returns it."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn installs its own plain-text handlers before the app exists; route them to the root.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler


class bound:
    """Set the log context ids for a block (None leaves an id unset), restoring them afterwards."""

    def __init__(self, *, request: str | None = None, correlation: str | None = None, case: str | None = None):
        self.values = ((request_id, request), (correlation_id, correlation), (case_id, case))

    def __enter__(self) -> None:
        self.tokens = [var.set(value) for var, value in self.values]

    def __exit__(self, *exc: object) -> None:
        for (var, _), token in zip(self.values, self.tokens, strict=True):
            var.reset(token)
