-- 通报 (sla.notice_issued): a department's repeated missed deadlines, on the supervision list of the
-- centre whose division the notice is about and of every centre above it.
CREATE TABLE supervised_notices (
    notice_id          uuid PRIMARY KEY,
    jurisdiction_code  text        NOT NULL,
    department_code    text        NOT NULL,
    breaches           integer     NOT NULL,
    days               integer     NOT NULL,
    since              timestamptz NOT NULL,
    issued_at          timestamptz NOT NULL,
    case_ids           uuid[]      NOT NULL DEFAULT '{}',
    case_nos           text[]      NOT NULL DEFAULT '{}'
);
CREATE INDEX supervised_notices_time ON supervised_notices (issued_at DESC);
