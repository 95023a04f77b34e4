-- The official calendar as an admin entered or corrected it through the API (a year here wins
-- over shared/data/holidays.yaml), and every change to it: who, when, and the year before and after.
CREATE TABLE calendar_years (
    year        integer PRIMARY KEY,
    source      text        NOT NULL,
    holidays    jsonb       NOT NULL,
    workdays    jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL,
    updated_by  text        NOT NULL
);
CREATE TABLE calendar_changes (
    id          bigserial PRIMARY KEY,
    year        integer     NOT NULL,
    changed_at  timestamptz NOT NULL,
    actor       text        NOT NULL,
    actor_name  text,
    before      jsonb,
    after       jsonb       NOT NULL
);
CREATE INDEX calendar_changes_year ON calendar_changes (year, changed_at);
