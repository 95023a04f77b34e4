-- Every notification is its own row: sent by the delivery loop with retries and backoff,
-- deduplicated by (source event, channel, target) so a redelivered event never sends twice.
CREATE TABLE notifications (
    notification_id  uuid PRIMARY KEY,
    source_event_id  uuid        NOT NULL,
    case_id          uuid,
    channel          text        NOT NULL,
    target           text        NOT NULL,
    template         text        NOT NULL,
    body             jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending',
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    UNIQUE (source_event_id, channel, target)
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_case ON notifications (case_id);
