-- Timers per (case, stage, department, round): a case dispatched again (transfer, reopen,
-- escalation) starts a new round. `next_fire_at` is when the ticker must look at a timer next
-- (its warning, a reminder or its deadline); NULL when stopped, paused or breached.
ALTER TABLE timers DROP CONSTRAINT timers_case_id_stage_key;
ALTER TABLE timers
    ADD COLUMN round              integer          NOT NULL DEFAULT 1,
    ADD COLUMN priority           text             NOT NULL DEFAULT 'normal',
    ADD COLUMN level              text             NOT NULL DEFAULT 'county',
    ADD COLUMN category           text,
    ADD COLUMN jurisdiction_code  text,
    ADD COLUMN owner_code         text,
    ADD COLUMN clock              text             NOT NULL DEFAULT 'wall',
    ADD COLUMN minutes            double precision NOT NULL DEFAULT 0,
    ADD COLUMN warn_at            timestamptz,
    ADD COLUMN next_fire_at       timestamptz,
    ADD COLUMN reminders          integer          NOT NULL DEFAULT 0,
    ADD COLUMN last_reminder_at   timestamptz,
    ADD COLUMN paused_at          timestamptz,
    ADD COLUMN elapsed_minutes    double precision NOT NULL DEFAULT 0,
    ADD COLUMN stop_reason        text;
UPDATE timers SET warn_at = due_at, next_fire_at = due_at WHERE fired_at IS NULL AND stopped_at IS NULL;
CREATE UNIQUE INDEX timers_one_per_round ON timers (case_id, stage, department_code, round);
CREATE INDEX timers_case ON timers (case_id) WHERE stopped_at IS NULL;
DROP INDEX timers_pending_due;
CREATE INDEX timers_next_fire ON timers (next_fire_at) WHERE next_fire_at IS NOT NULL;

-- What counts against a department (考核): per day, stages finished in time or late, warnings.
CREATE TABLE department_scores (
    department_code  text    NOT NULL,
    day              date    NOT NULL,
    on_time          integer NOT NULL DEFAULT 0,
    late             integer NOT NULL DEFAULT 0,
    warnings         integer NOT NULL DEFAULT 0,
    breaches         integer NOT NULL DEFAULT 0,
    PRIMARY KEY (department_code, day)
);
