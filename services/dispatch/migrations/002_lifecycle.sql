-- The full case lifecycle: lead and co-handling departments, position in the case's history,
-- owner centre and level, flags; versions of the responsibility list; command idempotency.
ALTER TABLE cases
    ADD COLUMN seq                       integer     NOT NULL DEFAULT 1,
    ADD COLUMN owner_code                text,
    ADD COLUMN level                     text,
    ADD COLUMN category_name             text,
    ADD COLUMN department_name           text,
    ADD COLUMN co_department_codes       text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN acknowledged_departments  text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN plan_submitted            boolean     NOT NULL DEFAULT false,
    ADD COLUMN extension_pending         boolean     NOT NULL DEFAULT false,
    ADD COLUMN overdue                   boolean     NOT NULL DEFAULT false,
    ADD COLUMN recurrence_of             uuid,
    ADD COLUMN merged_into               uuid,
    ADD COLUMN rating                    smallint,
    ADD COLUMN resolved_at               timestamptz,
    ADD COLUMN before_media_ids          uuid[]      NOT NULL DEFAULT '{}',
    ADD COLUMN after_media_ids           uuid[]      NOT NULL DEFAULT '{}';
CREATE INDEX cases_jurisdiction ON cases (jurisdiction_code text_pattern_ops);
CREATE INDEX cases_created ON cases (created_at DESC, case_id DESC);
CREATE INDEX cases_recurrence ON cases (category, created_at) WHERE lat IS NOT NULL;

ALTER TABLE case_timeline
    ADD COLUMN seq     integer,
    ADD COLUMN reason  text;

CREATE TABLE responsibility_lists (
    version     text PRIMARY KEY,
    document    jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL
);

-- A command repeated with the same Idempotency-Key answers what it answered the first time.
CREATE TABLE idempotency_keys (
    key           text PRIMARY KEY,
    request_hash  text        NOT NULL,
    status_code   integer     NOT NULL,
    response      jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
