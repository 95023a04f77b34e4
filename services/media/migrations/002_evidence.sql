-- Evidence (issue 6): what each object is and what its EXIF says, derived copies, retention.
ALTER TABLE media_objects
    ADD COLUMN kind           text CHECK (kind IN ('image', 'video', 'audio')),
    ADD COLUMN width          integer,
    ADD COLUMN height         integer,
    ADD COLUMN captured_at    timestamptz,
    ADD COLUMN latitude       double precision,
    ADD COLUMN longitude      double precision,
    -- Stripped copy (no EXIF) and thumbnail of an image; the original is never changed.
    ADD COLUMN public_key     text,
    ADD COLUMN thumbnail_key  text,
    -- Extended whenever the same content is uploaded again; NULL keeps it forever.
    ADD COLUMN retain_until   timestamptz,
    ADD COLUMN purged_at      timestamptz;
CREATE INDEX media_objects_retention ON media_objects (retain_until) WHERE purged_at IS NULL;

-- A media item is attached to at most one case, as evidence of the state before or after
-- rectification (整改前/后); flags are failed evidence checks, for a reviewer.
ALTER TABLE media
    ADD COLUMN role         text CHECK (role IN ('before', 'after')),
    ADD COLUMN attached_at  timestamptz,
    ADD COLUMN flags        text[] NOT NULL DEFAULT '{}',
    ADD COLUMN distance_m   double precision,
    ADD COLUMN upload_id    uuid;

-- Presigned uploads: the client PUTs to staging_key; only a completed, verified upload counts.
CREATE TABLE uploads (
    upload_id      uuid PRIMARY KEY,
    staging_key    text        NOT NULL,
    filename       text,
    content_type   text        NOT NULL,
    size_bytes     bigint      NOT NULL,
    sha256         text        NOT NULL,
    status         text        NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'verifying', 'completed', 'rejected', 'expired')),
    reason         text,
    media_id       uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    complete_by    timestamptz NOT NULL,
    finished_at    timestamptz
);
CREATE INDEX uploads_open ON uploads (complete_by) WHERE status IN ('pending', 'verifying');

-- What media knows of each case: where and when it was reported (report.submitted), which EXIF is
-- checked against, and whose it is (the case events), which decides who may see its evidence.
CREATE TABLE cases (
    case_id              uuid PRIMARY KEY,
    report_id            uuid,
    lat                  double precision,
    lng                  double precision,
    submitted_at         timestamptz,
    jurisdiction_code    text        NOT NULL,
    department_code      text,
    co_department_codes  text[]      NOT NULL DEFAULT '{}',
    -- Position of the last case event applied (0: only the report is known).
    seq                  integer     NOT NULL DEFAULT 0
);

-- Generated before/after comparison images (整改前后对比), one per pair of photos.
CREATE TABLE comparisons (
    object_key       text PRIMARY KEY,
    case_id          uuid        NOT NULL,
    before_media_id  uuid        NOT NULL REFERENCES media (media_id),
    after_media_id   uuid        NOT NULL REFERENCES media (media_id),
    generated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comparisons_case ON comparisons (case_id, generated_at);
