-- 督办 lists quote the case by its human number (案件编号), as every other page does.
ALTER TABLE supervised_breaches ADD COLUMN case_no text;
