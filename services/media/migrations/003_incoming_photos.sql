-- Photos sent with a report (multipart to intake), parked in intake's incoming bucket until media
-- has validated and stored them as the case's 'before' evidence (or refused them).
CREATE TABLE incoming_photos (
    object_key    text PRIMARY KEY,
    case_id       uuid        NOT NULL,
    report_id     uuid        NOT NULL,
    filename      text,
    content_type  text,
    submitted_at  timestamptz NOT NULL,
    status        text        NOT NULL DEFAULT 'pending',  -- pending | taking | stored | rejected | missing
    taking_until  timestamptz,
    media_id      uuid,
    reason        text
);
CREATE INDEX incoming_photos_pending ON incoming_photos (submitted_at) WHERE status IN ('pending', 'taking');
