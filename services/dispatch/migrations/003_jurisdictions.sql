-- The county's divisions and grids (网格), with each grid's worker and residents' WeChat group.
-- Loaded by `make seed` (the demo county) or by a county's own import.
CREATE TABLE jurisdictions (
    code         text PRIMARY KEY,           -- 6, 9 or 12 digit division code
    name         text NOT NULL,
    level        text NOT NULL,              -- county | town | village
    kind         text,                       -- subdistrict, town, township, community, village
    parent_code  text REFERENCES jurisdictions (code)
);
CREATE INDEX jurisdictions_parent ON jurisdictions (parent_code);

CREATE TABLE grids (
    code          text PRIMARY KEY,          -- 15 digits: village code + 3
    name          text NOT NULL,
    village_code  text NOT NULL REFERENCES jurisdictions (code),
    polygon       jsonb NOT NULL,            -- [[lat, lng], ...] WGS-84
    worker_id     text NOT NULL,             -- WeCom user id, to @ the grid worker
    worker_name   text NOT NULL,
    group_id      text NOT NULL,             -- the grid's residents' WeChat group
    group_name    text NOT NULL
);
CREATE INDEX grids_village ON grids (village_code);
