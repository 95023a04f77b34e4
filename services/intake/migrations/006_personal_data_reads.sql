-- PIPL: every time staff are shown a reporter's personal data (phone, address, exact point), who,
-- when, which report and case, and through which route. Supervisors read it; nothing deletes it.
CREATE TABLE personal_data_reads (
    id                 bigserial PRIMARY KEY,
    actor              text        NOT NULL,  -- role:subject, as in every event's actor
    role               text        NOT NULL,
    jurisdiction_code  text        NOT NULL,
    report_id          uuid        NOT NULL,
    case_id            uuid        NOT NULL,
    route              text        NOT NULL,
    read_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX personal_data_reads_case ON personal_data_reads (case_id, read_at);
CREATE INDEX personal_data_reads_actor ON personal_data_reads (actor, read_at);
