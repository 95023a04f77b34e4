"""Each group robot's send budget (WeCom takes 20 messages a minute from a robot, counted here in a
sliding window) and the 派单 digests (派单汇总) that carry a burst of 派单 in fewer messages when the
budget runs short. Pure: delivery.py reads each robot's recent sends from store.py and asks here
which notifications go now, which wait and which go merged."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from services.notify.messages import text_message

# WeCom counts its 20 messages per minute on its own clock: one second more absorbs the skew.
ROBOT_WINDOW_S = 61.0


@dataclass(frozen=True)
class RobotWindow:
    """When a robot last sent (within the window) and until when WeCom told us to hold off."""

    sent_at: tuple[datetime, ...] = ()
    blocked_until: datetime | None = None


@dataclass
class RobotPlan:
    picked: list[UUID] = field(default_factory=list)
    deferred: dict[UUID, datetime] = field(default_factory=dict)
    windows: dict[str, tuple[datetime, ...]] = field(default_factory=dict)
    # (robot, notifications) sent together as one digest message (派单汇总) each.
    digests: list[tuple[str, list[UUID]]] = field(default_factory=list)


def plan_robot_sends(
    candidates: list[tuple[UUID, str]],
    windows: dict[str, RobotWindow],
    *,
    now: datetime,
    per_minute: int,
    window_s: float = ROBOT_WINDOW_S,
    digest_lines: dict[UUID, str] | None = None,
    queued_at: dict[UUID, datetime] | None = None,
    digest_reserve: int = 0,
    digest_max_wait_s: float = 10.0,
    digest_max_bytes: int = 2048,
) -> RobotPlan:
    """Split (notification, robot) candidates, in order, into those a sliding one-minute window per
    robot allows now and those deferred until the robot's next free slot. A sliding log rather
    than a token bucket: a bucket refilled at 20/min still lets 40 through in one minute after a
    full burst, and WeCom answers that with 45009 and a longer throttle.

    With `digest_lines` (派单 that may be merged, each queued since `queued_at`), a robot sends 派单
    one by one only while they all fit in the slots beyond `digest_reserve`. Otherwise its queued
    派单 go out merged: a digest as soon as it is full (the next line would not fit), a partial one
    once its oldest 派单 has waited `digest_max_wait_s`. Full digests carry the most 派单 per slot,
    the wait bounds the rest, and the reserve keeps slots for both when a burst begins."""
    plan = RobotPlan()
    window = timedelta(seconds=window_s)
    max_wait = timedelta(seconds=digest_max_wait_s)
    lines = digest_lines or {}
    since = queued_at or {}
    by_robot: dict[str, list[UUID]] = {}
    for notification, robot in candidates:
        by_robot.setdefault(robot, []).append(notification)
    for robot, notifications in by_robot.items():
        state = windows.get(robot, RobotWindow())
        if state.blocked_until and state.blocked_until > now:
            plan.deferred.update({n: state.blocked_until for n in notifications})
            continue
        recent = sorted(t for t in state.sent_at if now - t < window)
        free = max(per_minute - len(recent), 0)
        quiet = sum(1 for n in notifications if n in lines) <= free - digest_reserve
        picked: list[UUID] = []
        held: list[UUID] = []
        merged: list[UUID] = []
        for n in notifications:
            if free > 0 and (n not in lines or quiet):
                picked.append(n)
                free -= 1
            else:
                (merged if n in lines else held).append(n)
        recent.extend([now] * len(picked))
        if merged:
            merged.sort(key=lambda n: since.get(n, now))
            chunks = chunk_lines([(n, lines[n]) for n in merged], max_bytes=digest_max_bytes)
            # Every chunk but the last is full; the last goes once its oldest has waited enough.
            due = chunks if now - since.get(chunks[-1][0], now) >= max_wait else chunks[:-1]
            sending = due[:free]
            for chunk in sending:
                if len(chunk) == 1:
                    picked.append(chunk[0])  # a digest of one is the message itself
                else:
                    plan.digests.append((robot, chunk))
            recent.extend([now] * len(sending))
            free -= len(sending)
            sent = {n for chunk in sending for n in chunk}
            waiting = [n for n in merged if n not in sent]
            if waiting:
                # Out of slots: the next free one. Otherwise only the partial digest is left, and
                # it goes when its oldest 派单 has waited enough.
                at = recent[len(recent) - per_minute] + window if free == 0 else since.get(waiting[0], now) + max_wait
                plan.deferred.update({n: at for n in waiting})
        plan.picked.extend(picked)
        if held:
            # The slot frees when the send `per_minute` places back leaves the window.
            next_free = recent[len(recent) - per_minute] + window
            plan.deferred.update({n: next_free for n in held})
        plan.windows[robot] = tuple(recent[-per_minute:])
    return plan


DIGEST_HEADER = "【派单汇总】本群消息已达每分钟上限，以下{n}件新派单合并发送，请逐件接单："
DIGEST_FOOTER = "请在平台逐件接单处置。"


def _digest_content(lines: list[str]) -> str:
    numbered = [f"{i}. {line}" for i, line in enumerate(lines, 1)]
    return "\n".join([DIGEST_HEADER.format(n=len(lines)), *numbered, DIGEST_FOOTER])


def chunk_lines(items: list[tuple[UUID, str]], *, max_bytes: int) -> list[list[UUID]]:
    """Consecutive runs of (notification, line) whose digest fits in `max_bytes`, in order."""
    chunks: list[list[UUID]] = []
    current: list[UUID] = []
    size = 0  # bytes of the numbered lines so far, each with its newline

    def fits(n: int, size: int) -> bool:
        frame = len(DIGEST_HEADER.format(n=n).encode()) + len(DIGEST_FOOTER.encode()) + 1
        return frame + size <= max_bytes

    for notification, line in items:
        added = len(f"{len(current) + 1}. {line}\n".encode())
        if current and not fits(len(current) + 1, size + added):
            chunks.append(current)
            current, size = [], 0
            added = len(f"1. {line}\n".encode())
        current.append(notification)
        size += added
    if current:
        chunks.append(current)
    return chunks


def digest_message(lines: list[str], *, mentioned_mobiles: Sequence[str], mentioned_users: Sequence[str] = ()) -> dict:
    """One robot message for several 派单 of the same group: a numbered line each, the group's
    handlers and the people on duty @-mentioned once."""
    return text_message(
        _digest_content(lines), mentioned_mobiles=list(mentioned_mobiles), mentioned_users=list(mentioned_users)
    )
