"""Notify's staff routes: delivery status per case, and broadcasts (政策宣传进社区). The platforms'
callbacks are in callbacks.py. Who may do what is decided in broadcasts.py (broadcasts) and domain.py
(a case's deliveries) and written on each route."""

from datetime import datetime
from typing import Literal
from uuid import UUID, uuid4, uuid5

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field

from services.notify import metrics, store
from services.notify.broadcasts import authorize_broadcast, broadcast_message, select_groups
from services.notify.domain import NOTIFICATION_NS, Forbidden, authorize_delivery_reading, recipient
from services.notify.messages import MARKDOWN_MAX_BYTES, TEXT_MAX_BYTES
from shared.events import utcnow
from shared.problems import Problem
from shared.web import Connection, CurrentActor

router = APIRouter(prefix="/api/v1")


def _forbidden(error: Forbidden) -> Problem:
    return Problem(403, "无权操作", str(error), kind="forbidden")


# --- a case's notifications -----------------------------------------------------------------


class NotificationStatus(BaseModel):
    notification_id: UUID
    channel: str = Field(description="wecom_robot, wecom_app, wechat_template, wechat_subscribe, sms or sms_staff")
    recipient: str = Field(
        description="who it went to, e.g. 部门群（zhujian）, 反映人（短信）; never the key or id used"
    )
    template: str = Field(description="what the message is about, e.g. case.dispatched, sla.breached")
    status: str = Field(description="pending, sending, sent or failed")
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime
    digest_id: UUID | None = Field(
        None, description="set when it was sent within a digest (派单汇总) with other 派单 of the same group"
    )
    receipt: str | None = Field(
        None,
        description="confirmed (the channel took it), awaiting (a template message until the official account "
        "reports it), failed, or unconfirmed (no report in time); failed and unconfirmed ones are taken over "
        "by the next channel, when there is one",
    )
    receipt_at: datetime | None = None
    fallback_of: UUID | None = Field(None, description="the notification this one took over from")


class CaseNotifications(BaseModel):
    case_id: UUID
    notifications: list[NotificationStatus]


@router.get("/cases/{case_id}/notifications", response_model=CaseNotifications)
async def case_notifications(case_id: UUID, request: Request, conn: Connection, actor: CurrentActor):
    """Delivery status of every notification about a case.

    Who: dispatchers, supervisors and admins (the command centre, which follows deliveries up).
    Notify does not know the case's division, so it cannot narrow this to the actor's jurisdiction;
    handlers and grid workers get 403 and see progress in the case itself (dispatch)."""
    try:
        authorize_delivery_reading(actor)
    except Forbidden as error:
        raise _forbidden(error) from None
    rows = await store.list_notifications(conn, case_id=case_id)
    robots = request.app.state.robot_names
    return CaseNotifications(
        case_id=case_id,
        notifications=[
            NotificationStatus(
                **dict(row), recipient=recipient(channel=row["channel"], target=row["target"], robots=robots)
            )
            for row in rows
        ],
    )


# --- broadcasts -----------------------------------------------------------------------------


class BroadcastRequest(BaseModel):
    content: str = Field(min_length=1, description="政策宣传内容")
    msgtype: Literal["text", "markdown"] = "markdown"
    target: str = Field(pattern=r"^(all|\d{6,12})$", description='"all" or a division-code prefix (6–12 digits)')


class BroadcastAccepted(BaseModel):
    broadcast_id: UUID
    status_url: str
    groups: int | None = Field(None, description="groups it goes to; absent when the request was a repeat")


class BroadcastFailure(BaseModel):
    group_id: str
    recipient: str = Field(description="the group's name (its robot key is never returned)")
    attempts: int
    last_error: str | None


class BroadcastProgress(BaseModel):
    broadcast_id: UUID
    target: str
    msgtype: str
    created_at: datetime
    total: int = Field(description="groups the broadcast goes to")
    sent: int
    failed: int
    pending: int = Field(description="not sent yet, including those retrying")
    retrying: int
    done: bool = Field(description="nothing pending")
    last_sent_at: datetime | None
    elapsed_s: float = Field(description="from the request to the last send (when done) or to now")
    failures: list[BroadcastFailure] = Field(description="the first 100 groups that could not be reached, why")


@router.post(
    "/broadcasts",
    status_code=202,
    response_model=BroadcastAccepted,
    response_model_exclude_none=True,
    responses={200: {"model": BroadcastAccepted, "description": "a repeat of an accepted request"}},
)
async def create_broadcast(
    body: BroadcastRequest,
    request: Request,
    response: Response,
    conn: Connection,
    actor: CurrentActor,
    idempotency_key: str | None = Header(default=None, max_length=200),
):
    """Queue one message to every resident group of a jurisdiction (or all); sent within each robot's limit.

    Who: supervisors and admins, within their jurisdiction ("all" needs the county's). Dispatchers
    may not: a broadcast speaks to residents in the county's name and is published by those who
    answer for it (see `BROADCASTERS` in broadcasts.py)."""
    try:
        authorize_broadcast(actor, target=body.target, county_code=request.app.state.settings.jurisdiction_code)
    except Forbidden as error:
        raise _forbidden(error) from None
    limit = MARKDOWN_MAX_BYTES if body.msgtype == "markdown" else TEXT_MAX_BYTES
    if len(body.content.encode()) > limit:
        raise Problem(
            422,
            "Message too long",
            f"内容过长：{'Markdown' if body.msgtype == 'markdown' else '文本'}消息最多 {limit} 字节"
            f"（约 {limit // 3} 个汉字），现有 {len(body.content.encode())} 字节，请删减后再发。",
            kind="message-too-long",
        )
    groups = select_groups(request.app.state.groups, body.target)
    if not groups:
        raise Problem(422, "No groups", f"区划 {body.target} 内没有居民群，请换一个发布范围。", kind="no-groups")
    # A retried request (same Idempotency-Key) must not message thousands of groups twice.
    broadcast_id = uuid5(NOTIFICATION_NS, f"broadcast|{idempotency_key}") if idempotency_key else uuid4()
    async with conn.transaction():
        created = await store.insert_broadcast(
            conn,
            broadcast_id=broadcast_id,
            idempotency_key=idempotency_key,
            target=body.target,
            msgtype=body.msgtype,
            content=body.content,
            body=broadcast_message(msgtype=body.msgtype, content=body.content),
            groups=groups,
        )
    accepted = {"broadcast_id": broadcast_id, "status_url": f"/api/v1/broadcasts/{broadcast_id}"}
    if not created:
        response.status_code = 200
        return accepted
    metrics.BROADCAST_GROUPS.labels("queued").inc(len(groups))
    return accepted | {"groups": len(groups)}


class BroadcastReach(BaseModel):
    target: str
    groups: int = Field(description="resident groups a broadcast to this target would go to")


@router.get("/broadcasts/reach", response_model=BroadcastReach)
async def broadcast_reach(
    request: Request, actor: CurrentActor, target: str = Query(pattern=r"^(all|\d{6,12})$")
) -> BroadcastReach:
    """How many groups a broadcast would reach, before it is sent (the composer's preview).

    Who: those who may send it."""
    try:
        authorize_broadcast(actor, target=target, county_code=request.app.state.settings.jurisdiction_code)
    except Forbidden as error:
        raise _forbidden(error) from None
    return BroadcastReach(target=target, groups=len(select_groups(request.app.state.groups, target)))


@router.get("/broadcasts/{broadcast_id}", response_model=BroadcastProgress)
async def broadcast_status(broadcast_id: UUID, request: Request, conn: Connection, actor: CurrentActor):
    """Progress of a broadcast: groups reached, pending and failed (with reasons).

    Who: those who may send it — supervisors and admins whose jurisdiction holds its target."""
    broadcast, counts, failures = await store.broadcast_progress(conn, broadcast_id=broadcast_id)
    if broadcast is None:
        raise Problem(404, "Broadcast not found", f"No broadcast {broadcast_id}.", kind="not-found")
    try:
        authorize_broadcast(actor, target=broadcast["target"], county_code=request.app.state.settings.jurisdiction_code)
    except Forbidden as error:
        raise _forbidden(error) from None
    done = counts["pending"] == 0
    last = counts["last_sent_at"]
    return {
        "broadcast_id": broadcast_id,
        "target": broadcast["target"],
        "msgtype": broadcast["msgtype"],
        "created_at": broadcast["created_at"],
        "total": broadcast["total"],
        "sent": counts["sent"],
        "failed": counts["failed"],
        "pending": counts["pending"],
        "retrying": counts["retrying"],
        "done": done,
        "last_sent_at": last,
        "elapsed_s": round(((last if done and last else utcnow()) - broadcast["created_at"]).total_seconds(), 3),
        "failures": [
            BroadcastFailure(
                group_id=f["group_id"],
                recipient=recipient(channel="wecom_robot", target=f["target"], robots=request.app.state.robot_names),
                attempts=f["attempts"],
                last_error=f["last_error"],
            )
            for f in failures
        ],
    }
