-- Issue 5: every report is triaged, located in the county's grids and checked for duplicates;
-- reporters' phones are also kept encrypted; Open311, WeChat messages and rate limits.

-- lat/lng stay the WGS-84 point (converted from GCJ-02 when that was given); the input as sent is
-- kept beside it so a conversion can always be checked.
ALTER TABLE reports
    ADD COLUMN case_no              text,
    ADD COLUMN input_lat            double precision,
    ADD COLUMN input_lng            double precision,
    ADD COLUMN coord_system         text,
    ADD COLUMN address              text,
    ADD COLUMN needs_locating       boolean     NOT NULL DEFAULT false,
    ADD COLUMN grid_code            text,
    ADD COLUMN village_code         text,
    ADD COLUMN town_code            text,
    ADD COLUMN priority             text,
    ADD COLUMN confidence           double precision,
    ADD COLUMN category_source      text,
    ADD COLUMN needs_manual_triage  boolean     NOT NULL DEFAULT false,
    ADD COLUMN triage               jsonb,
    -- Set when this report joined an existing case (一事多报) instead of opening one.
    ADD COLUMN attached_to_case     boolean     NOT NULL DEFAULT false,
    ADD COLUMN duplicate_distance_m double precision,
    ADD COLUMN reporter_phone_encrypted bytea,
    ADD COLUMN reporter_ref         text,       -- Open311 account_id / WeChat sender, never shown publicly
    ADD COLUMN open311_token        text UNIQUE,
    ADD COLUMN external_media       text[]      NOT NULL DEFAULT '{}';  -- WeChat media ids, fetched later by media

CREATE UNIQUE INDEX reports_case_no_first ON reports (case_no) WHERE NOT attached_to_case;
CREATE INDEX reports_open_by_category ON reports (category, submitted_at) WHERE NOT attached_to_case;

-- Human-friendly case numbers: the day and a counter (20261126-000042).
CREATE SEQUENCE case_no_seq;

-- Dispatchers' corrections, in arrival order; every replica replays them into its model.
CREATE TABLE triage_corrections (
    id                bigserial PRIMARY KEY,
    report_id         uuid,
    case_id           uuid,
    text              text        NOT NULL,
    category          text        NOT NULL,
    priority          text,
    previous_category text,
    corrected_by      text        NOT NULL,
    corrected_at      timestamptz NOT NULL,
    source_event_id   uuid UNIQUE  -- the triage.corrected event, when it came from Kafka
);

-- WeChat messages waiting to be merged into one report (same sender, same group, short window).
CREATE TABLE message_bundles (
    bundle_id     uuid PRIMARY KEY,
    channel       text        NOT NULL,
    group_id      text        NOT NULL,
    sender_id     text        NOT NULL,
    texts         text[]      NOT NULL DEFAULT '{}',
    media_refs    text[]      NOT NULL DEFAULT '{}',
    lat           double precision,
    lng           double precision,
    coord_system  text,
    address       text,
    first_at      timestamptz NOT NULL,
    last_at       timestamptz NOT NULL,
    closes_at     timestamptz NOT NULL,
    report_id     uuid        -- set when the bundle became a report
);
CREATE UNIQUE INDEX message_bundles_open ON message_bundles (channel, group_id, sender_id) WHERE report_id IS NULL;
CREATE INDEX message_bundles_due ON message_bundles (closes_at) WHERE report_id IS NULL;

-- Fixed-window counters shared by every replica.
CREATE TABLE rate_limits (
    key          text        NOT NULL,
    window_start timestamptz NOT NULL,
    hits         integer     NOT NULL,
    PRIMARY KEY (key, window_start)
);
