-- Issue 17: the triage model that judged each report, and the retraining job's decisions.

ALTER TABLE reports ADD COLUMN triage_model_version text;

-- One row per retraining run: the candidate trained on the shipped data plus the corrections up to
-- corrections_through, its held-out scores and the current model's, and whether it replaced it.
-- Every replica uses the newest accepted row (none: the shipped data alone).
CREATE TABLE triage_models (
    id                  bigserial   PRIMARY KEY,
    version             text        NOT NULL,
    corrections_through bigint      NOT NULL,
    accepted            boolean     NOT NULL,
    candidate_scores    jsonb       NOT NULL,
    current_scores      jsonb       NOT NULL,
    reason              text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX triage_models_accepted ON triage_models (id) WHERE accepted;
