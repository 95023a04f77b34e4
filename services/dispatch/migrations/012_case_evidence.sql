-- What media told dispatch about its cases' evidence (media.attached): 办结 is accepted only with
-- "after" photos media holds for the case, and the flags media raised are shown to the dispatcher.
CREATE TABLE case_evidence (
    case_id      uuid        NOT NULL,
    media_id     uuid        NOT NULL,
    role         text        NOT NULL,
    flags        text[]      NOT NULL DEFAULT '{}',
    attached_at  timestamptz NOT NULL,
    PRIMARY KEY (case_id, media_id)
);
