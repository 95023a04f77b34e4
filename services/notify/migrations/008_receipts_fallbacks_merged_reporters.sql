-- Receipts and fallbacks: each notification says whether its channel confirmed it (receipt), and
-- carries the channels that take over when it fails or is not confirmed in time (fallback: a list
-- of steps, each a list of {channel, target, template, body}). A fallback row is the notification
-- the same event would have sent on that channel: same source event, so (source event, channel,
-- target) keeps it to one however often the failure is handled.
ALTER TABLE notifications ADD COLUMN fallback jsonb NOT NULL DEFAULT '[]';
ALTER TABLE notifications ADD COLUMN fallback_of uuid;        -- the notification this one takes over from
ALTER TABLE notifications ADD COLUMN receipt text;            -- confirmed | awaiting | failed | unconfirmed
ALTER TABLE notifications ADD COLUMN receipt_ref text;        -- the channel's message id (template msgid)
ALTER TABLE notifications ADD COLUMN receipt_due_at timestamptz;  -- awaiting confirmation until
ALTER TABLE notifications ADD COLUMN receipt_at timestamptz;
CREATE INDEX notifications_awaiting ON notifications (receipt_due_at) WHERE receipt = 'awaiting';
CREATE INDEX notifications_receipt_ref ON notifications (channel, receipt_ref) WHERE receipt_ref IS NOT NULL;

-- 一事多报: every reporter of a case, one row per report (the first reporter's and each attached
-- report's). Rows from before keep their case id as report id.
ALTER TABLE reporters ADD COLUMN report_id uuid;
UPDATE reporters SET report_id = case_id WHERE report_id IS NULL;
ALTER TABLE reporters ALTER COLUMN report_id SET NOT NULL;
ALTER TABLE reporters DROP CONSTRAINT reporters_pkey;
ALTER TABLE reporters ADD PRIMARY KEY (case_id, report_id);
CREATE UNIQUE INDEX reporters_report ON reporters (report_id);  -- a report joins one case: its row's own key
-- A report attached to an open case is not the case's own: its phone is proven by report, not by case.
ALTER TABLE reporters ADD COLUMN attached boolean NOT NULL DEFAULT false;
-- The secret of the report's one-tap 办结 confirmation link (intake's /h5/confirm), for the 回访 message.
ALTER TABLE reporters ADD COLUMN confirm_token text;

-- Cases merged into another (case.merged): their reporters follow the case they were merged into.
CREATE TABLE merged_cases (
    case_id       uuid PRIMARY KEY,
    into_case_id  uuid        NOT NULL,
    merged_at     timestamptz NOT NULL
);
CREATE INDEX merged_cases_into ON merged_cases (into_case_id);
