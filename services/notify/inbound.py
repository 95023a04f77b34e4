"""What a verified, decrypted platform callback says: a message for intake (from the official
account, the WeCom application, or the AI bot mentioned in a group), or the official account's
receipt for a template message; and whether a callback's timestamp is fresh. Pure: callbacks.py
checks signatures and nonces, decrypts (crypto.py), stores and publishes."""

from datetime import UTC, datetime
from uuid import uuid5

from services.notify.domain import NOTIFICATION_NS

INBOUND_TYPES = {"text", "image", "location"}


def is_fresh(timestamp: str, *, now: float, max_age_s: float) -> bool:
    """A callback's timestamp (epoch seconds) lies within max_age of now, either way."""
    try:
        return abs(now - int(timestamp)) <= max_age_s
    except (TypeError, ValueError):
        return False


def inbound_message(fields: dict[str, str], *, source: str) -> dict | None:
    """MessageReceived fields from a decrypted callback, or None for what intake does not take
    (events such as subscribe, voice, video)."""
    msg_type = fields.get("MsgType", "")
    if msg_type not in INBOUND_TYPES or not fields.get("MsgId") or not fields.get("FromUserName"):
        return None
    message = {
        "message_id": uuid5(NOTIFICATION_NS, f"inbound|{source}|{fields['MsgId']}"),
        "source": source,
        "msg_id": fields["MsgId"],
        "from_user": fields["FromUserName"],
        "to_user": fields.get("ToUserName", ""),
        "msg_type": msg_type,
        "agent_id": fields.get("AgentID") or None,
    }
    try:
        message["sent_at"] = datetime.fromtimestamp(int(fields.get("CreateTime", "")), UTC)
    except ValueError:
        return None
    if msg_type == "text":
        message["content"] = fields.get("Content", "")
    elif msg_type == "image":
        message |= {"pic_url": fields.get("PicUrl"), "media_id": fields.get("MediaId")}
    else:
        try:
            message |= {"lat": float(fields["Location_X"]), "lng": float(fields["Location_Y"])}
        except (KeyError, ValueError):
            return None
        message |= {"label": fields.get("Label") or None, "datum": "gcj02"}
    return message


def template_receipt(fields: dict[str, str]) -> tuple[str, bool] | None:
    """The official account's report on a template message (event TEMPLATESENDJOBFINISH): its
    msgid and whether it reached the reader (Status "success"; "failed:user block" and
    "failed: system failed" did not). None for any other message."""
    if fields.get("MsgType") != "event" or fields.get("Event") != "TEMPLATESENDJOBFINISH" or not fields.get("MsgID"):
        return None
    return fields["MsgID"], fields.get("Status") == "success"


def aibot_message(data: dict, *, received_at: datetime) -> dict | None:
    """MessageReceived fields from a decrypted WeCom AI-bot (智能机器人) callback: someone @-mentioned
    the bot in a group (or wrote to it). Its JSON carries no send time, so the receipt time stands in."""
    msg_type, sender = data.get("msgtype"), (data.get("from") or {}).get("userid")
    if msg_type not in {"text", "image"} or not data.get("msgid") or not sender:
        return None
    group = data.get("chattype") == "group" and data.get("chatid")
    source = "wecom_group" if group else "wecom_aibot"
    message = {
        "message_id": uuid5(NOTIFICATION_NS, f"inbound|{source}|{data['msgid']}"),
        "source": source,
        "msg_id": data["msgid"],
        "from_user": sender,
        "to_user": data.get("aibotid", ""),
        "msg_type": msg_type,
        "group_id": data.get("chatid") if group else None,
        "response_url": data.get("response_url"),
        "sent_at": received_at,
    }
    if msg_type == "text":
        message["content"] = (data.get("text") or {}).get("content", "")
    else:
        message["pic_url"] = (data.get("image") or {}).get("url")
    return message
