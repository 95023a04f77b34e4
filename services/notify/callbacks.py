"""Notify's inbound callbacks: URL verification and message receipt for the WeCom application
(/callbacks/wecom), the official account (/callbacks/wechat) and the WeCom AI bot
(/callbacks/wecom-aibot). They are public: the platforms call without our tokens, and every
request is checked against its platform's signature, freshness and nonce instead.

WeCom application: receive id = corp id, msg_signature over (token, timestamp, nonce, encrypt).
Official account: plaintext mode signs (token, timestamp, nonce); safe mode (encrypt_type=aes)
is WeCom's scheme with the appid as receive id.
"""

import json
import logging
import time
from datetime import timedelta

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from services.notify import crypto, metrics, store
from services.notify.crypto import CallbackRejected, decrypt_aibot_file
from services.notify.domain import notification_id
from services.notify.inbound import aibot_message, inbound_message, is_fresh, template_receipt
from services.notify.staff_commands import bot_command, card_click, staff_photo_key
from shared.db import enqueue
from shared.events import IncomingPhoto, MessageReceived, StaffCommand, new_event, utcnow
from shared.problems import Problem
from shared.web import public

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1")


class CallbackConfig:
    """What one callback source is checked with: its token, AES key and receive id."""

    def __init__(self, *, source: str, token: str, aes_key: str, receive_id: str):
        self.source, self.token, self.receive_id = source, token, receive_id
        self.key = crypto.aes_key(aes_key)


def callback_configs(settings) -> dict[str, CallbackConfig]:
    """Built at startup, so a malformed EncodingAESKey stops the service instead of every callback."""
    return {
        "wecom_app": CallbackConfig(
            source="wecom_app",
            token=settings.wecom_callback_token,
            aes_key=settings.wecom_callback_aes_key,
            receive_id=settings.wecom_corp_id,
        ),
        "wechat_mp": CallbackConfig(
            source="wechat_mp",
            token=settings.wechat_callback_token,
            aes_key=settings.wechat_callback_aes_key,
            receive_id=settings.wechat_app_id,
        ),
        # The AI bot encrypts with an empty receive id.
        "wecom_aibot": CallbackConfig(
            source="wecom_aibot", token=settings.wecom_aibot_token, aes_key=settings.wecom_aibot_aes_key, receive_id=""
        ),
    }


def _refuse(source: str, exc: CallbackRejected, request: Request) -> Problem:
    # Logged without the body: a forged request is noise, but its pattern matters to an operator.
    log.warning("refused %s callback from %s: %s", source, request.client.host if request.client else "?", exc)
    metrics.CALLBACKS.labels(source, exc.reason).inc()
    status = 400 if exc.reason in {"bad_xml", "bad_json"} else 403
    return Problem(status, "Callback refused", exc.reason, kind=f"callback-{exc.reason.replace('_', '-')}")


async def _accept(
    request: Request,
    source: str,
    timestamp: str,
    nonce: str,
    message: dict | None,
    receipt: tuple[str, bool] | None = None,
    *,
    staff: dict | None = None,
) -> str:
    """Refuse a stale or replayed callback, then publish its message (once per MsgId), take a template
    message's receipt, or take its staff command (once per click or bot msgid), in one transaction: a
    nonce counts as seen only together with the message it carried, so when anything fails the
    platform's retry (same timestamp and nonce) is taken, not refused as a replay. Returns the
    outcome word."""
    runtime = request.app.state.runtime
    settings = runtime.settings
    if not is_fresh(timestamp, now=time.time(), max_age_s=settings.notify_callback_max_age_s):
        raise CallbackRejected("stale", f"timestamp {timestamp!r}")
    async with runtime.pool.acquire() as conn, conn.transaction():
        fresh = await store.remember_nonce(
            conn,
            source=source,
            timestamp=timestamp,
            nonce=nonce,
            forget_before=utcnow() - timedelta(seconds=2 * settings.notify_callback_max_age_s),
        )
        if not fresh:
            raise CallbackRejected("replayed", f"nonce {nonce!r}")
        if receipt is not None:
            # A template message's receipt: confirmed, or failed and taken over by the next channel.
            msgid, delivered = receipt
            now = utcnow()
            row = await store.confirm_receipt(conn, channel="wechat_template", ref=msgid, delivered=delivered, at=now)
            if row is None:
                return "ignored"
            if not delivered and row["fallback"]:
                await store.queue_fallback(conn, row=row, at=now)
                metrics.FALLBACKS.labels(row["channel"], "failed").inc()
            return "receipt"
        if staff is not None:
            return await _take_staff_command(conn, settings, staff)
        if message is None:
            return "ignored"
        if not await store.remember_inbound(
            conn, source=message["source"], msg_id=message["msg_id"], message_id=message["message_id"]
        ):
            return "duplicate"
        await enqueue(
            conn,
            settings,
            new_event(
                MessageReceived(**message),
                producer=settings.service_name,
                jurisdiction_code=settings.jurisdiction_code,
                key=message["from_user"],
            ),
        )
    return "accepted"


async def _take_staff_command(conn, settings, staff: dict) -> str:
    """Remember how to answer a staff command and publish it for dispatch (once per command id); a
    bot command whose photo could not be had is answered here, in the group, and goes no further."""
    command = staff["command"]
    if not await store.remember_staff_command(
        conn,
        command_id=command["command_id"],
        source=command["source"],
        wecom_user_id=command["wecom_user_id"],
        case_no=command["case_no"],
        action=command["action"],
        response_code=staff.get("response_code"),
        response_url=staff.get("response_url"),
    ):
        return "duplicate"
    if staff.get("refusal"):
        if staff.get("response_url"):
            body = {"msgtype": "markdown", "markdown": {"content": staff["refusal"]}}
            await store.insert_notification(
                conn,
                notification_id=notification_id(
                    source_id=command["command_id"],
                    template="staff_bot_reply",
                    channel="aibot_reply",
                    target=staff["response_url"],
                ),
                source_event_id=command["command_id"],
                jurisdiction_code=settings.jurisdiction_code,
                channel="aibot_reply",
                target=staff["response_url"],
                template="staff_bot_reply",
                body=body,
            )
        await store.answer_staff_command(conn, command_id=command["command_id"])
        return "refused"
    await enqueue(
        conn,
        settings,
        new_event(
            StaffCommand(**command, photos=staff.get("photos", [])),
            producer=settings.service_name,
            jurisdiction_code=settings.jurisdiction_code,
            key=command["case_no"],
        ),
    )
    return "command"


async def _worth_fetching(request: Request, timestamp: str, staff: dict) -> bool:
    """Photos are fetched only for a fresh command not taken before (the transaction decides for good)."""
    settings = request.app.state.settings
    if not is_fresh(timestamp, now=time.time(), max_age_s=settings.notify_callback_max_age_s):
        return False
    async with request.app.state.runtime.pool.acquire() as conn:
        return not await store.staff_command_taken(conn, command_id=staff["command"]["command_id"])


async def _fetch_staff_photos(request: Request, staff: dict, *, key: bytes) -> None:
    """Fetch the photos of a bot command (files AES-encrypted with the bot's key, URLs valid 5
    minutes), decrypt them and park them in the incoming bucket, where media takes photos in. A
    photo that cannot be had refuses the command with the reason, in Chinese."""
    settings = request.app.state.settings
    photos = []
    for n, url in enumerate(staff["photo_urls"]):
        why = "下载失败"
        try:
            encrypted = bytearray()
            http = request.app.state.http
            async with http.stream("GET", url, timeout=settings.notify_photo_fetch_timeout_s) as response:
                response.raise_for_status()
                async for chunk in response.aiter_bytes():
                    encrypted += chunk
                    if len(encrypted) > settings.media_image_max_bytes + 32:  # the padding adds ≤32 bytes
                        why = "照片过大"
                        raise ValueError("larger than the image limit")
            why = "无法解密"
            data = decrypt_aibot_file(bytes(encrypted), key=key)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("bot photo %d of command %s not taken: %s", n, staff["command"]["command_id"], exc)
            case_no = staff["command"]["case_no"]
            staff["refusal"] = (
                f"案件 {case_no} 未办结：未能取得您发送的第 {n + 1} 张照片（{why}）。"
                f"请重新拍照，并在同一条消息里发送“办结 {case_no} 办理结果”。"
            )
            return
        object_key = staff_photo_key(staff["command"]["command_id"], n)
        await request.app.state.incoming.put(object_key, data, "application/octet-stream")
        photos.append(IncomingPhoto(object_key=object_key, filename=f"wecom-{n + 1}.jpg", size_bytes=len(data)))
    staff["photos"] = photos


async def _verify_url(
    request: Request, callback: str, msg_signature: str, timestamp: str, nonce: str, echostr: str
) -> PlainTextResponse:
    """WeCom's URL check: answer the decrypted echostr, bare (no quotes or newline)."""
    cb = request.app.state.callbacks[callback]
    try:
        crypto.verify_signature(msg_signature, cb.token, timestamp, nonce, echostr)
        plain = crypto.decrypt(echostr, key=cb.key, receive_id=cb.receive_id)
        await _accept(request, cb.source, timestamp, nonce, None)
    except CallbackRejected as exc:
        raise _refuse(cb.source, exc, request) from None
    metrics.CALLBACKS.labels(cb.source, "verified").inc()
    return PlainTextResponse(plain)


@router.get("/callbacks/wecom", response_class=PlainTextResponse)
@public("WeCom verifies the URL; the echo is signed and encrypted with our callback token and key")
async def wecom_verify_url(request: Request, msg_signature: str, timestamp: str, nonce: str, echostr: str):
    """The WeCom application's URL check."""
    return await _verify_url(request, "wecom_app", msg_signature, timestamp, nonce, echostr)


@router.post("/callbacks/wecom", response_class=PlainTextResponse)
@public("WeCom posts messages signed and encrypted with our callback token and key")
async def wecom_callback(request: Request, msg_signature: str, timestamp: str, nonce: str):
    """A member's message to the WeCom application: verified, decrypted, published for intake."""
    cb = request.app.state.callbacks["wecom_app"]
    try:
        outer = crypto.parse_xml((await request.body()).decode(errors="replace"))
        encrypted = outer.get("Encrypt", "")
        crypto.verify_signature(msg_signature, cb.token, timestamp, nonce, encrypted)
        plaintext = crypto.decrypt(encrypted, key=cb.key, receive_id=cb.receive_id)
        fields = crypto.parse_xml(plaintext)
        staff = card_click(fields)  # a click on one of our template cards' buttons (接单/退回)
        message = None if staff else inbound_message(fields, source=cb.source)
        outcome = await _accept(request, cb.source, timestamp, nonce, message, staff=staff)
    except CallbackRejected as exc:
        raise _refuse(cb.source, exc, request) from None
    metrics.CALLBACKS.labels(cb.source, outcome).inc()
    return PlainTextResponse("")  # no passive reply; answering within 5 s stops WeCom's retries


@router.get("/callbacks/wechat", response_class=PlainTextResponse)
@public("the official account verifies the URL with its signature")
async def wechat_verify_url(request: Request, signature: str, timestamp: str, nonce: str, echostr: str):
    """The official account's URL check: echo echostr when the three-string signature matches."""
    cb = request.app.state.callbacks["wechat_mp"]
    try:
        crypto.verify_signature(signature, cb.token, timestamp, nonce)
        await _accept(request, cb.source, timestamp, nonce, None)
    except CallbackRejected as exc:
        raise _refuse(cb.source, exc, request) from None
    metrics.CALLBACKS.labels(cb.source, "verified").inc()
    return PlainTextResponse(echostr)


@router.post("/callbacks/wechat", response_class=PlainTextResponse)
@public("the official account posts messages with its signature")
async def wechat_callback(
    request: Request, signature: str, timestamp: str, nonce: str, encrypt_type: str = "raw", msg_signature: str = ""
):
    """A reader's message to the official account (plaintext or safe mode), published for intake;
    or the account's receipt of a template message we sent (TEMPLATESENDJOBFINISH)."""
    cb = request.app.state.callbacks["wechat_mp"]
    try:
        crypto.verify_signature(signature, cb.token, timestamp, nonce)
        if encrypt_type != "aes" and request.app.state.settings.wechat_safe_mode:
            # In safe mode (安全模式) the platform only sends encrypted messages: a plain one is forged.
            raise CallbackRejected("plaintext_refused", f"encrypt_type={encrypt_type!r} in safe mode")
        plaintext = (await request.body()).decode(errors="replace")
        if encrypt_type == "aes":
            encrypted = crypto.parse_xml(plaintext).get("Encrypt", "")
            crypto.verify_signature(msg_signature, cb.token, timestamp, nonce, encrypted)
            plaintext = crypto.decrypt(encrypted, key=cb.key, receive_id=cb.receive_id)
        fields = crypto.parse_xml(plaintext)
        message = inbound_message(fields, source=cb.source)
        outcome = await _accept(request, cb.source, timestamp, nonce, message, template_receipt(fields))
    except CallbackRejected as exc:
        raise _refuse(cb.source, exc, request) from None
    metrics.CALLBACKS.labels(cb.source, outcome).inc()
    return PlainTextResponse("success")


@router.get("/callbacks/wecom-aibot", response_class=PlainTextResponse)
@public("the WeCom AI bot verifies the URL; signed and encrypted")
async def aibot_verify_url(request: Request, msg_signature: str, timestamp: str, nonce: str, echostr: str):
    """The WeCom AI bot's URL check (same scheme as the application's, empty receive id)."""
    return await _verify_url(request, "wecom_aibot", msg_signature, timestamp, nonce, echostr)


@router.post("/callbacks/wecom-aibot", response_class=PlainTextResponse)
@public("the WeCom AI bot posts @-mentions, signed and encrypted")
async def aibot_callback(request: Request, msg_signature: str, timestamp: str, nonce: str):
    """A group member @-mentioned the AI bot: JSON `{"encrypt": …}`, verified, decrypted, published."""
    cb = request.app.state.callbacks["wecom_aibot"]
    try:
        try:
            encrypted = json.loads(await request.body()).get("encrypt", "")
        except (ValueError, AttributeError):
            raise CallbackRejected("bad_json") from None
        crypto.verify_signature(msg_signature, cb.token, timestamp, nonce, encrypted)
        try:
            data = json.loads(crypto.decrypt(encrypted, key=cb.key, receive_id=cb.receive_id))
        except ValueError:
            raise CallbackRejected("bad_json") from None
        if not isinstance(data, dict):
            raise CallbackRejected("bad_json", "not an object")
        staff = bot_command(data, received_at=utcnow())  # 接单/进展/办结/查 <编号>: a command, not a report
        message = None if staff else aibot_message(data, received_at=utcnow())
        if staff and staff["photo_urls"] and await _worth_fetching(request, timestamp, staff):
            await _fetch_staff_photos(request, staff, key=cb.key)
        outcome = await _accept(request, cb.source, timestamp, nonce, message, staff=staff)
    except CallbackRejected as exc:
        raise _refuse(cb.source, exc, request) from None
    metrics.CALLBACKS.labels(cb.source, outcome).inc()
    return PlainTextResponse("")  # no streamed reply; intake answers through response_url if it wants to
