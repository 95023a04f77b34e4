"""The channels a notification can go out on, behind one `send(channel, target, body)`.

wecom_robot: a group robot key and a robot message; wecom_app: WeCom userids ("a|b") and a
text/markdown message; wecom_card_update: a WeCom userid and the update of the template card they
clicked (its response_code and the button's new text); aibot_reply: the AI bot's one-use
response_url and a markdown reply; wechat_template / wechat_subscribe: an official-account openid and a
template or subscribe message; sms: an encrypted mobile number (shared.phones) and an SMS template with its parameters;
sms_staff: a staff member's mobile from the department directory (configuration, not a reporter's
number) and an SMS template.
"""

import httpx

from shared.phones import PhoneKeys, phone_from_token


class DeliveryError(Exception):
    """A channel refused a message; `retryable` says whether trying again later can help."""

    def __init__(self, message: str, *, code: str, retryable: bool):
        super().__init__(message)
        self.code, self.retryable = code, retryable


class Senders:
    def __init__(self, *, robot, app, official_account, sms, phone_keys: PhoneKeys, aibot=None):
        self.robot, self.app, self.official_account, self.sms = robot, app, official_account, sms
        self.aibot = aibot
        self.phone_keys = phone_keys  # SMS targets are encrypted phones, read back only here

    async def send(self, *, channel: str, target: str, body: dict) -> str | None:
        """Deliver one message; returns the channel's message id where the channel confirms it
        later (a template message's msgid), else None. Raises DeliveryError (or httpx.HTTPError,
        which is retryable)."""
        if channel == "wecom_robot":
            await self.robot.send(key=target, message=body)
        elif channel == "wecom_app":
            answer = await self.app.send(touser=target, message=body) or {}
            if target in str(answer.get("invaliduser") or "").split("|"):
                # WeCom accepted the message for the others; this member was not reached.
                raise DeliveryError(f"invalid user {target}", code="invaliduser", retryable=False)
        elif channel == "wecom_card_update":
            await self.app.update_template_card(userid=target, update=body)
        elif channel == "aibot_reply":
            await self.aibot.reply(response_url=target, message=body)
        elif channel == "wechat_template":
            answer = await self.official_account.send_template(openid=target, message=body) or {}
            return str(answer["msgid"]) if answer.get("msgid") is not None else None
        elif channel == "wechat_subscribe":
            await self.official_account.send_subscribe(openid=target, message=body)
        elif channel == "sms":
            await self.sms.send(
                phone=phone_from_token(target, self.phone_keys), template=body["template"], params=body["params"]
            )
        elif channel == "sms_staff":
            await self.sms.send(phone=target, template=body["template"], params=body["params"])
        else:
            raise DeliveryError(f"unknown channel {channel}", code="unknown_channel", retryable=False)
        return None


def as_delivery_error(exc: Exception) -> DeliveryError:
    """Transport failures (timeouts, refused connections, 5xx) are worth retrying; 4xx are not."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return DeliveryError(f"HTTP {status}", code=f"http_{status}", retryable=status >= 500 or status == 429)
    return DeliveryError(f"{type(exc).__name__}: {exc}", code="transport", retryable=True)
