-- Counties imported from their standard files (services/dispatch/county_import.py): each import
-- that changes a county is a new version, recorded with the content hash of the county map it
-- wrote; grids have a kind (ordinary, special 专属网格, micro 微网格 with its ordinary grid).
ALTER TABLE grids ADD COLUMN kind text NOT NULL DEFAULT 'ordinary';
ALTER TABLE grids ADD COLUMN parent_grid text;

CREATE TABLE county_versions (
    county_code   text NOT NULL,
    version       integer NOT NULL,
    content_hash  text NOT NULL,             -- sha256 of the county map's features (shared/county_files.py)
    counts        jsonb NOT NULL,            -- towns, villages, grids by kind, groups
    imported_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (county_code, version)
);
