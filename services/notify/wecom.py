"""WeCom clients: the group robot (企业微信群机器人) and the self-built application (自建应用).

Errors come back as HTTP 200 with a non-zero errcode. For the robot, rate limiting (20 messages a
minute per robot) and system-busy answers are worth retrying, an invalid key or bad message is
not. The application needs an access_token: fetched once, cached until shortly before it expires
and fetched again when WeCom answers that it expired (42001) or is invalid (40014).
"""

import asyncio
import re
import time
from collections.abc import Awaitable, Callable

import httpx

from services.notify.channels import DeliveryError
from services.notify.messages import IMAGE_MAX_BYTES, robot_image

RETRYABLE_ERRCODES = {-1, 45009, 45033}  # system busy; api freq out of limit; too many concurrent calls
TOKEN_ERRCODES = {40014, 42001, 40001}  # invalid access_token; access_token expired; invalid credential
TASK_ID_EXISTS = 42014  # template card: "taskid has existed or empty or exceed max len"
VALID_TASK_ID = re.compile(r"[A-Za-z0-9_@-]{1,128}")  # so 42014 can only mean "has existed"


class WeComError(DeliveryError):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(f"errcode {errcode}: {errmsg}", code=str(errcode), retryable=errcode in RETRYABLE_ERRCODES)
        self.errcode, self.errmsg = errcode, errmsg


def _check(answer: dict) -> dict:
    errcode = answer.get("errcode", -1)
    if errcode != 0:
        raise WeComError(errcode, answer.get("errmsg", ""))
    return answer


class WeComRobotClient:
    def __init__(self, base_url: str, http: httpx.AsyncClient):
        self.base_url, self.http = base_url.rstrip("/"), http

    async def send(self, *, key: str, message: dict) -> None:
        """Send one message; raises WeComError on a non-zero errcode, httpx errors on transport failure."""
        if message.get("msgtype") == "image" and "url" in message.get("image", {}):
            message = await self._image(message["image"]["url"])
        response = await self.http.post(f"{self.base_url}/cgi-bin/webhook/send", params={"key": key}, json=message)
        response.raise_for_status()
        _check(response.json())

    async def _image(self, url: str) -> dict:
        """The picture at `url` as an image message (a link that expired or a picture too big for
        WeCom is refused for good; the server being unavailable is worth retrying)."""
        response = await self.http.get(url)
        if response.status_code >= 400:
            raise DeliveryError(
                f"image link answered HTTP {response.status_code}",
                code=f"image_http_{response.status_code}",
                retryable=response.status_code >= 500,
            )
        if len(response.content) > IMAGE_MAX_BYTES:
            raise DeliveryError(
                f"image is {len(response.content)} bytes, WeCom takes {IMAGE_MAX_BYTES}",
                code="image_too_large",
                retryable=False,
            )
        return robot_image(response.content)


class AccessTokenCache:
    """One access_token shared by every sender: fetched when missing or about to expire, at most
    one fetch at a time (gettoken is rate limited), dropped when the API says it is no longer valid."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[tuple[str, float]]],
        *,
        clock=time.monotonic,
        refresh_margin_s: float = 300.0,
    ):
        self.fetch, self.clock, self.margin = fetch, clock, refresh_margin_s
        self.token: str | None = None
        self.expires_at = 0.0
        self.lock = asyncio.Lock()

    async def get(self) -> str:
        """A token valid for at least the refresh margin (fetched only when needed)."""
        async with self.lock:
            if self.token is None or self.clock() >= self.expires_at - self.margin:
                token, expires_in = await self.fetch()
                self.token, self.expires_at = token, self.clock() + expires_in
            return self.token

    def invalidate(self, token: str) -> None:
        """Forget `token` (unless another sender already replaced it)."""
        if self.token == token:
            self.token = None


async def call_with_token(tokens: AccessTokenCache, call: Callable[[str], Awaitable[dict]]) -> dict:
    """Run an API call with the cached token; on an expired/invalid token fetch a new one and retry once."""
    for attempt in (1, 2):
        token = await tokens.get()
        answer = await call(token)
        if answer.get("errcode", 0) in TOKEN_ERRCODES and attempt == 1:
            tokens.invalidate(token)
            continue
        return _check(answer)
    raise AssertionError("unreachable")


class WeComAppClient:
    """Messages from the self-built application to members (by WeCom userid)."""

    def __init__(
        self,
        base_url: str,
        http: httpx.AsyncClient,
        *,
        corp_id: str,
        corp_secret: str,
        agent_id: int,
        clock=time.monotonic,
    ):
        self.base_url, self.http, self.agent_id = base_url.rstrip("/"), http, agent_id
        self.corp_id, self.corp_secret = corp_id, corp_secret
        self.tokens = AccessTokenCache(self._fetch_token, clock=clock)

    async def _fetch_token(self) -> tuple[str, float]:
        response = await self.http.get(
            f"{self.base_url}/cgi-bin/gettoken", params={"corpid": self.corp_id, "corpsecret": self.corp_secret}
        )
        response.raise_for_status()
        answer = _check(response.json())
        return answer["access_token"], float(answer.get("expires_in", 7200))

    async def send(self, *, touser: str, message: dict) -> dict:
        """Send a text, markdown or template-card message to members ("a|b"); raises WeComError, also
        when none was valid."""
        body = {**message, "touser": touser, "agentid": self.agent_id}

        async def post(token: str) -> dict:
            response = await self.http.post(
                f"{self.base_url}/cgi-bin/message/send", params={"access_token": token}, json=body
            )
            response.raise_for_status()
            return response.json()

        try:
            return await call_with_token(self.tokens, post)
        except WeComError as error:
            # A template card's task_id is unique per application: 42014 for ours means an earlier
            # attempt reached WeCom (its answer was lost) and the card is there — delivered.
            task_id = (message.get("template_card") or {}).get("task_id") or ""
            if error.errcode == TASK_ID_EXISTS and VALID_TASK_ID.fullmatch(task_id):
                return {"errcode": 0, "errmsg": "ok", "duplicate_task_id": True}
            raise

    async def update_template_card(self, *, userid: str, update: dict) -> dict:
        """Update the template card a member clicked (message/update_template_card): `update` holds
        the click's one-use response_code and the new `button` (or a whole `template_card`)."""
        body = {**update, "userids": [userid], "agentid": self.agent_id}

        async def post(token: str) -> dict:
            response = await self.http.post(
                f"{self.base_url}/cgi-bin/message/update_template_card", params={"access_token": token}, json=body
            )
            response.raise_for_status()
            return response.json()

        return await call_with_token(self.tokens, post)


class WeComAiBotClient:
    """Replies of the AI bot (智能机器人) through a callback's response_url: a plain POST (not
    encrypted), one per URL, within an hour of the message."""

    def __init__(self, http: httpx.AsyncClient):
        self.http = http

    async def reply(self, *, response_url: str, message: dict) -> None:
        response = await self.http.post(response_url, json=message)
        response.raise_for_status()
        _check(response.json())
