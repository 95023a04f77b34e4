-- The HTTP request an event came from (X-Request-ID), sent as the Kafka header request_id so the
-- consumers' logs name it too. NULL for events no request caused (timers, other events' effects
-- carry the id of the request that started them).
ALTER TABLE outbox ADD COLUMN request_id text;
