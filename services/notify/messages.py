"""The message bodies each channel accepts, built from text we already wrote: group-robot text,
markdown and news; application text; official-account template and subscribe messages; SMS
templates. Pure: the domain writes messages with these, the channel clients only send them.
"""

import base64
import hashlib
from collections.abc import Sequence

TEXT_MAX_BYTES = 2048  # WeCom's limit for a text message's content
MARKDOWN_MAX_BYTES = 4096
IMAGE_MAX_BYTES = 2 * 1024 * 1024  # a robot's image message, before base64
# A subscribe message's value per field kind, in characters (thing ≤ 20, phrase ≤ 5, …).
SUBSCRIBE_FIELD_LIMITS = {"thing": 20, "phrase": 5, "character_string": 32, "name": 10, "number": 32}


def _cut(content: str, limit: int) -> str:
    encoded = content.encode()
    if len(encoded) <= limit:
        return content
    return encoded[: limit - 3].decode(errors="ignore") + "…"


# --- WeCom group robot ----------------------------------------------------------------------


def text_message(content: str, *, mentioned_mobiles: Sequence[str] = (), mentioned_users: Sequence[str] = ()) -> dict:
    """A text message that @-mentions people by mobile number or by WeCom user id (each once);
    content cut to the byte limit."""
    text = {"content": _cut(content, TEXT_MAX_BYTES), "mentioned_mobile_list": list(mentioned_mobiles)}
    if mentioned_users:
        text["mentioned_list"] = list(dict.fromkeys(mentioned_users))
    return {"msgtype": "text", "text": text}


def markdown_message(content: str) -> dict:
    """A markdown message (no @-mentions by mobile: WeCom only reads them in text messages)."""
    return {"msgtype": "markdown", "markdown": {"content": _cut(content, MARKDOWN_MAX_BYTES)}}


def news_message(*, title: str, description: str, url: str, picurl: str | None = None) -> dict:
    """A one-article news card (used for the before/after comparison picture of a closed case)."""
    article = {"title": title, "description": description, "url": url}
    if picurl:
        article["picurl"] = picurl
    return {"msgtype": "news", "news": {"articles": [article]}}


def robot_image_link(url: str) -> dict:
    """An image message whose picture is still at `url`: the robot client fetches it when sending
    and sends it as WeCom wants it (base64 and md5 of the JPG/PNG bytes, at most 2 MB)."""
    return {"msgtype": "image", "image": {"url": url}}


def robot_image(data: bytes) -> dict:
    """An image message: the picture's bytes base64-encoded with their md5."""
    return {
        "msgtype": "image",
        "image": {"base64": base64.b64encode(data).decode(), "md5": hashlib.md5(data).hexdigest()},
    }


# --- WeCom self-built application -----------------------------------------------------------


def app_text_message(content: str) -> dict:
    """A text message from the application to a member (the client adds touser and agentid)."""
    return {"msgtype": "text", "text": {"content": content}}


# --- WeChat official account ----------------------------------------------------------------


def template_message(*, template_id: str, url: str | None, data: dict[str, str]) -> dict:
    """A template message body: each template field as {"value": …}."""
    message = {"template_id": template_id, "data": {k: {"value": v} for k, v in data.items()}}
    if url:
        message["url"] = url
    return message


def subscribe_message(*, template_id: str, page: str | None, data: dict[str, str]) -> dict:
    """A subscribe message body; each value cut to its field kind's limit (the kind is the key
    without its trailing number, e.g. thing3 → thing)."""
    fields = {}
    for key, value in data.items():
        limit = SUBSCRIBE_FIELD_LIMITS.get(key.rstrip("0123456789"))
        fields[key] = {"value": value if limit is None or len(value) <= limit else value[: limit - 1] + "…"}
    message = {"template_id": template_id, "data": fields}
    if page:
        message["page"] = page
    return message


# --- SMS ------------------------------------------------------------------------------------


def sms_message(*, template: str, params: dict[str, str]) -> dict:
    """An SMS: the provider's template code and its parameters (the gateway adds the signature)."""
    return {"template": template, "params": params}
