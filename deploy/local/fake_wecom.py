"""A local stand-in for WeCom's group robot webhook (企业微信群机器人), speaking its wire protocol.

`POST /cgi-bin/webhook/send?key=…` validates a message the way WeCom documents it and answers
with HTTP 200 and an errcode, including the per-robot limit of 20 messages a minute. What it
accepted can be read back at `GET /_fake/messages?key=…` (and cleared with DELETE), and
`POST /_fake/failures` makes the next sends to a key fail with a chosen errcode, so the real
client code can be tested against transient and permanent errors; the keys `wecom_app`,
`wechat_template` and `sms` fail the next sends of that channel instead (an SMS failure answers
`Code` "isv.INJECTED_<errcode>").

It also stands in for the rest of what notify talks to:
- the WeCom self-built application: `GET /cgi-bin/gettoken` (an access_token that expires) and
  `POST /cgi-bin/message/send` (42001 for an expired token, 40014 for an unknown one, 81013 when
  no recipient is valid; text, markdown and 按钮交互型 template cards, 42014 for a card whose
  task_id was used before, is empty or is not 1-128 bytes of [A-Za-z0-9_@-]);
  `POST /_fake/tokens/expire` expires every token now;
- the official account: `GET /cgi-bin/token`, `POST /cgi-bin/message/template/send` (43004 for
  a reader who does not follow the account) and `POST /cgi-bin/message/subscribe/send` (43101
  without consent, 47003 for a field over its kind's length);
- WeCom OAuth2 (网页授权) for H5 pages: `GET /connect/oauth2/authorize` (open.weixin.qq.com's page:
  it sends the browser back to `redirect_uri?code=…&state=…` as the member set with
  `POST /_fake/oauth/user`, the person "holding the phone") and `GET /cgi-bin/auth/getuserinfo`
  (the code works once, for 5 minutes, else 40029; the legacy `/cgi-bin/user/getuserinfo` answers
  with capitalised `UserId`); `POST /_fake/oauth/codes/expire` ages every code past its 5 minutes;
- an SMS gateway: `POST /sms/send` (a `Code` of "OK" or an error code, 5 a minute per number);
- WeChat's side of callbacks: `encrypt`/`callback_request`/`aibot_callback_request`/
  `url_check_request` build requests exactly as WeCom (application and AI bot) and the official
  account sign and encrypt them (WXBizMsgCrypt); `template_card_event_xml` is a click on a
  template card's button;
- template cards staff click: `POST /_fake/card-clicks` issues a click's one-use ResponseCode and
  sends the signed, encrypted template_card_event to a callback URL (or returns it to post);
  `POST /cgi-bin/message/update_template_card` takes each code once, within 72 hours, and what it
  changed is read back at `/_fake/app/card-updates`;
- the AI bot (智能机器人): `POST /_fake/aibot/messages` sends a group member's @-mention (text, or
  `mixed` with a photo served AES-encrypted with the bot's key at `/_fake/aibot/files/…`, as
  WeCom serves them for 5 minutes) with a one-use `response_url`, `POST /cgi-bin/aibot/response`
  takes one markdown reply per URL within an hour, read back at `/_fake/aibot/replies`.
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
from urllib.parse import urlencode, urlsplit

import httpx
import uvicorn
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import RedirectResponse

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
# WeCom OAuth2: a code works once and for 5 minutes; state is at most 128 letters and digits.
INVALID_CODE = (40029, "invalid code")
REDIRECT_UNAUTHORIZED = (50001, "redirect_uri unauthorized")
OAUTH_CODE_TTL_S = 300.0
OAUTH_STATE = re.compile(r"^[A-Za-z0-9]{0,128}$")

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


def template_finish_xml(*, openid: str, msgid: int | str, status: str = "success", to_user: str = "gh_gridlink") -> str:
    """The official account's event reporting a template message's fate (TEMPLATESENDJOBFINISH):
    Status "success", "failed:user block" or "failed: system failed"."""
    return (
        f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{msgid}</MsgID>"
        f"<Status><![CDATA[{status}]]></Status></xml>"
    )


def template_card_event_xml(
    *,
    from_user: str,
    event_key: str,
    task_id: str,
    response_code: str,
    create_time: int | None = None,
    card_type: str = "button_interaction",
) -> str:
    """The decrypted XML of a click on a template card's button (Event=template_card_event): no
    MsgId, the button's key, the card's task id and the click's one-use ResponseCode."""
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{from_user}]]></FromUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{event_key}]]></EventKey>"
        f"<TaskId><![CDATA[{task_id}]]></TaskId><CardType><![CDATA[{card_type}]]></CardType>"
        f"<ResponseCode><![CDATA[{response_code}]]></ResponseCode><AgentID>{AGENT_ID}</AgentID>"
        "<SelectedItems></SelectedItems></xml>"
    )


def encrypt_file(data: bytes, *, encoding_aes_key: str = WECOM_AES_KEY) -> bytes:
    """A file as the AI bot's media URL serves it: AES-256-CBC with the callback key, IV = the key's
    first 16 bytes, PKCS#7 padding to 32-byte blocks."""
    key = base64.b64decode(encoding_aes_key + "=")
    pad = 32 - len(data) % 32
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return encryptor.update(data + bytes([pad]) * pad) + encryptor.finalize()


CARD_CODE_TTL_S = 72 * 3600  # update_template_card: each response_code once, within 72 hours (doc of 2025-07)
AIBOT_URL_TTL_S = 3600  # the AI bot's response_url: one call, within an hour
AIBOT_MARKDOWN_MAX_BYTES = 20480
AIBOT_FILE_TTL_S = 300  # the AI bot's media URLs are valid 5 minutes
# Not stated by WeCom for a used or expired code: the fake answers the general "invalid parameter".
CODE_USED = (40058, "invalid parameter: response_code used or expired")


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
    trusted_domain: str | None = None,
) -> FastAPI:
    """The fake server; valid_keys=None accepts any non-empty key. `trusted_domain`: the WeCom
    application's 可信域名 (host[:port]) OAuth2 may return to; None accepts any."""
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
    # OAuth2: who holds the phone (a member's userid, or a non-member's openid), and the codes given.
    oauth_user: dict[str, str] = {"userid": "zhangsan"}
    oauth_codes: dict[str, tuple[dict[str, str], float]] = {}  # code -> (identity, expires at on `clock`)
    # One-use codes the fake issued: response_code → (kind card|aibot, issued at, details); used ones go.
    codes: dict[str, tuple[str, float, dict]] = {}
    card_updates: list[dict] = []
    aibot_replies: list[dict] = []
    aibot_files: dict[str, tuple[bytes, float]] = {}

    def issue_code(kind: str, **details) -> str:
        code = secrets.token_urlsafe(24)
        codes[code] = (kind, clock(), details)
        return code

    def take_code(code: str, kind: str, ttl_s: float) -> dict | None:
        """The details of an unused, unexpired code of this kind, now used up; None otherwise."""
        found = codes.get(code)
        if found is None or found[0] != kind or clock() - found[1] > ttl_s:
            return None
        del codes[code]
        return found[2]

    async def deliver(url: str | None, params: dict, body: str, content_type: str) -> int | None:
        """Post a built callback to notify's URL (None: the caller posts it)."""
        if not url:
            return None
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.post(url, params=params, content=body, headers={"content-type": content_type})
        return response.status_code

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
        if failures["wecom_app"]:
            errcode, errmsg = failures["wecom_app"].popleft()
            return {"errcode": errcode, "errmsg": errmsg}
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

    @app.post("/cgi-bin/message/update_template_card")
    async def wecom_update_template_card(request: Request, access_token: str = ""):
        """Update a clicked card: agentid, the click's response_code (once) and `button.replace_name`
        or a whole `template_card`; userids/partyids/tagids/atall say whose cards change."""
        message = await token_and_json(request, access_token, "wecom")
        if "errcode" in message:
            return message
        if message.get("agentid") != AGENT_ID:
            return answer(INVALID_AGENTID)
        button, card = message.get("button"), message.get("template_card")
        replace_name = button.get("replace_name") if isinstance(button, dict) else None
        if not (isinstance(replace_name, str) and replace_name) and not isinstance(card, dict):
            return answer(Rejected(INVALID_PARAMETER, "button.replace_name or template_card is required"))
        for field, limit in (("userids", 1000), ("partyids", 100), ("tagids", 100)):
            value = message.get(field, [])
            if not isinstance(value, list) or len(value) > limit:
                return answer(Rejected(INVALID_PARAMETER, f"{field}: a list of at most {limit}"))
        details = take_code(str(message.get("response_code", "")), "card", CARD_CODE_TTL_S)
        if details is None:
            return answer(CODE_USED)
        card_updates.append({"received_at": time.time(), "body": message, "click": details})
        return {"errcode": 0, "errmsg": "ok", "invaliduser": []}

    @app.post("/_fake/card-clicks")
    async def card_click(request: Request):
        """A member clicks a card's button: a new ResponseCode, and the signed, encrypted
        template_card_event sent to `callback_url` (notify's /api/v1/callbacks/wecom), or returned."""
        spec = json.loads(await request.body())
        code = issue_code("card", userid=spec["userid"], task_id=spec["task_id"], event_key=spec["event_key"])
        xml = template_card_event_xml(
            from_user=spec["userid"],
            event_key=spec["event_key"],
            task_id=spec["task_id"],
            response_code=code,
            create_time=spec.get("create_time"),
        )
        params, body = callback_request(xml)
        status = await deliver(spec.get("callback_url"), params, body, "application/xml")
        return {"response_code": code, "params": params, "body": body, "status_code": status}

    @app.post("/_fake/aibot/messages")
    async def aibot_send(request: Request):
        """A group member @-mentions the AI bot: `text`, and with `image` (base64) a `mixed` message
        whose image URL serves the photo encrypted with the bot's key. Sent to `callback_url`
        (notify's /api/v1/callbacks/wecom-aibot) signed and encrypted, or returned."""
        spec = json.loads(await request.body())
        base = str(request.base_url).rstrip("/")
        response_url = f"{base}/cgi-bin/aibot/response?response_code={issue_code('aibot', userid=spec['userid'])}"
        text = f"@{spec.get('bot_name', '网格通')} {spec['text']}"
        message: dict = {
            "msgid": spec.get("msgid") or secrets.token_hex(16),
            "aibotid": spec.get("aibotid", "aib-gridlink"),
            "chatid": spec.get("chatid", "wrk-group-1"),
            "chattype": "group",
            "from": {"userid": spec["userid"]},
            "response_url": response_url,
        }
        if spec.get("image"):
            name = secrets.token_hex(8)
            aibot_files[name] = (encrypt_file(base64.b64decode(spec["image"])), clock())
            message |= {
                "msgtype": "mixed",
                "mixed": {
                    "msg_item": [
                        {"msgtype": "text", "text": {"content": text}},
                        {"msgtype": "image", "image": {"url": f"{base}/_fake/aibot/files/{name}"}},
                    ]
                },
            }
        else:
            message |= {"msgtype": "text", "text": {"content": text}}
        params, body = aibot_callback_request(message)
        status = await deliver(spec.get("callback_url"), params, body, "application/json")
        return {"message": message, "params": params, "body": body, "status_code": status}

    @app.get("/_fake/aibot/files/{name}")
    async def aibot_file(name: str):
        found = aibot_files.get(name)
        if found is None or clock() - found[1] > AIBOT_FILE_TTL_S:
            return Response(status_code=404)
        return Response(content=found[0], media_type="application/octet-stream")

    @app.post("/cgi-bin/aibot/response")
    async def aibot_response(request: Request, response_code: str = ""):
        """The AI bot's active reply: plain JSON (not encrypted), markdown ≤20480 bytes, one call per
        URL within an hour (template_card only answers single chats, never a group's message)."""
        try:
            message = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return answer(INVALID_JSON)
        if not isinstance(message, dict) or message.get("msgtype") != "markdown":
            return answer(Rejected(INVALID_MSGTYPE, str(isinstance(message, dict) and message.get("msgtype"))))
        content = (message.get("markdown") or {}).get("content") if isinstance(message.get("markdown"), dict) else None
        if not isinstance(content, str) or not content:
            return answer(EMPTY_CONTENT)
        if len(content.encode()) > AIBOT_MARKDOWN_MAX_BYTES:
            return answer(CONTENT_TOO_LONG)
        details = take_code(response_code, "aibot", AIBOT_URL_TTL_S)
        if details is None:
            return answer(CODE_USED)
        aibot_replies.append({"received_at": time.time(), "body": message, "to": details})
        return answer(OK)

    @app.get("/_fake/app/card-updates")
    async def list_card_updates():
        return card_updates

    @app.get("/_fake/aibot/replies")
    async def list_aibot_replies():
        return aibot_replies

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
        if failures["wechat_template"]:
            errcode, errmsg = failures["wechat_template"].popleft()
            return {"errcode": errcode, "errmsg": errmsg}
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
        if failures["sms"]:
            errcode, errmsg = failures["sms"].popleft()
            return {"Code": f"isv.INJECTED_{errcode}", "Message": errmsg}
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

    @app.get("/connect/oauth2/authorize")
    async def oauth_authorize(
        appid: str = "",
        redirect_uri: str = "",
        response_type: str = "",
        scope: str = "",
        state: str = "",
        agentid: str = "",
    ):
        """WeCom's authorize page, as the WeCom browser answers it for a logged-in member: silently
        back to redirect_uri with a one-time code (snsapi_base), or an error page."""

        def page(text: str) -> Response:
            return Response(f"<!doctype html><title>企业微信</title><p>{text}</p>", 400, media_type="text/html")

        target = urlsplit(redirect_uri)
        if appid != CORP_ID:
            return page("参数错误：appid 不是本企业的 CorpID")
        if response_type != "code" or scope not in ("snsapi_base", "snsapi_privateinfo"):
            return page("参数错误：response_type 须为 code，scope 须为 snsapi_base 或 snsapi_privateinfo")
        if not OAUTH_STATE.match(state):
            return page("参数错误：state 只能是 a-zA-Z0-9，不超过 128 字节")
        if agentid and agentid != str(AGENT_ID):
            return page("参数错误：agentid 不是本应用")
        if target.scheme not in ("http", "https") or not target.netloc:
            return page("参数错误：redirect_uri")
        if trusted_domain is not None and target.netloc != trusted_domain:
            return page("redirect_uri需使用应用可信域名")
        code = secrets.token_urlsafe(24)
        oauth_codes[code] = (dict(oauth_user), clock() + OAUTH_CODE_TTL_S)
        query = urlencode({"code": code, "state": state})
        return RedirectResponse(f"{redirect_uri}{'&' if target.query else '?'}{query}", status_code=302)

    def trade_code(access_token: str, code: str) -> dict[str, str] | tuple[int, str]:
        if error := token_error(access_token, "wecom"):
            return error
        identity, expires_at = oauth_codes.pop(code, ({}, 0.0))  # once, whatever the outcome
        if not identity or clock() >= expires_at:
            return INVALID_CODE
        return identity

    @app.get("/cgi-bin/auth/getuserinfo")
    async def oauth_getuserinfo(access_token: str = "", code: str = ""):
        identity = trade_code(access_token, code)
        if isinstance(identity, tuple):
            return answer(identity)
        return answer(OK) | identity  # a member: userid; anyone else: openid

    @app.get("/cgi-bin/user/getuserinfo")
    async def oauth_getuserinfo_legacy(access_token: str = "", code: str = ""):
        """The older path, still called by wechatpy: the same answer with capitalised names."""
        identity = trade_code(access_token, code)
        if isinstance(identity, tuple):
            return answer(identity)
        if "userid" in identity:
            return answer(OK) | {"UserId": identity["userid"], "DeviceId": ""}
        return answer(OK) | {"OpenId": identity["openid"], "DeviceId": ""}

    @app.post("/_fake/oauth/user", status_code=204)
    async def set_oauth_user(request: Request):
        """Who holds the phone from now on: {"userid": …} (a member) or {"openid": …} (not one)."""
        body = json.loads(await request.body())
        oauth_user.clear()
        oauth_user.update({k: str(v) for k, v in body.items() if k in ("userid", "openid")})

    @app.post("/_fake/oauth/codes/expire", status_code=204)
    async def expire_codes():
        for code, (identity, _) in list(oauth_codes.items()):
            oauth_codes[code] = (identity, clock() - 1)

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
        for log in (messages, app_messages, mp_messages, sms_messages, card_updates, aibot_replies):
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
    parser.add_argument("--trusted-domain", default=None, help="the app's 可信域名 (host[:port]) for OAuth2")
    args = parser.parse_args()
    uvicorn.run(
        create_app(
            rate_limit_per_minute=args.rate_limit, token_ttl_s=args.token_ttl, trusted_domain=args.trusted_domain
        ),
        host=args.host,
        port=args.port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
