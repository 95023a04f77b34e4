"""A local stand-in for WeCom's group robot webhook (企业微信群机器人), speaking its wire protocol.

`POST /cgi-bin/webhook/send?key=…` validates a message the way WeCom documents it and answers
with HTTP 200 and an errcode, including the per-robot limit of 20 messages a minute. What it
accepted can be read back at `GET /_fake/messages?key=…` (and cleared with DELETE), and
`POST /_fake/failures` makes the next sends to a key fail with a chosen errcode, so the real
client code can be tested against transient and permanent errors.

It also stands in for the rest of what notify talks to:
- the WeCom self-built application: `GET /cgi-bin/gettoken` (an access_token that expires) and
  `POST /cgi-bin/message/send` (42001 for an expired token, 40014 for an unknown one, 81013 when
  no recipient is valid; text, markdown and 按钮交互型 template cards, 42014 for a card whose
  task_id was used before, is empty or is not 1-128 bytes of [A-Za-z0-9_@-]);
  `POST /_fake/tokens/expire` expires every token now;
- the official account: `GET /cgi-bin/token`, `POST /cgi-bin/message/template/send` (43004 for
  a reader who does not follow the account) and `POST /cgi-bin/message/subscribe/send` (43101
  without consent, 47003 for a field over its kind's length);
- an SMS gateway: `POST /sms/send` (a `Code` of "OK" or an error code, 5 a minute per number);
- WeChat's side of callbacks: `encrypt`/`callback_request`/`aibot_callback_request`/
  `url_check_request` build requests exactly as WeCom (application and AI bot) and the official
  account sign and encrypt them (WXBizMsgCrypt).
Sent messages are read back at `/_fake/app/messages`, `/_fake/mp/messages`, `/_fake/sms/messages`;
`/_fake/stats` counts token fetches, robot messages and the 45009 answers per robot key.

Run: python deploy/local/fake_wecom.py --port 18090
"""

import argparse
import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import struct
import time
from collections import defaultdict, deque

import uvicorn
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi import FastAPI, Query, Request, Response

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
# Application, official account and SMS errcodes.
INVALID_CORPID = (40013, "invalid corpid")
INVALID_CREDENTIAL = (40001, "invalid credential, access_token is invalid or not latest")
INVALID_TOKEN = (40014, "invalid access_token")
TOKEN_EXPIRED = (42001, "access_token expired")
INVALID_AGENTID = (40056, "invalid agentid")
NO_VALID_RECIPIENT = (81013, "user & party & tag all invalid")
REQUIRE_SUBSCRIBE = (43004, "require subscribe")
INVALID_OPENID = (40003, "invalid openid")
INVALID_TEMPLATE_ID = (40037, "invalid template_id")
NO_SUBSCRIBE_CONSENT = (43101, "user refuse to accept the msg")
ARGUMENT_INVALID = (47003, "argument invalid!")
TASK_ID_TAKEN = (42014, "taskid has existed or empty or exceed max len")
TASK_ID = re.compile(r"^[A-Za-z0-9_@-]{1,128}$")
SUBSCRIBE_FIELD_LIMITS = {"thing": 20, "phrase": 5, "character_string": 32, "name": 10, "number": 32}
MOBILE = re.compile(r"^1[3-9]\d{9}$")
SMS_PER_MINUTE = 5

# Credentials the fake accepts: the defaults of shared/settings.py, so `make up` works as is.
CORP_ID, CORP_SECRET, AGENT_ID = "ww-gridlink-local", "local-development-only", 1000002
MP_APP_ID, MP_APP_SECRET = "wx-gridlink-local", "local-development-only"
CALLBACK_TOKEN = "gridlink-local"
WECOM_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
MP_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


# --- WeChat's side of callbacks (WXBizMsgCrypt), written from the scheme, not from notify's code ---


def signature(*parts: str) -> str:
    """SHA-1 hex of the parts sorted and joined."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def encrypt(message: str, *, encoding_aes_key: str, receive_id: str, random16: bytes | None = None) -> str:
    """AES-256-CBC of random(16) + big-endian length + message + receive id, PKCS#7 to 32 bytes, base64."""
    key = base64.b64decode(encoding_aes_key + "=")
    raw = message.encode()
    plain = (random16 or os.urandom(16)) + struct.pack(">I", len(raw)) + raw + receive_id.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def callback_request(
    message_xml: str,
    *,
    source: str = "wecom_app",
    token: str = CALLBACK_TOKEN,
    encoding_aes_key: str | None = None,
    receive_id: str | None = None,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> tuple[dict, str]:
    """Query parameters and XML body of an encrypted message callback as the platform sends it."""
    wecom = source == "wecom_app"
    encoding_aes_key = encoding_aes_key or (WECOM_AES_KEY if wecom else MP_AES_KEY)
    receive_id = receive_id if receive_id is not None else (CORP_ID if wecom else MP_APP_ID)
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    encrypted = encrypt(message_xml, encoding_aes_key=encoding_aes_key, receive_id=receive_id)
    params = {"msg_signature": signature(token, timestamp, nonce, encrypted), "timestamp": timestamp, "nonce": nonce}
    if wecom:
        body = (
            f"<xml><ToUserName><![CDATA[{receive_id}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>"
        )
    else:  # the official account's safe mode also signs the three strings, as in plaintext mode
        params |= {"signature": signature(token, timestamp, nonce), "encrypt_type": "aes"}
        body = f"<xml><ToUserName><![CDATA[gh_gridlink]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    return params, body


def aibot_callback_request(
    message: dict,
    *,
    token: str = CALLBACK_TOKEN,
    encoding_aes_key: str = WECOM_AES_KEY,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> tuple[dict, str]:
    """Query parameters and JSON body of a WeCom AI-bot (智能机器人) callback: the message JSON
    encrypted with an empty receive id, posted as {"encrypt": …}."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    encrypted = encrypt(json.dumps(message, ensure_ascii=False), encoding_aes_key=encoding_aes_key, receive_id="")
    params = {"msg_signature": signature(token, timestamp, nonce, encrypted), "timestamp": timestamp, "nonce": nonce}
    return params, json.dumps({"encrypt": encrypted})


def url_check_request(
    *,
    source: str = "wecom_app",
    token: str = CALLBACK_TOKEN,
    encoding_aes_key: str | None = None,
    receive_id: str | None = None,
    timestamp: str | None = None,
) -> tuple[dict, str]:
    """Query parameters of the platform's URL check, and the plaintext the URL must answer."""
    timestamp = timestamp or str(int(time.time()))
    nonce = str(secrets.randbelow(10**10))
    echo = str(secrets.randbelow(10**19))
    if source != "wecom_app":  # the official account echoes echostr as it came
        return {
            "signature": signature(token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echo,
        }, echo
    encrypted = encrypt(
        echo,
        encoding_aes_key=encoding_aes_key or WECOM_AES_KEY,
        receive_id=receive_id if receive_id is not None else CORP_ID,
    )
    return {
        "msg_signature": signature(token, timestamp, nonce, encrypted),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": encrypted,
    }, echo


def message_xml(
    *, msg_type: str, from_user: str, msg_id: str, to_user: str = CORP_ID, create_time: int | None = None, **fields: str
) -> str:
    """A callback message's inner XML (text: Content; image: PicUrl, MediaId; location: Location_X…)."""
    parts = [
        f"<ToUserName><![CDATA[{to_user}]]></ToUserName>",
        f"<FromUserName><![CDATA[{from_user}]]></FromUserName>",
        f"<CreateTime>{create_time or int(time.time())}</CreateTime>",
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>",
    ]
    parts += [f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()]
    parts.append(f"<MsgId>{msg_id}</MsgId>")
    return "<xml>" + "".join(parts) + "</xml>"


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


def validate_button_card(card: dict) -> None:
    """Raise Rejected if WeCom would refuse this 按钮交互型 template card (task_id checked apart)."""
    if not isinstance(card, dict) or card.get("card_type") != "button_interaction":
        raise Rejected(INVALID_PARAMETER, "card_type must be button_interaction")
    title = card.get("main_title")
    if not (isinstance(title, dict) and title.get("title")) and not card.get("sub_title_text"):
        raise Rejected(INVALID_PARAMETER, "main_title.title or sub_title_text is required")
    buttons = card.get("button_list")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 6:
        raise Rejected(INVALID_PARAMETER, "button_list needs 1-6 buttons")
    keys = []
    for button in buttons:
        if not isinstance(button, dict) or not button.get("text"):
            raise Rejected(INVALID_PARAMETER, "every button needs a text")
        if button.get("type", 0) == 0:
            key = button.get("key")
            if not isinstance(key, str) or not key or len(key.encode()) > 1024:
                raise Rejected(INVALID_PARAMETER, "a callback button needs a key of at most 1024 bytes")
            keys.append(key)
        elif not button.get("url"):
            raise Rejected(INVALID_PARAMETER, "a url button needs a url")
    if len(keys) != len(set(keys)):
        raise Rejected(INVALID_PARAMETER, "button keys must be unique")
    if len(card.get("horizontal_content_list") or []) > 6:
        raise Rejected(INVALID_PARAMETER, "at most 6 horizontal_content_list items")


def create_app(
    *,
    rate_limit_per_minute: int = 20,
    valid_keys: set[str] | None = None,
    clock=time.monotonic,
    token_ttl_s: float = 7200.0,
) -> FastAPI:
    """The fake server; valid_keys=None accepts any non-empty key."""
    app = FastAPI(title="Fake WeCom group robot")
    messages: list[dict] = []
    sent_at: dict[str, deque] = defaultdict(deque)
    failures: dict[str, deque] = defaultdict(deque)
    tokens: dict[str, tuple[str, float]] = {}  # access_token -> (kind, expires at on `clock`)
    token_fetches: dict[str, int] = defaultdict(int)
    app_messages: list[dict] = []
    mp_messages: list[dict] = []
    sms_messages: list[dict] = []
    pictures: dict[str, tuple[bytes, str]] = {}
    sms_sent_at: dict[str, deque] = defaultdict(deque)
    rate_limited: dict[str, int] = defaultdict(int)  # 45009 answers per robot key
    card_tasks: set[str] = set()  # template-card task ids used so far (unique per application)

    def issue_token(kind: str) -> dict:
        token = f"{kind}-{secrets.token_urlsafe(24)}"
        tokens[token] = (kind, clock() + token_ttl_s)
        token_fetches[kind] += 1
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": int(token_ttl_s)}

    def token_error(token: str, kind: str) -> tuple[int, str] | None:
        if token not in tokens or tokens[token][0] != kind:
            return INVALID_TOKEN if kind == "wecom" else INVALID_CREDENTIAL
        if clock() >= tokens[token][1]:
            return TOKEN_EXPIRED
        return None

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
            rate_limited[key] += 1
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

    @app.get("/cgi-bin/gettoken")
    async def wecom_gettoken(corpid: str = "", corpsecret: str = ""):
        if corpid != CORP_ID:
            return answer(INVALID_CORPID)
        if corpsecret != CORP_SECRET:
            return answer(INVALID_CREDENTIAL)
        return issue_token("wecom")

    async def token_and_json(request: Request, access_token: str, platform: str) -> dict:
        """The JSON object a platform API was sent, or the errcode answer for a bad token or body."""
        if error := token_error(access_token, platform):
            return answer(error)
        try:
            message = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return answer(INVALID_JSON)
        return message if isinstance(message, dict) and "errcode" not in message else answer(INVALID_JSON)

    @app.post("/cgi-bin/message/send")
    async def wecom_app_send(request: Request, access_token: str = ""):
        message = await token_and_json(request, access_token, "wecom")
        if "errcode" in message:
            return message
        if message.get("agentid") != AGENT_ID:
            return answer(INVALID_AGENTID)
        msgtype = message.get("msgtype")
        if msgtype not in {"text", "markdown", "template_card"} or not isinstance(message.get(msgtype), dict):
            return answer(Rejected(INVALID_MSGTYPE, str(msgtype)))
        task_id = None
        try:
            if msgtype == "template_card":
                validate_button_card(message["template_card"])
                task_id = message["template_card"].get("task_id")
                if not isinstance(task_id, str) or not TASK_ID.match(task_id) or task_id in card_tasks:
                    raise Rejected(TASK_ID_TAKEN)
            else:
                _content(message[msgtype], TEXT_MAX_BYTES if msgtype == "text" else MARKDOWN_MAX_BYTES)
        except Rejected as rejected:
            return answer(rejected)
        users = [u for u in str(message.get("touser", "")).split("|") if u]
        invalid = [u for u in users if u.startswith("unknown")]  # the fake's directory: all but these exist
        if not users or len(invalid) == len(users):
            return answer(NO_VALID_RECIPIENT)
        if task_id is not None:
            card_tasks.add(task_id)
        app_messages.append({"received_at": time.time(), "body": message})
        sent = {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid), "msgid": secrets.token_hex(8)}
        if task_id is not None:  # button cards answer a response_code (for updating the card)
            sent["response_code"] = secrets.token_urlsafe(16)
        return sent

    @app.get("/cgi-bin/token")
    async def mp_token(grant_type: str = "", appid: str = "", secret: str = ""):
        if grant_type != "client_credential" or appid != MP_APP_ID or secret != MP_APP_SECRET:
            return answer(INVALID_CREDENTIAL)
        token = issue_token("mp")
        return {"access_token": token["access_token"], "expires_in": token["expires_in"]}

    async def mp_message(request: Request, access_token: str) -> tuple[dict, str] | dict:
        """(message, openid) of an official-account send, or the error answer WeChat would give."""
        message = await token_and_json(request, access_token, "mp")
        if "errcode" in message:
            return message
        openid = message.get("touser", "")
        if not isinstance(openid, str) or not openid.startswith("o"):
            return answer(INVALID_OPENID)
        return message, openid

    @app.post("/cgi-bin/message/template/send")
    async def mp_template_send(request: Request, access_token: str = ""):
        read = await mp_message(request, access_token)
        if isinstance(read, dict):
            return read
        message, openid = read
        if openid.startswith("o-unsubscribed"):  # the fake's readers who unfollowed the account
            return answer(REQUIRE_SUBSCRIBE)
        if not message.get("template_id") or not isinstance(message.get("data"), dict):
            return answer(INVALID_TEMPLATE_ID)
        if not all(isinstance(v, dict) and isinstance(v.get("value"), str) for v in message["data"].values()):
            return answer(Rejected(INVALID_PARAMETER, "every data field needs a string value"))
        msgid = len(mp_messages) + 1
        mp_messages.append({"received_at": time.time(), "msgid": msgid, "body": message})
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    @app.post("/cgi-bin/message/subscribe/send")
    async def mp_subscribe_send(request: Request, access_token: str = ""):
        read = await mp_message(request, access_token)
        if isinstance(read, dict):
            return read
        message, openid = read
        if openid.startswith("o-noconsent"):  # readers who gave no (or used up their) consent
            return answer(NO_SUBSCRIBE_CONSENT)
        if not message.get("template_id") or not isinstance(message.get("data"), dict):
            return answer(INVALID_TEMPLATE_ID)
        for key, field in message["data"].items():
            value = field.get("value") if isinstance(field, dict) else None
            limit = SUBSCRIBE_FIELD_LIMITS.get(key.rstrip("0123456789"))
            if not isinstance(value, str) or not value or (limit is not None and len(value) > limit):
                return answer(Rejected(ARGUMENT_INVALID, f"data.{key}.value"))
        mp_messages.append({"received_at": time.time(), "kind": "subscribe", "body": message})
        return {"errcode": 0, "errmsg": "ok"}

    @app.post("/sms/send")
    async def sms_send(request: Request):
        try:
            message = json.loads(await request.body())
            params = json.loads(message.get("template_param") or "{}")
        except (ValueError, UnicodeDecodeError, AttributeError):
            return {"Code": "isv.INVALID_JSON_PARAM", "Message": "JSON参数不合法"}
        phone = str(message.get("phone_numbers", ""))
        if not MOBILE.match(phone):
            return {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"}
        if not message.get("sign_name"):
            return {"Code": "isv.SMS_SIGNATURE_ILLEGAL", "Message": "签名不合法"}
        if not message.get("template_code"):
            return {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不合法"}
        window, now = sms_sent_at[phone], clock()
        while window and now - window[0] >= RATE_WINDOW_S:
            window.popleft()
        if len(window) >= SMS_PER_MINUTE:
            return {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控"}
        window.append(now)
        biz_id = secrets.token_hex(8)
        sms_messages.append(
            {"received_at": time.time(), "biz_id": biz_id, "phone": phone, "params": params, "body": message}
        )
        return {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": secrets.token_hex(8)}

    @app.post("/_fake/tokens/expire", status_code=204)
    async def expire_tokens():
        for token, (kind, _) in list(tokens.items()):
            tokens[token] = (kind, clock() - 1)

    @app.get("/_fake/stats")
    async def stats():
        return {
            "token_fetches": dict(token_fetches),
            "robot_messages": len(messages),
            "robot_keys": len({m["key"] for m in messages}),
            "robot_rate_limited": dict(rate_limited),
        }

    @app.get("/_fake/app/messages")
    async def list_app_messages():
        return app_messages

    @app.get("/_fake/mp/messages")
    async def list_mp_messages():
        return mp_messages

    @app.put("/_fake/pics/{name}", status_code=204)
    async def put_picture(name: str, request: Request):
        """Stand-in for WeChat's picture CDN (the PicUrl of an image message): tests put a picture here."""
        pictures[name] = (await request.body(), request.headers.get("content-type", "image/jpeg"))

    @app.get("/_fake/pics/{name}")
    async def get_picture(name: str):
        if name not in pictures:
            return Response(status_code=404)
        data, content_type = pictures[name]
        return Response(content=data, media_type=content_type)

    @app.get("/_fake/sms/messages")
    async def list_sms_messages():
        return sms_messages

    @app.get("/_fake/messages")
    async def list_messages(key: str | None = None):
        return [m for m in messages if key is None or m["key"] == key]

    @app.delete("/_fake/messages", status_code=204)
    async def clear_messages():
        for log in (messages, app_messages, mp_messages, sms_messages):
            log.clear()
        sent_at.clear()
        rate_limited.clear()
        failures.clear()
        sms_sent_at.clear()

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
    parser.add_argument("--token-ttl", type=float, default=7200.0, help="seconds an access_token lives")
    args = parser.parse_args()
    uvicorn.run(
        create_app(rate_limit_per_minute=args.rate_limit, token_ttl_s=args.token_ttl),
        host=args.host,
        port=args.port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
