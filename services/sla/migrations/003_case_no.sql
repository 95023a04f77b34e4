-- The human case number (案件编号) travels with a case's deadlines, so 催办 and 督办 quote it.
ALTER TABLE timers ADD COLUMN case_no text;
