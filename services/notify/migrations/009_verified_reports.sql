-- A phone proved by its owner, per report: the phone of a report attached to another's case
-- (一事多报) is proven by that report (reporter.verified's report_ids), not by the case's first one.
CREATE TABLE verified_reporter_reports (
    report_id    uuid PRIMARY KEY,
    verified_at  timestamptz NOT NULL
);
