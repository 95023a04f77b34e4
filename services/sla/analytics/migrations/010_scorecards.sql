-- Analytics lives in its own schema (<sla schema>_analytics) with its own processed_events, so a
-- rebuild drops only this and reads the topics again (python -m services.sla.analytics.rebuild).

-- One row per department per dispatch of a case (see services/sla/analytics/scorecards.py).
CREATE TABLE rounds (
    case_id            uuid        NOT NULL,
    department_code    text        NOT NULL,
    started_at         timestamptz NOT NULL,
    day                date        NOT NULL,  -- Beijing date of started_at: the period it counts in
    lead               boolean     NOT NULL,
    round_no           integer     NOT NULL,
    action             text        NOT NULL,
    category           text        NOT NULL,
    priority           text        NOT NULL,
    case_no            text,
    jurisdiction_code  text,
    town_code          text,
    village_code       text,
    grid_code          text,
    joint              boolean     NOT NULL DEFAULT false,
    acknowledged_at    timestamptz,
    plan_at            timestamptz,
    resolved_at        timestamptz,
    returned_at        timestamptz,
    ended_at           timestamptz,
    end_reason         text,
    ack_late           boolean     NOT NULL DEFAULT false,
    plan_late          boolean     NOT NULL DEFAULT false,
    resolve_late       boolean     NOT NULL DEFAULT false,
    reopened           boolean     NOT NULL DEFAULT false,
    rating             integer,
    verified_at        timestamptz,
    paused_at          timestamptz,
    paused_minutes     double precision NOT NULL DEFAULT 0,
    extensions         integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (case_id, department_code, started_at)
);
CREATE INDEX rounds_day ON rounds (day);

-- sla.breached, kept by itself too: it may arrive before the dispatch it belongs to.
CREATE TABLE breaches (
    case_id          uuid        NOT NULL,
    department_code  text        NOT NULL,
    started_at       timestamptz NOT NULL,
    stage            text        NOT NULL,
    fired_at         timestamptz,
    PRIMARY KEY (case_id, department_code, started_at, stage)
);

-- Reports (report.submitted and 一事多报 report.attached), for hotspots and discovered→reported.
CREATE TABLE reports (
    report_id     uuid        PRIMARY KEY,
    case_id       uuid        NOT NULL,
    submitted_at  timestamptz NOT NULL,
    day           date        NOT NULL,
    seen_at       timestamptz,  -- when the reporter saw the problem, when the report says so
    category      text,
    channel       text        NOT NULL,
    town_code     text,
    village_code  text,
    grid_code     text,
    attached      boolean     NOT NULL DEFAULT false
);
CREATE INDEX reports_day ON reports (day);
CREATE INDEX reports_case ON reports (case_id);

-- 回潮 across cases: a later case (dispatched at `at`) is the same problem at the same place as
-- `case_id`; the resolution of `case_id` last before `at` did not hold.
CREATE TABLE recurrences (
    case_id     uuid        NOT NULL,
    later_case  uuid        NOT NULL,
    at          timestamptz NOT NULL,
    PRIMARY KEY (case_id, later_case)
);
