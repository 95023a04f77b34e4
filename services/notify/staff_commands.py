"""Staff acting on cases from WeCom: a click on a 派单 card's 接单/退回 button, or a command to the
AI bot (接单, 进展, 办结 with photos, 查), read as one staff command with what notify keeps to
answer it; where a command's photos are parked; and how dispatch's answer reaches them (the card's
button replaced, or a reply in the group). Pure: callbacks.py takes the callbacks in and fetches
the photos (crypto.py decrypts them), handlers.py takes dispatch's answers."""

import re
from datetime import UTC, datetime
from uuid import UUID, uuid5

from services.notify.domain import NOTIFICATION_NS, Outgoing
from services.notify.messages import app_text_message
from shared.wecom_cards import CARD_ACTIONS, BadCardKey, parse_card_button_key

# A command to the AI bot: its first word names the action, then the case number, then the words.
BOT_COMMANDS = {"接单": "acknowledge", "进展": "progress", "办结": "resolve", "查": "query"}
_BOT_COMMAND = re.compile(r"^(接单|进展|办结|查)[\s:：]+(\S+)(?:\s+(.*))?$", re.S)
_MENTION = re.compile(r"^(?:@\S+\s*)+")
# 退回 from a card carries no reason of its own: this one is recorded (dispatch requires one).
CARD_RETURN_REASON = "经办人在企业微信退回"


def staff_command_id(source: str, dedupe_key: str) -> UUID:
    """One id per click or bot message, however often WeCom delivers it."""
    return uuid5(NOTIFICATION_NS, f"staff|{source}|{dedupe_key}")


def strip_mention(text: str) -> str:
    """The text of a group message without the leading @-mentions (WeCom leaves them in)."""
    return _MENTION.sub("", (text or "").strip()).strip()


def parse_bot_command(text: str) -> tuple[str, str, str | None] | None:
    """(action, case number, the rest) of a command to the bot, or None for anything else (a report)."""
    match = _BOT_COMMAND.match(strip_mention(text))
    if not match:
        return None
    rest = (match.group(3) or "").strip() or None
    return BOT_COMMANDS[match.group(1)], match.group(2), rest


def card_click(fields: dict[str, str]) -> dict | None:
    """The staff command of a decrypted template-card click (Event=template_card_event) whose button
    is one of ours, with what notify keeps to answer it; None for any other callback."""
    if fields.get("MsgType") != "event" or fields.get("Event") != "template_card_event":
        return None
    user, key, task_id = fields.get("FromUserName", ""), fields.get("EventKey", ""), fields.get("TaskId", "")
    try:
        action, case_no = parse_card_button_key(key)
        sent_at = datetime.fromtimestamp(int(fields.get("CreateTime", "")), UTC)
    except (BadCardKey, ValueError):
        return None
    if not user:
        return None
    command_id = staff_command_id("card", f"{task_id}|{user}|{key}")
    return {
        "command": {
            "command_id": command_id,
            "source": "card",
            "wecom_user_id": user,
            "case_no": case_no,
            "action": CARD_ACTIONS[action],
            "text": CARD_RETURN_REASON if action == "return" else None,
            "sent_at": sent_at,
        },
        "response_code": fields.get("ResponseCode") or None,
        "task_id": task_id,
    }


def bot_command(data: dict, *, received_at: datetime) -> dict | None:
    """The staff command of a decrypted AI-bot callback whose text is a command (`text`, or `mixed`
    with its image items, e.g. 办结 with a photo), with the photo URLs to fetch and the
    response_url; None when it is no command (it stays a report)."""
    user = (data.get("from") or {}).get("userid")
    msg_type, msgid = data.get("msgtype"), data.get("msgid")
    if not user or not msgid:
        return None
    photo_urls: list[str] = []
    if msg_type == "text":
        text = (data.get("text") or {}).get("content", "")
    elif msg_type == "mixed":
        items = (data.get("mixed") or {}).get("msg_item") or []
        texts = [
            (i.get("text") or {}).get("content", "")
            for i in items
            if isinstance(i, dict) and i.get("msgtype") == "text"
        ]
        photo_urls = [
            (i.get("image") or {}).get("url", "")
            for i in items
            if isinstance(i, dict) and i.get("msgtype") == "image" and (i.get("image") or {}).get("url")
        ]
        text = " ".join(texts)
    else:
        return None
    parsed = parse_bot_command(text)
    if parsed is None:
        return None
    action, case_no, rest = parsed
    group = data.get("chatid") if data.get("chattype") == "group" else None
    return {
        "command": {
            "command_id": staff_command_id("bot", msgid),
            "source": "bot",
            "wecom_user_id": user,
            "case_no": case_no,
            "action": action,
            "text": rest,
            "group_id": group,
            "sent_at": received_at,
        },
        "photo_urls": photo_urls if action == "resolve" else [],
        "response_url": data.get("response_url") or None,
    }


def staff_photo_key(command_id: UUID, n: int) -> str:
    """Where a command's n-th photo is parked in the incoming bucket (media reads `staff/` as 整改后)."""
    return f"staff/{command_id}/{n}"


def staff_answer_messages(answer, *, command) -> list[Outgoing]:
    """How dispatch's answer to a staff command reaches them: a card's button replaced (and the
    reason, when refused, as an application message), or one markdown reply through the bot's
    response_url. `command` is notify's row of the command (its response code or URL)."""
    out: list[Outgoing] = []
    if answer.source == "card":
        if command["response_code"]:
            button = {
                "replace_name": (answer.button_text or ("已处理" if answer.outcome == "done" else "未能处理"))[:16]
            }
            body = {"response_code": command["response_code"], "button": button}
            out.append(Outgoing("wecom_card_update", command["wecom_user_id"], "staff_card_update", body))
        if answer.outcome == "refused":
            out.append(
                Outgoing("wecom_app", command["wecom_user_id"], "staff_command_refused", app_text_message(answer.text))
            )
    elif command["response_url"]:
        body = {"msgtype": "markdown", "markdown": {"content": answer.text}}
        out.append(Outgoing("aibot_reply", command["response_url"], "staff_bot_reply", body))
    return out
