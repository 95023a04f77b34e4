-- 我要查询 by phone + a one-time SMS code (sent through notify). Only keyed hashes are kept.
CREATE TABLE query_codes (
    request_id   uuid PRIMARY KEY,
    phone_hash   bytea       NOT NULL,
    code_hash    bytea       NOT NULL,
    expires_at   timestamptz NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    used_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX query_codes_phone ON query_codes (phone_hash, created_at DESC);
