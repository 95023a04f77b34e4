-- 我要查询 abuse controls: a reporter_phone is typed by whoever reports, so code requests must not
-- let anyone text a stranger at will. Every accepted code request and every wrong code is one row
-- (by the phone's keyed hash and the client's address), whether or not the phone ever reported, so
-- cooldowns, daily caps and the CAPTCHA threshold treat every phone alike and reveal nothing.
CREATE TABLE query_attempts (
    id          bigserial   PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('code', 'wrong-code')),
    phone_hash  bytea       NOT NULL,
    ip          text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX query_attempts_phone ON query_attempts (phone_hash, at);
CREATE INDEX query_attempts_ip ON query_attempts (ip, at);

-- The global SMS budget counts the codes actually texted in the last hour.
CREATE INDEX query_codes_created ON query_codes (created_at);

-- Self-hosted image CAPTCHAs: only the keyed hash of the answer is kept; each is checked once.
CREATE TABLE captchas (
    captcha_id   uuid PRIMARY KEY,
    answer_hash  bytea       NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX captchas_expires ON captchas (expires_at);

-- Phones whose owner proved them (a texted 我要查询 code was entered): only these get case updates
-- by SMS. Keyed hash only.
CREATE TABLE verified_phones (
    phone_hash   bytea PRIMARY KEY,
    verified_at  timestamptz NOT NULL
);
