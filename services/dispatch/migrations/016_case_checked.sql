-- 现场核实: when a grid worker checked the case on site (once per case; the mobile page lists the
-- cases of a grid not yet checked).
ALTER TABLE cases ADD COLUMN checked_at timestamptz;
