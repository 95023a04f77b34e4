-- Cases whose reporter proved the phone they reported with (reporter.verified from intake): only
-- these cases' updates may go to the reporter by SMS. WeChat and WeCom reporters need no proof.
CREATE TABLE verified_reporter_cases (
    case_id      uuid PRIMARY KEY,
    verified_at  timestamptz NOT NULL
);
