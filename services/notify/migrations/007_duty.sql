-- Who is on duty (值班), as dispatch's directory publishes it on gridlink.directory: people with
-- their WeCom user ids and roles (never mobiles), and each department's shifts. Notify @-mentions
-- the person on duty in 派单 and sends them the 接单/退回 card.
CREATE TABLE duty_people (
    person_id      text PRIMARY KEY,
    name           text        NOT NULL,
    wecom_user_id  text,
    active         boolean     NOT NULL,
    saved_at       timestamptz NOT NULL   -- as of this change in dispatch: an older one never overwrites it
);
CREATE TABLE duty_shifts (
    shift_id           uuid PRIMARY KEY,
    department_code    text        NOT NULL,
    jurisdiction_code  text        NOT NULL,
    starts_at          timestamptz NOT NULL,
    ends_at            timestamptz NOT NULL,
    on_duty            text        NOT NULL,
    backup             text
);
CREATE INDEX duty_shifts_department ON duty_shifts (department_code, starts_at);

-- 派单 not acknowledged within half the acknowledgement time: the backup is @-mentioned too. A row
-- per (case, department, 派单 round); the delivery side claims due rows with SKIP LOCKED and queues
-- the message in the same transaction, so a restart neither loses nor doubles one.
CREATE TABLE duty_escalations (
    case_id          uuid        NOT NULL,
    department_code  text        NOT NULL,
    dispatch_seq     integer     NOT NULL,
    due_at           timestamptz NOT NULL,
    robot_key        text        NOT NULL,
    backup_user_id   text        NOT NULL,
    body             jsonb       NOT NULL,   -- the message to send then
    jurisdiction_code text,
    fired_at         timestamptz,
    cancelled_at     timestamptz,
    PRIMARY KEY (case_id, department_code, dispatch_seq)
);
CREATE INDEX duty_escalations_due ON duty_escalations (due_at) WHERE fired_at IS NULL AND cancelled_at IS NULL;

-- Each case's human number (案件编号, the one 我要查询 takes), from the case and report events, so
-- messages about events that do not carry it (older deadline events) still quote it.
CREATE TABLE case_numbers (
    case_id  uuid PRIMARY KEY,
    case_no  text NOT NULL
);
-- The WeCom group a reporter @-mentioned the bot in: their answers go back to that group.
ALTER TABLE reporters ADD COLUMN group_id text;
