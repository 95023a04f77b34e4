"""WeChat official account (公众号) client: template or subscribe messages to a reporter's openid.

The access_token comes from /cgi-bin/token (client_credential), is cached and refreshed like
WeCom's; 43004 (the reader does not follow the account), 43101 (no subscribe consent left) and an
invalid openid, template or field value are permanent, a busy system or the API quota are worth
retrying. Subscribe messages need the reader's one-time consent per message and limit each field
by its kind (thing ≤ 20 characters, phrase ≤ 5, character_string ≤ 32): the bodies are built, and
cut to fit, in services.notify.messages.
"""

import time

import httpx

from services.notify.channels import DeliveryError
from services.notify.wecom import AccessTokenCache, WeComError, call_with_token

RETRYABLE_ERRCODES = {-1, 45009, 45047}  # system busy; api quota reached; out of send limit


class WeChatError(DeliveryError):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(f"errcode {errcode}: {errmsg}", code=str(errcode), retryable=errcode in RETRYABLE_ERRCODES)
        self.errcode, self.errmsg = errcode, errmsg


class WeChatOfficialAccountClient:
    def __init__(self, base_url: str, http: httpx.AsyncClient, *, app_id: str, app_secret: str, clock=time.monotonic):
        self.base_url, self.http, self.app_id, self.app_secret = base_url.rstrip("/"), http, app_id, app_secret
        self.tokens = AccessTokenCache(self._fetch_token, clock=clock)

    async def _fetch_token(self) -> tuple[str, float]:
        response = await self.http.get(
            f"{self.base_url}/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.app_id, "secret": self.app_secret},
        )
        response.raise_for_status()
        answer = response.json()
        if "access_token" not in answer:
            raise WeChatError(answer.get("errcode", -1), answer.get("errmsg", ""))
        return answer["access_token"], float(answer.get("expires_in", 7200))

    async def send_template(self, *, openid: str, message: dict) -> dict:
        """Send a template message; raises WeChatError."""
        return await self._send("/cgi-bin/message/template/send", {**message, "touser": openid})

    async def send_subscribe(self, *, openid: str, message: dict) -> dict:
        """Send a subscribe message (needs the reader's consent); raises WeChatError."""
        return await self._send("/cgi-bin/message/subscribe/send", {**message, "touser": openid})

    async def _send(self, path: str, body: dict) -> dict:
        async def post(token: str) -> dict:
            response = await self.http.post(f"{self.base_url}{path}", params={"access_token": token}, json=body)
            response.raise_for_status()
            return response.json()

        try:
            return await call_with_token(self.tokens, post)
        except WeComError as exc:  # same errcode envelope; report it with the official account's retry rules
            raise WeChatError(exc.errcode, exc.errmsg) from None
