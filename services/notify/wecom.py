"""WeCom group robot (企业微信群机器人) client: POST /cgi-bin/webhook/send?key=…

Errors come back as HTTP 200 with a non-zero errcode; rate limiting (20 messages a minute per
robot) and system-busy answers are worth retrying, an invalid key or bad message is not.
"""

import httpx

RETRYABLE_ERRCODES = {-1, 45009}  # system busy; api freq out of limit
TEXT_MAX_BYTES = 2048


class WeComError(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(f"errcode {errcode}: {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg

    @property
    def retryable(self) -> bool:
        return self.errcode in RETRYABLE_ERRCODES


def text_message(content: str, *, mentioned_mobiles: list[str] = ()) -> dict:
    """A text message that @-mentions people by mobile number; content cut to the byte limit."""
    encoded = content.encode()
    if len(encoded) > TEXT_MAX_BYTES:
        content = encoded[: TEXT_MAX_BYTES - 3].decode(errors="ignore") + "…"
    return {"msgtype": "text", "text": {"content": content, "mentioned_mobile_list": list(mentioned_mobiles)}}


class WeComRobotClient:
    def __init__(self, base_url: str, http: httpx.AsyncClient):
        self.base_url, self.http = base_url.rstrip("/"), http

    async def send(self, *, key: str, message: dict) -> None:
        """Send one message; raises WeComError on a non-zero errcode, httpx errors on transport failure."""
        response = await self.http.post(f"{self.base_url}/cgi-bin/webhook/send", params={"key": key}, json=message)
        response.raise_for_status()
        answer = response.json()
        if answer.get("errcode", -1) != 0:
            raise WeComError(answer.get("errcode", -1), answer.get("errmsg", ""))
