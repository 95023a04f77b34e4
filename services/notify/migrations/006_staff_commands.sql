-- Staff acting on cases from WeCom: one row per card click or bot command (its id derives from the
-- click's TaskId+FromUserName+EventKey or the bot's msgid, so a second delivery adds nothing), with
-- what notify needs to answer it and never publishes: the click's one-use response_code
-- (update_template_card) or the bot's one-use response_url (valid an hour).
CREATE TABLE staff_commands (
    command_id     uuid PRIMARY KEY,
    source         text        NOT NULL CHECK (source IN ('card', 'bot')),
    wecom_user_id  text        NOT NULL,
    case_no        text        NOT NULL,
    action         text        NOT NULL,
    response_code  text,
    response_url   text,
    received_at    timestamptz NOT NULL DEFAULT now(),
    answered_at    timestamptz
);
CREATE INDEX staff_commands_received ON staff_commands (received_at);
