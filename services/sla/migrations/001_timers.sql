-- Deadlines are rows. The ticker claims due rows with SKIP LOCKED, so with several replicas
-- each timer fires once, and after a restart every overdue timer fires at once.
CREATE TABLE timers (
    id               bigserial PRIMARY KEY,
    case_id          uuid        NOT NULL,
    stage            text        NOT NULL,
    department_code  text        NOT NULL,
    started_at       timestamptz NOT NULL,
    due_at           timestamptz NOT NULL,
    fired_at         timestamptz,
    stopped_at       timestamptz,
    UNIQUE (case_id, stage)
);
CREATE INDEX timers_pending_due ON timers (due_at) WHERE fired_at IS NULL AND stopped_at IS NULL;
