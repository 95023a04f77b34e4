-- Wake the outbox relay when a transaction that wrote outbox rows commits: NOTIFY is delivered at
-- commit (once per channel per transaction, never for a rolled-back one), so events leave within
-- milliseconds instead of at the relay's next poll. The channel is per schema, i.e. per service.
-- The relay still polls, slowly, in case a notification is missed while it reconnects.
CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox();
