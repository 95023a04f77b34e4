"""SMS behind a small interface, for reporters who reached us without WeChat.

`SmsGateway.send(phone=, template=, params=)` is all notify needs. `HttpSmsGateway` speaks the
request/answer shape common to Chinese SMS providers (a signature name, a template code, JSON
template parameters; an answer `Code` of "OK" or an error code); a provider with another shape
gets its own small class with the same method.
"""

import json
import re
from typing import Protocol

import httpx

from services.notify.channels import DeliveryError

# Flow control and provider-side trouble pass; a bad number, template or signature does not.
RETRYABLE_CODES = {"isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "SignatureNonceUsed"}
MOBILE = re.compile(r"^1[3-9]\d{9}$")


class SmsGateway(Protocol):
    async def send(self, *, phone: str, template: str, params: dict[str, str]) -> None: ...


class SmsError(DeliveryError):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}", code=code, retryable=code in RETRYABLE_CODES)


class HttpSmsGateway:
    def __init__(self, base_url: str, http: httpx.AsyncClient, *, sign_name: str):
        self.base_url, self.http, self.sign_name = base_url.rstrip("/"), http, sign_name

    async def send(self, *, phone: str, template: str, params: dict[str, str]) -> None:
        """Send one templated SMS; raises SmsError."""
        if not MOBILE.match(phone):  # refuse before paying for a provider round trip
            raise SmsError("isv.MOBILE_NUMBER_ILLEGAL", f"not a mainland mobile number: {phone[:3]}…")
        response = await self.http.post(
            f"{self.base_url}/sms/send",
            json={
                "phone_numbers": phone,
                "sign_name": self.sign_name,
                "template_code": template,
                "template_param": json.dumps(params, ensure_ascii=False),
            },
        )
        response.raise_for_status()
        answer = response.json()
        if answer.get("Code") != "OK":
            raise SmsError(str(answer.get("Code")), str(answer.get("Message", "")))
