-- Staff commands from WeCom (staff.command: a card's 接单/退回, the AI bot's 接单/进展/办结/查), each
-- acted on at most once by its command id. A 办结 waits here for its photos (waiting_photos) until
-- media has attached them as "after" evidence (media.attached with the command id as correlation
-- id) or refused one (media.rejected), then it is answered (answered).
CREATE TABLE staff_commands (
    command_id       uuid PRIMARY KEY,
    source           text        NOT NULL,
    wecom_user_id    text        NOT NULL,
    case_no          text        NOT NULL,
    action           text        NOT NULL,
    case_id          uuid,
    person_id        text,
    text             text,
    status           text        NOT NULL DEFAULT 'answered' CHECK (status IN ('waiting_photos', 'answered')),
    photos_expected  integer     NOT NULL DEFAULT 0,
    after_media_ids  uuid[]      NOT NULL DEFAULT '{}',
    outcome          text,
    received_at      timestamptz NOT NULL DEFAULT now(),
    answered_at      timestamptz
);
CREATE INDEX staff_commands_waiting ON staff_commands (case_id) WHERE status = 'waiting_photos';
