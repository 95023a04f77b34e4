-- Concurrent delivery: a claimed row is 'sending' with its lease expiry in next_attempt_at, so
-- a sender that died leaves rows that become due again by themselves.
DROP INDEX notifications_due;
CREATE INDEX notifications_claimable ON notifications (next_attempt_at) WHERE status IN ('pending', 'sending');

-- Broadcasts (政策宣传进社区): one message, one notification row per resident group.
CREATE TABLE broadcasts (
    broadcast_id     uuid PRIMARY KEY,
    idempotency_key  text UNIQUE,
    target           text        NOT NULL,
    msgtype          text        NOT NULL,
    content          text        NOT NULL,
    total            integer     NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE notifications ADD COLUMN broadcast_id uuid REFERENCES broadcasts;
ALTER TABLE notifications ADD COLUMN group_id text;
CREATE INDEX notifications_broadcast ON notifications (broadcast_id, status) WHERE broadcast_id IS NOT NULL;

-- Each group robot's sends within the last minute and any hold WeCom imposed (45009): kept in
-- the database so neither a restart nor a second replica sends a burst over the limit.
CREATE TABLE robot_windows (
    robot_key      text PRIMARY KEY,
    sent_at        timestamptz[] NOT NULL DEFAULT '{}',
    blocked_until  timestamptz
);

-- How to reach the reporter of a case (filled from report.submitted when intake knows it).
CREATE TABLE reporters (
    case_id       uuid PRIMARY KEY,
    openid        text,
    wecom_userid  text,
    phone         text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Inbound callbacks: a MsgId is turned into one message.received, however often it is retried,
-- and a (timestamp, nonce) pair is accepted once within the freshness window.
CREATE TABLE inbound_messages (
    source       text        NOT NULL,
    msg_id       text        NOT NULL,
    message_id   uuid        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, msg_id)
);
CREATE INDEX inbound_messages_received ON inbound_messages (received_at);
CREATE TABLE callback_nonces (
    source   text        NOT NULL,
    nonce    text        NOT NULL,
    ts       text        NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, ts, nonce)
);
CREATE INDEX callback_nonces_seen ON callback_nonces (seen_at);

-- Evidence attached to a case (from media.attached), so the 办结 notice can state the
-- before/after comparison even when the resolving event does not list it.
CREATE TABLE case_evidence (
    case_id   uuid NOT NULL,
    media_id  uuid NOT NULL,
    role      text NOT NULL,
    PRIMARY KEY (case_id, media_id)
);
