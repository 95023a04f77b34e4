-- Objects are content-addressed by SHA-256: the same photo sent twice is stored once
-- (media_objects) and linked twice (media).
CREATE TABLE media_objects (
    sha256        text PRIMARY KEY,
    content_type  text        NOT NULL,
    size_bytes    bigint      NOT NULL,
    object_key    text        NOT NULL,
    stored_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE media (
    media_id     uuid PRIMARY KEY,
    sha256       text        NOT NULL REFERENCES media_objects (sha256),
    filename     text,
    report_id    uuid,
    case_id      uuid,
    uploaded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_case ON media (case_id);
