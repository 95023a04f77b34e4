"""A local stand-in for WeCom's group robot webhook (企业微信群机器人), speaking its wire protocol.

`POST /cgi-bin/webhook/send?key=…` validates a message the way WeCom documents it and answers
with HTTP 200 and an errcode, including the per-robot limit of 20 messages a minute. What it
accepted can be read back at `GET /_fake/messages?key=…` (and cleared with DELETE), and
`POST /_fake/failures` makes the next sends to a key fail with a chosen errcode, so the real
client code can be tested against transient and permanent errors.

Run: python deploy/local/fake_wecom.py --port 18090
"""

import argparse
import base64
import binascii
import hashlib
import json
import time
from collections import defaultdict, deque

import uvicorn
from fastapi import FastAPI, Query, Request

TEXT_MAX_BYTES = 2048
MARKDOWN_MAX_BYTES = 4096
IMAGE_MAX_BYTES = 2 * 1024 * 1024
NEWS_MAX_ARTICLES = 8
RATE_WINDOW_S = 60.0

# errcodes as WeCom answers them (45009 for the rate limit is WeCom's usual "api freq out of limit").
OK = (0, "ok")
INVALID_KEY = (93000, "invalid webhook url")
RATE_LIMITED = (45009, "api freq out of limit")
INVALID_MSGTYPE = (40008, "invalid message type")
EMPTY_CONTENT = (44004, "empty content")
CONTENT_TOO_LONG = (45002, "content size out of limit")
INVALID_PARAMETER = (40058, "invalid parameter")
INVALID_JSON = (40035, "invalid json")


class Rejected(Exception):
    def __init__(self, error: tuple[int, str], detail: str = ""):
        self.errcode, self.errmsg = error[0], error[1] + (f": {detail}" if detail else "")


def _string_list(body: dict, field: str) -> None:
    value = body.get(field, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Rejected(INVALID_PARAMETER, f"{field} must be a list of strings")


def _content(body: dict, limit: int) -> None:
    content = body.get("content")
    if not isinstance(content, str) or not content:
        raise Rejected(EMPTY_CONTENT)
    if len(content.encode()) > limit:
        raise Rejected(CONTENT_TOO_LONG, f"content is {len(content.encode())} bytes, limit {limit}")


def validate(message: dict) -> None:
    """Raise Rejected if WeCom would refuse this message."""
    msgtype = message.get("msgtype")
    body = message.get(msgtype) if isinstance(msgtype, str) else None
    if msgtype not in {"text", "markdown", "image", "news"} or not isinstance(body, dict):
        raise Rejected(INVALID_MSGTYPE, str(msgtype))
    if msgtype == "text":
        _content(body, TEXT_MAX_BYTES)
        _string_list(body, "mentioned_list")
        _string_list(body, "mentioned_mobile_list")
    elif msgtype == "markdown":
        _content(body, MARKDOWN_MAX_BYTES)
    elif msgtype == "image":
        try:
            raw = base64.b64decode(body.get("base64", ""), validate=True)
        except (binascii.Error, TypeError) as error:
            raise Rejected(INVALID_PARAMETER, f"base64: {error}") from None
        if not raw:
            raise Rejected(INVALID_PARAMETER, "empty image")
        if len(raw) > IMAGE_MAX_BYTES:
            raise Rejected(CONTENT_TOO_LONG, f"image is {len(raw)} bytes, limit {IMAGE_MAX_BYTES}")
        if hashlib.md5(raw).hexdigest() != str(body.get("md5", "")).lower():
            raise Rejected(INVALID_PARAMETER, "md5 does not match the image")
        if not (raw.startswith(b"\xff\xd8\xff") or raw.startswith(b"\x89PNG\r\n\x1a\n")):
            raise Rejected(INVALID_PARAMETER, "image must be JPG or PNG")
    else:
        articles = body.get("articles")
        if not isinstance(articles, list) or not 1 <= len(articles) <= NEWS_MAX_ARTICLES:
            raise Rejected(INVALID_PARAMETER, f"news needs 1-{NEWS_MAX_ARTICLES} articles")
        for article in articles:
            if not isinstance(article, dict) or not article.get("title") or not article.get("url"):
                raise Rejected(INVALID_PARAMETER, "every article needs a title and a url")


def create_app(*, rate_limit_per_minute: int = 20, valid_keys: set[str] | None = None, clock=time.monotonic) -> FastAPI:
    """The fake server; valid_keys=None accepts any non-empty key."""
    app = FastAPI(title="Fake WeCom group robot")
    messages: list[dict] = []
    sent_at: dict[str, deque] = defaultdict(deque)
    failures: dict[str, deque] = defaultdict(deque)

    def answer(error: tuple[int, str] | Rejected) -> dict:
        if isinstance(error, Rejected):
            return {"errcode": error.errcode, "errmsg": error.errmsg}
        return {"errcode": error[0], "errmsg": error[1]}

    @app.post("/cgi-bin/webhook/send")
    async def send(request: Request, key: str = Query("")):
        if not key or (valid_keys is not None and key not in valid_keys):
            return answer(INVALID_KEY)
        window, now = sent_at[key], clock()
        while window and now - window[0] >= RATE_WINDOW_S:
            window.popleft()
        if len(window) >= rate_limit_per_minute:
            return answer(RATE_LIMITED)
        if failures[key]:
            errcode, errmsg = failures[key].popleft()
            return {"errcode": errcode, "errmsg": errmsg}
        try:
            message = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return answer(INVALID_JSON)
        try:
            validate(message if isinstance(message, dict) else {})
        except Rejected as rejected:
            return answer(rejected)
        window.append(now)
        messages.append({"key": key, "received_at": time.time(), "body": message})
        return answer(OK)

    @app.get("/_fake/messages")
    async def list_messages(key: str | None = None):
        return [m for m in messages if key is None or m["key"] == key]

    @app.delete("/_fake/messages", status_code=204)
    async def clear_messages():
        messages.clear()
        sent_at.clear()
        failures.clear()

    @app.post("/_fake/failures", status_code=204)
    async def fail_next(key: str, errcode: int, times: int = 1, errmsg: str = "injected failure"):
        failures[key].extend([(errcode, errmsg)] * times)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--rate-limit", type=int, default=20, help="messages a minute per robot key")
    args = parser.parse_args()
    uvicorn.run(create_app(rate_limit_per_minute=args.rate_limit), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
