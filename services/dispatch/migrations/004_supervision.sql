-- Breaches (督办) of cases owned by centres below this one: the upper level supervises them.
CREATE TABLE supervised_breaches (
    event_id         uuid PRIMARY KEY,
    case_id          uuid        NOT NULL,
    owner_code       text        NOT NULL,
    jurisdiction_code text,
    stage            text        NOT NULL,
    department_code  text        NOT NULL,
    category         text,
    due_at           timestamptz NOT NULL,
    breached_at      timestamptz NOT NULL
);
CREATE INDEX supervised_breaches_time ON supervised_breaches (breached_at DESC);
