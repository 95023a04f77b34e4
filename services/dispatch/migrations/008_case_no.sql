-- The human case number intake gave the report (what reporters quote and staff search by).
ALTER TABLE cases ADD COLUMN case_no text;
CREATE INDEX cases_case_no ON cases (case_no);
