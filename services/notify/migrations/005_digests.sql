-- 派单 digests (派单汇总): when a group robot has spent its minute, queued 派单 for the group go
-- out merged in one message. Each notification keeps its own row and is marked sent by the digest
-- that carried it; the digest row keeps what was sent.
ALTER TABLE notifications ADD COLUMN digest_line text;  -- its line in a digest; NULL: never merged
ALTER TABLE notifications ADD COLUMN digest_id uuid;    -- the digest that carried it (or is carrying it)
CREATE TABLE digests (
    digest_id      uuid PRIMARY KEY,
    robot_key      text        NOT NULL,
    body           jsonb       NOT NULL,
    notifications  integer     NOT NULL,
    created_at     timestamptz NOT NULL,
    sent_at        timestamptz
);
CREATE INDEX notifications_digest ON notifications (digest_id) WHERE digest_id IS NOT NULL;
-- A digest takes its group's whole queue of 派单, due or not.
CREATE INDEX notifications_mergeable ON notifications (target, created_at)
    WHERE status = 'pending' AND digest_line IS NOT NULL;
