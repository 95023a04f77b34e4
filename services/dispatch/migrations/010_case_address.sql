-- The place as the reporter gave it, so staff can find a case by its address (地址) as well as by
-- its number or description.
ALTER TABLE cases ADD COLUMN address text;
