"""Notify's SQL."""

import base64
import json
from datetime import datetime
from uuid import UUID, uuid5

import asyncpg

from services.notify.domain import NOTIFICATION_NS, OnDuty, ReporterContact, confirmation_url, notification_id
from services.notify.robot_budget import RobotWindow
from services.notify.settings import NotifySettings
from shared.topics import DEAD_LETTERS


async def insert_notification(conn: asyncpg.Connection, **notification) -> None:
    """Queue a notification; one with the same id (or event, channel and target) is ignored."""
    columns = ", ".join(notification)
    placeholders = ", ".join(f"${i}" for i in range(1, len(notification) + 1))
    await conn.execute(
        f"INSERT INTO notifications ({columns}) VALUES ({placeholders}) ON CONFLICT DO NOTHING",
        *notification.values(),
    )


async def claim_due(conn: asyncpg.Connection, *, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Lock due notifications (pending, or sending with an expired lease) for this transaction;
    case notifications first, so a 派单 never queues behind thousands of broadcast messages."""
    return await conn.fetch(
        "SELECT * FROM notifications WHERE status IN ('pending', 'sending') AND next_attempt_at <= $1 "
        "ORDER BY broadcast_id IS NOT NULL, next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )


async def claim_queued_dispatches(
    conn: asyncpg.Connection, *, robot_keys: list[str], claimed: list[UUID], limit: int
) -> list[asyncpg.Record]:
    """Lock the other 派单 queued for these robots, due or not (oldest first): a digest carries its
    group's whole queue, so a 派单 held for the next digest is not left behind by it."""
    if not robot_keys:
        return []
    return await conn.fetch(
        "SELECT * FROM notifications WHERE status = 'pending' AND digest_line IS NOT NULL "
        "AND target = ANY($1::text[]) AND NOT (notification_id = ANY($2::uuid[])) "
        "ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED",
        robot_keys,
        claimed,
        limit,
    )


async def lock_robot_windows(conn: asyncpg.Connection, robot_keys: list[str]) -> dict[str, RobotWindow]:
    """Each robot's recent sends, locked (in key order, so two senders never deadlock)."""
    if not robot_keys:
        return {}
    await conn.execute(
        "INSERT INTO robot_windows (robot_key) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", robot_keys
    )
    rows = await conn.fetch(
        "SELECT * FROM robot_windows WHERE robot_key = ANY($1::text[]) ORDER BY robot_key FOR UPDATE", robot_keys
    )
    return {r["robot_key"]: RobotWindow(tuple(r["sent_at"]), r["blocked_until"]) for r in rows}


async def save_robot_windows(conn: asyncpg.Connection, windows: dict[str, tuple[datetime, ...]]) -> None:
    if windows:
        await conn.executemany(
            "UPDATE robot_windows SET sent_at = $2 WHERE robot_key = $1",
            [(key, list(sent_at)) for key, sent_at in windows.items()],
        )


async def settle_robot_windows(
    conn: asyncpg.Connection, *, robot_keys: list[str], reserved_at: datetime, sent_at: datetime
) -> None:
    """Re-date the slots a batch reserved at `reserved_at` to when its sends were answered."""
    if robot_keys:
        await conn.execute(
            "UPDATE robot_windows SET sent_at = array_replace(sent_at, $2, $3) WHERE robot_key = ANY($1::text[])",
            robot_keys,
            reserved_at,
            sent_at,
        )


async def block_robots(conn: asyncpg.Connection, *, robot_keys: list[str], until: datetime) -> None:
    """WeCom throttled these robots: send nothing more to them before `until`."""
    await conn.execute(
        "UPDATE robot_windows SET blocked_until = $2 WHERE robot_key = ANY($1::text[])", robot_keys, until
    )


async def mark_sending(conn: asyncpg.Connection, *, notification_ids: list[UUID], lease_until: datetime) -> None:
    await conn.execute(
        "UPDATE notifications SET status = 'sending', next_attempt_at = $2, digest_id = NULL "
        "WHERE notification_id = ANY($1::uuid[])",
        notification_ids,
        lease_until,
    )


async def start_digests(conn: asyncpg.Connection, digests: list[tuple[UUID, str, dict, list[UUID]]], *, at) -> None:
    """Record each (digest, robot, body, notifications) about to be sent and tie its notifications to it."""
    if not digests:
        return
    await conn.executemany(
        "INSERT INTO digests (digest_id, robot_key, body, notifications, created_at) VALUES ($1, $2, $3, $4, $5)",
        [(digest_id, robot, body, len(ids), at) for digest_id, robot, body, ids in digests],
    )
    await conn.executemany(
        "UPDATE notifications SET digest_id = $1 WHERE notification_id = ANY($2::uuid[])",
        [(digest_id, ids) for digest_id, _, _, ids in digests],
    )


async def digests_sent(conn: asyncpg.Connection, *, digest_ids: list[UUID], at: datetime) -> None:
    if digest_ids:
        await conn.execute("UPDATE digests SET sent_at = $2 WHERE digest_id = ANY($1::uuid[])", digest_ids, at)


async def defer(conn: asyncpg.Connection, deferred: dict[UUID, datetime]) -> None:
    """Hold notifications back (not an attempt) until their robot has a free slot."""
    if deferred:
        await conn.executemany(
            "UPDATE notifications SET status = 'pending', next_attempt_at = $2 WHERE notification_id = $1",
            list(deferred.items()),
        )


async def mark_sent(
    conn: asyncpg.Connection,
    *,
    notification_ids: list[UUID],
    at: datetime,
    receipt_refs: dict[UUID, str] | None = None,
    confirm_later: frozenset[str] = frozenset(),
    receipt_due_at: datetime | None = None,
) -> list[asyncpg.Record]:
    """Record sends of rows still leased to us; returns those rows. Their receipt is `confirmed`,
    or `awaiting` until `receipt_due_at` on channels that confirm later (`confirm_later`)."""
    refs = receipt_refs or {}
    return await conn.fetch(
        "UPDATE notifications n SET status = 'sent', attempts = attempts + 1, sent_at = $2::timestamptz, "
        "last_error = NULL, "
        "receipt = CASE WHEN n.channel = ANY($5::text[]) THEN 'awaiting' ELSE 'confirmed' END, "
        "receipt_at = CASE WHEN n.channel = ANY($5::text[]) THEN NULL ELSE $2::timestamptz END, "
        "receipt_due_at = CASE WHEN n.channel = ANY($5::text[]) THEN $6::timestamptz END, "
        "receipt_ref = r.ref "
        "FROM unnest($3::uuid[], $4::text[]) AS r(id, ref) "
        "WHERE n.notification_id = ANY($1::uuid[]) AND n.notification_id = r.id AND n.status = 'sending' "
        "RETURNING n.notification_id, n.case_id, n.channel, n.target, n.template, n.broadcast_id, n.jurisdiction_code",
        notification_ids,
        at,
        notification_ids,
        [refs.get(n) for n in notification_ids],
        sorted(confirm_later),
        receipt_due_at,
    )


async def queue_fallback(conn: asyncpg.Connection, *, row, at: datetime) -> int:
    """The next step of a failed or unconfirmed notification's fallback, as notifications of the same
    event (so a channel and target already used for it is not used again); returns how many were
    queued now (0 when there is no next step or it was queued before)."""
    steps = row["fallback"] or []
    if not steps:
        return 0
    queued = 0
    for message in steps[0]:
        status = await conn.execute(
            "INSERT INTO notifications (notification_id, source_event_id, case_id, jurisdiction_code, channel, "
            "target, template, body, fallback, fallback_of, next_attempt_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
            notification_id(
                source_id=row["source_event_id"],
                template=message["template"],
                channel=message["channel"],
                target=message["target"],
            ),
            row["source_event_id"],
            row["case_id"],
            row["jurisdiction_code"],
            message["channel"],
            message["target"],
            message["template"],
            message["body"],
            list(steps[1:]),
            row["notification_id"],
            at,
        )
        queued += status == "INSERT 0 1"
    return queued


async def claim_unconfirmed(conn: asyncpg.Connection, *, now: datetime, limit: int = 200) -> list[asyncpg.Record]:
    """Sent notifications whose channel did not confirm them in time: marked `unconfirmed`, returned
    (locked) for their fallback."""
    return await conn.fetch(
        "UPDATE notifications SET receipt = 'unconfirmed', receipt_at = $1 WHERE notification_id IN ("
        "SELECT notification_id FROM notifications WHERE receipt = 'awaiting' AND receipt_due_at <= $1 "
        "ORDER BY receipt_due_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING *",
        now,
        limit,
    )


async def confirm_receipt(
    conn: asyncpg.Connection, *, channel: str, ref: str, delivered: bool, at: datetime
) -> asyncpg.Record | None:
    """The channel's report on a message it accepted (a TEMPLATESENDJOBFINISH): `confirmed`, or
    `failed`. Returns the row when it was still awaiting its receipt (else None: a repeated report,
    or one arriving after the fallback took over, changes nothing)."""
    return await conn.fetchrow(
        "UPDATE notifications SET receipt = $3, receipt_at = $4 "
        "WHERE channel = $1 AND receipt_ref = $2 AND receipt = 'awaiting' RETURNING *",
        channel,
        ref,
        "confirmed" if delivered else "failed",
        at,
    )


async def mark_attempt_failed(
    conn: asyncpg.Connection, *, notification_id: UUID, error: str, retry_at: datetime | None
) -> None:
    """Record a failed attempt: retry at `retry_at`, or give up when it is None."""
    await conn.execute(
        "UPDATE notifications SET attempts = attempts + 1, last_error = $2, "
        "status = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'pending' END, "
        "receipt = CASE WHEN $3::timestamptz IS NULL THEN 'failed' END, "
        "next_attempt_at = coalesce($3, next_attempt_at) WHERE notification_id = $1",
        notification_id,
        error,
        retry_at,
    )


async def enqueue_dead_letter(
    conn: asyncpg.Connection, settings: NotifySettings, *, row, error: str, at: datetime
) -> None:
    """Put a given-up notification on the dead-letter topic (through the outbox, in this transaction)
    with the reason, in the same shape as the consumer's dead letters plus the notification fields."""
    letter = {
        "original_topic": None,
        "source": f"{settings.service_name}.delivery",
        "key": str(row["case_id"] or row["notification_id"]),
        "value_base64": base64.b64encode(json.dumps(row["body"], ensure_ascii=False).encode()).decode(),
        "reason": "notification_failed",
        "error": error[:4000],
        "notification_id": str(row["notification_id"]),
        "channel": row["channel"],
        "target": row["target"],
        "template": row["template"],
        "attempts": row["attempts"] + 1,
        "failed_at": at.isoformat(),
    }
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, key, value) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        uuid5(NOTIFICATION_NS, f"dead-letter|{row['notification_id']}"),
        settings.topic(DEAD_LETTERS.name),
        letter["key"],
        json.dumps(letter, ensure_ascii=False).encode(),
    )


async def queue_depth(conn: asyncpg.Connection, *, now: datetime) -> list[asyncpg.Record]:
    """Unsettled notifications by state (due, held, sending) and kind (case, broadcast)."""
    return await conn.fetch(
        "SELECT CASE WHEN status = 'sending' THEN 'sending' WHEN next_attempt_at <= $1 THEN 'due' ELSE 'held' END "
        "AS state, CASE WHEN broadcast_id IS NULL THEN 'case' ELSE 'broadcast' END AS kind, count(*) AS n "
        "FROM notifications WHERE status IN ('pending', 'sending') GROUP BY 1, 2",
        now,
    )


async def list_notifications(conn: asyncpg.Connection, *, case_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM notifications WHERE case_id = $1 ORDER BY created_at, template", case_id)


# --- reporters ------------------------------------------------------------------------------


async def save_reporter(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    contact: ReporterContact,
    report_id: UUID,
    attached: bool = False,
    confirm_token: str | None = None,
    group_id: str | None = None,
) -> None:
    """One reporter of a case: its first report's, or a report attached to it (一事多报); `group_id`
    the WeCom group they @-mentioned the bot in."""
    await conn.execute(
        "INSERT INTO reporters (case_id, report_id, openid, wecom_userid, phone, attached, confirm_token, group_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (case_id, report_id) DO NOTHING",
        case_id,
        report_id,
        contact.openid,
        contact.wecom_userid,
        contact.phone,
        attached,
        confirm_token,
        group_id,
    )


# Every case merged into this one, at any depth (a case merged into one merged in turn).
_FOLLOWED = (
    "WITH RECURSIVE followed(case_id) AS (SELECT $1::uuid UNION "
    "SELECT m.case_id FROM merged_cases m JOIN followed f ON m.into_case_id = f.case_id) "
)


async def get_reporters(
    conn: asyncpg.Connection,
    *,
    case_id: UUID,
    confirm_base_url: str | None = None,
    group_robots: dict[str, str] | None = None,
) -> list[ReporterContact]:
    """Everyone who reported this case: its first reporter, the reporters of reports attached to it
    and those of the cases merged into it (一事多报), in the order they reported. A phone counts as
    proven for the report that opened its case (reporter.verified names cases) and for each report
    reporter.verified names (an attached report's phone is proven by its own report). With
    `confirm_base_url`, each gets the link to their own one-tap 办结 confirmation when intake gave one;
    a group they reported in is named by its robot (`group_robots`: chat id → robot key)."""
    rows = await conn.fetch(
        _FOLLOWED + "SELECT r.report_id, r.openid, r.wecom_userid, r.phone, r.confirm_token, r.group_id, "
        "(NOT r.attached AND EXISTS (SELECT 1 FROM verified_reporter_cases v WHERE v.case_id = r.case_id) "
        "OR EXISTS (SELECT 1 FROM verified_reporter_reports v WHERE v.report_id = r.report_id)) AS phone_verified "
        "FROM reporters r JOIN followed USING (case_id) ORDER BY r.created_at, r.report_id",
        case_id,
    )
    return [
        ReporterContact(
            openid=r["openid"],
            wecom_userid=r["wecom_userid"],
            phone=r["phone"],
            phone_verified=r["phone_verified"],
            confirm_url=confirmation_url(confirm_base_url, report_id=r["report_id"], token=r["confirm_token"]),
            group_robot=(group_robots or {}).get(r["group_id"] or ""),
        )
        for r in rows
    ]


async def save_merged(conn: asyncpg.Connection, *, case_id: UUID, into_case_id: UUID, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO merged_cases (case_id, into_case_id, merged_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        case_id,
        into_case_id,
        at,
    )


async def save_case_no(conn: asyncpg.Connection, *, case_id: UUID, case_no: str | None) -> None:
    if case_no:
        await conn.execute(
            "INSERT INTO case_numbers (case_id, case_no) VALUES ($1, $2) ON CONFLICT (case_id) DO NOTHING",
            case_id,
            case_no,
        )


async def case_no_of(conn: asyncpg.Connection, *, case_id: UUID) -> str | None:
    return await conn.fetchval("SELECT case_no FROM case_numbers WHERE case_id = $1", case_id)


# --- who is on duty (from dispatch's directory) -----------------------------------------------------


async def save_duty_person(
    conn: asyncpg.Connection, *, person_id: str, name: str, wecom_user_id: str | None, active: bool, saved_at: datetime
) -> None:
    """A person as of a directory change; an older change arriving late never overwrites a newer one."""
    await conn.execute(
        "INSERT INTO duty_people (person_id, name, wecom_user_id, active, saved_at) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (person_id) DO UPDATE SET name = $2, wecom_user_id = $3, active = $4, saved_at = $5 "
        "WHERE duty_people.saved_at <= $5",
        person_id,
        name,
        wecom_user_id,
        active,
        saved_at,
    )


async def save_duty_shift(conn: asyncpg.Connection, **shift) -> None:
    await conn.execute(
        "INSERT INTO duty_shifts (shift_id, department_code, jurisdiction_code, starts_at, ends_at, on_duty, backup) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (shift_id) DO NOTHING",
        shift["shift_id"],
        shift["department_code"],
        shift["jurisdiction_code"],
        shift["starts_at"],
        shift["ends_at"],
        shift["on_duty"],
        shift["backup"],
    )


async def remove_duty_shift(conn: asyncpg.Connection, *, shift_id: UUID) -> None:
    await conn.execute("DELETE FROM duty_shifts WHERE shift_id = $1", shift_id)


async def on_duty(
    conn: asyncpg.Connection, *, department_codes: list[str], division_code: str, at: datetime
) -> dict[str, OnDuty]:
    """Each department's person on duty (and backup) at `at` for a case in `division_code`: the
    shift of the most specific division that holds it. Someone who left (inactive) is nobody to @."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (s.department_code) s.department_code, d.name AS on_duty_name, "
        "CASE WHEN d.active THEN d.wecom_user_id END AS on_duty_user, "
        "b.name AS backup_name, CASE WHEN b.active THEN b.wecom_user_id END AS backup_user "
        "FROM duty_shifts s JOIN duty_people d ON d.person_id = s.on_duty "
        "LEFT JOIN duty_people b ON b.person_id = s.backup "
        "WHERE s.department_code = ANY($1::text[]) AND s.starts_at <= $3 AND s.ends_at > $3 "
        "AND $2 LIKE s.jurisdiction_code || '%' "
        "ORDER BY s.department_code, length(s.jurisdiction_code) DESC",
        department_codes,
        division_code,
        at,
    )
    return {
        r["department_code"]: OnDuty(r["on_duty_user"], r["on_duty_name"], r["backup_user"], r["backup_name"])
        for r in rows
    }


async def save_verified_cases(conn: asyncpg.Connection, *, case_ids: list[UUID], verified_at: datetime) -> None:
    """Cases whose reporter proved their phone; kept apart from `reporters` because the two events
    travel on different partitions and either may come first."""
    await conn.executemany(
        "INSERT INTO verified_reporter_cases (case_id, verified_at) VALUES ($1, $2) ON CONFLICT (case_id) DO NOTHING",
        [(case_id, verified_at) for case_id in case_ids],
    )


async def save_verified_reports(conn: asyncpg.Connection, *, report_ids: list[UUID], verified_at: datetime) -> None:
    """Reports whose reporter proved their phone: an attached report's (一事多报) phone is proven
    by its own report, not by the case's."""
    await conn.executemany(
        "INSERT INTO verified_reporter_reports (report_id, verified_at) VALUES ($1, $2) "
        "ON CONFLICT (report_id) DO NOTHING",
        [(report_id, verified_at) for report_id in report_ids],
    )


async def save_evidence(conn: asyncpg.Connection, *, case_id: UUID, media_id: UUID, role: str) -> None:
    await conn.execute(
        "INSERT INTO case_evidence (case_id, media_id, role) VALUES ($1, $2, $3) "
        "ON CONFLICT (case_id, media_id) DO UPDATE SET role = excluded.role",
        case_id,
        media_id,
        role,
    )


async def evidence_counts(conn: asyncpg.Connection, *, case_id: UUID) -> dict[str, int]:
    """Photos attached to a case by role (before / after)."""
    rows = await conn.fetch("SELECT role, count(*) AS n FROM case_evidence WHERE case_id = $1 GROUP BY role", case_id)
    return {r["role"]: r["n"] for r in rows}


# --- broadcasts -----------------------------------------------------------------------------


async def insert_broadcast(
    conn: asyncpg.Connection,
    *,
    broadcast_id: UUID,
    idempotency_key: str | None,
    target: str,
    msgtype: str,
    content: str,
    body: dict,
    groups: list,
) -> bool:
    """The broadcast and one pending notification per group, in one statement each; False (and
    nothing written) when a broadcast with this id or idempotency key exists already."""
    status = await conn.execute(
        "INSERT INTO broadcasts (broadcast_id, idempotency_key, target, msgtype, content, total) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        broadcast_id,
        idempotency_key,
        target,
        msgtype,
        content,
        len(groups),
    )
    if status != "INSERT 0 1":
        return False
    ids = [
        notification_id(source_id=broadcast_id, template="broadcast", channel="wecom_robot", target=g.robot_key)
        for g in groups
    ]
    await conn.execute(
        "INSERT INTO notifications (notification_id, source_event_id, broadcast_id, group_id, channel, target, "
        "template, body, jurisdiction_code) "
        "SELECT id, $1, $1, group_id, 'wecom_robot', robot_key, 'broadcast', $5::jsonb, jurisdiction_code "
        "FROM unnest($2::uuid[], $3::text[], $4::text[], $6::text[]) AS g(id, group_id, robot_key, jurisdiction_code) "
        "ON CONFLICT DO NOTHING",
        broadcast_id,
        ids,
        [g.group_id for g in groups],
        [g.robot_key for g in groups],
        body,
        [g.jurisdiction_code for g in groups],
    )
    return True


async def broadcast_progress(conn: asyncpg.Connection, *, broadcast_id: UUID, failures_limit: int = 100):
    """The broadcast row, its counts by status, first and last send, and some failures."""
    broadcast = await conn.fetchrow("SELECT * FROM broadcasts WHERE broadcast_id = $1", broadcast_id)
    if broadcast is None:
        return None, None, None
    counts = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE status = 'sent') AS sent, count(*) FILTER (WHERE status = 'failed') AS failed, "
        "count(*) FILTER (WHERE status IN ('pending', 'sending')) AS pending, "
        "count(*) FILTER (WHERE status = 'pending' AND attempts > 0) AS retrying, "
        "max(sent_at) AS last_sent_at FROM notifications WHERE broadcast_id = $1",
        broadcast_id,
    )
    failures = await conn.fetch(
        "SELECT group_id, target, attempts, last_error FROM notifications "
        "WHERE broadcast_id = $1 AND status = 'failed' ORDER BY group_id LIMIT $2",
        broadcast_id,
        failures_limit,
    )
    return broadcast, counts, failures


# --- inbound callbacks ----------------------------------------------------------------------


async def remember_nonce(
    conn: asyncpg.Connection, *, source: str, timestamp: str, nonce: str, forget_before: datetime
) -> bool:
    """Record a callback's (timestamp, nonce); False if it was seen before (a replay)."""
    await conn.execute("DELETE FROM callback_nonces WHERE seen_at < $1", forget_before)
    status = await conn.execute(
        "INSERT INTO callback_nonces (source, ts, nonce) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        source,
        timestamp,
        nonce,
    )
    return status == "INSERT 0 1"


async def remember_inbound(conn: asyncpg.Connection, *, source: str, msg_id: str, message_id: UUID) -> bool:
    """Record an inbound MsgId; False if that message was already turned into an event."""
    # The platforms retry within seconds: two days of memory is plenty and keeps the table small.
    await conn.execute("DELETE FROM inbound_messages WHERE received_at < now() - interval '2 days'")
    status = await conn.execute(
        "INSERT INTO inbound_messages (source, msg_id, message_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        source,
        msg_id,
        message_id,
    )
    return status == "INSERT 0 1"


# --- personal data (PIPL): retention --------------------------------------------------------------

# A forgotten target keeps the row's history (channel, template, status) and names no one.
FORGOTTEN = "forgotten:"


async def forget_reporter_phones(conn: asyncpg.Connection, *, before: datetime) -> int:
    """Drop reporters' phones kept since before `before`, and the SMS targets of finished sends."""
    status = await conn.execute("UPDATE reporters SET phone = NULL WHERE created_at < $1 AND phone IS NOT NULL", before)
    await _forget_targets(conn, before=before, channels=["sms"])
    return int(status.split()[-1])


async def forget_reporter_openids(conn: asyncpg.Connection, *, before: datetime) -> int:
    """Drop reporters' openids and WeCom user ids kept since before `before`, and the official-
    account targets of finished sends."""
    status = await conn.execute(
        "UPDATE reporters SET openid = NULL, wecom_userid = NULL "
        "WHERE created_at < $1 AND (openid IS NOT NULL OR wecom_userid IS NOT NULL)",
        before,
    )
    await _forget_targets(conn, before=before, channels=["wechat_template", "wechat_subscribe"])
    return int(status.split()[-1])


async def _forget_targets(conn: asyncpg.Connection, *, before: datetime, channels: list[str]) -> None:
    await conn.execute(
        "UPDATE notifications SET target = $3 || notification_id::text "
        "WHERE created_at < $1 AND channel = ANY($2::text[]) AND status IN ('sent', 'failed') "
        "AND NOT starts_with(target, $3)",
        before,
        channels,
        FORGOTTEN,
    )
    await conn.execute("DELETE FROM reporters WHERE openid IS NULL AND wecom_userid IS NULL AND phone IS NULL")


async def remember_staff_command(
    conn: asyncpg.Connection,
    *,
    command_id: UUID,
    source: str,
    wecom_user_id: str,
    case_no: str,
    action: str,
    response_code: str | None,
    response_url: str | None,
) -> bool:
    """Record a staff command and how to answer it; False if it was taken already (a redelivery).
    Response codes and URLs expire within a day, so older rows are forgotten."""
    await conn.execute("DELETE FROM staff_commands WHERE received_at < now() - interval '7 days'")
    status = await conn.execute(
        """INSERT INTO staff_commands (command_id, source, wecom_user_id, case_no, action, response_code, response_url)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
        command_id,
        source,
        wecom_user_id,
        case_no,
        action,
        response_code,
        response_url,
    )
    return status == "INSERT 0 1"


async def answer_staff_command(conn: asyncpg.Connection, *, command_id: UUID) -> asyncpg.Record | None:
    """Mark a staff command answered and return it; None if unknown or answered already."""
    return await conn.fetchrow(
        "UPDATE staff_commands SET answered_at = now() WHERE command_id = $1 AND answered_at IS NULL RETURNING *",
        command_id,
    )


async def staff_command_taken(conn: asyncpg.Connection, *, command_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM staff_commands WHERE command_id = $1", command_id))
