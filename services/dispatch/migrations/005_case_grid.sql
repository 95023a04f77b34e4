-- The grid (网格) a case is in, so a grid worker sees the cases of the grid they look after.
ALTER TABLE cases ADD COLUMN grid_code text;
CREATE INDEX cases_grid ON cases (grid_code text_pattern_ops);
