-- 通报: repeated breaches of one department within the policy's window (notices in the SLA policy).
-- One row per notice; breached timers are counted from `timers.fired_at`.
CREATE TABLE notices (
    notice_id        uuid PRIMARY KEY,
    department_code  text        NOT NULL,
    issued_at        timestamptz NOT NULL,
    since            timestamptz NOT NULL,
    breaches         integer     NOT NULL,
    case_ids         uuid[]      NOT NULL DEFAULT '{}'
);
CREATE INDEX notices_department ON notices (department_code, issued_at DESC);
CREATE INDEX timers_breached ON timers (department_code, fired_at) WHERE fired_at IS NOT NULL;
