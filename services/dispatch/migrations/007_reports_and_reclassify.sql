-- 一事多报: how many reports a case gathered (the first one included).
ALTER TABLE cases ADD COLUMN report_count integer NOT NULL DEFAULT 1;
