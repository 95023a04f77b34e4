-- Transactional outbox: events are written here in the same transaction as the state they
-- describe, and the relay publishes them to Kafka afterwards (then deletes the row).
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    event_id    uuid        NOT NULL UNIQUE,
    topic       text        NOT NULL,
    key         text        NOT NULL,
    value       bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Exactly-once effects: an incoming event id is inserted in the handler's transaction;
-- a redelivered event finds its id and is skipped.
CREATE TABLE processed_events (
    event_id      uuid PRIMARY KEY,
    processed_at  timestamptz NOT NULL DEFAULT now()
);
