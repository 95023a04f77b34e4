-- Reports as received. The reporter's phone is never stored in clear: a keyed hash for lookup
-- and a masked form for display.
CREATE TABLE reports (
    report_id            uuid PRIMARY KEY,
    case_id              uuid        NOT NULL,
    description          text        NOT NULL,
    category             text,
    lat                  double precision,
    lng                  double precision,
    channel              text        NOT NULL,
    reporter_phone_hash  bytea,
    reporter_phone_masked text,
    media_ids            uuid[]      NOT NULL DEFAULT '{}',
    idempotency_key      text UNIQUE,
    status               text        NOT NULL DEFAULT 'submitted',
    department_code      text,
    submitted_at         timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reports_case_id ON reports (case_id);
CREATE INDEX reports_phone_hash ON reports (reporter_phone_hash) WHERE reporter_phone_hash IS NOT NULL;
