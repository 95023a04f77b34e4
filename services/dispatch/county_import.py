"""Import a county from its standard files: `python -m services.dispatch.county_import DIR`
(`make import-county DIR=...`; `make seed` imports the demo county, shared/data/counties/330727).

Design — one county map, one placement rule:

1. Everything is read and validated first (shared/county_files.py): every error is printed with
   its file and line or feature index, and nothing is changed.
2. The county map is built from the files: the GeoJSON file services already load at start-up
   (`GRIDLINK_COUNTY_MAP_PATH`; intake places reports on it with shared.jurisdictions'
   `County.find_grid`, the only placement rule) with its `version` and `content_hash`.
3. In one PostgreSQL transaction on this dispatch instance's schema, the county's divisions and
   grids replace the previous ones (what the new version lacks is deleted, so a failing delete —
   a division cases still point at — fails the whole import) and the version is recorded in
   `county_versions` with the same content hash. Dispatch's tables are a copy of the map for
   listing and naming, never for placing. Importing the same content again changes nothing.
4. Only when that transaction has committed are the county map and notify's broadcast groups
   file (`groups.csv` beside it, or `--groups`) replaced, each by an atomic rename of a file
   written beforehand. Services read them at their next start (a rolling restart), and dispatch's
   tables and the map carry the same version and hash to compare.

So a bad file leaves the previous version — tables and files — as it was. An instance imports
only its own county (its `GRIDLINK_JURISDICTION_CODE` starts with the county's code): each county
of a city runs its own instances with its own map, schema and staff (see docs/go-live.md).
"""

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from services.dispatch.settings import DispatchSettings
from shared.county_files import (
    CountyFiles,
    InvalidCountyFiles,
    content_hash,
    county_map,
    groups_text,
    map_features,
    map_text,
    read_county_dir,
)
from shared.db import apply_migrations, create_pool, schema_name


class WrongCounty(ValueError):
    """The files are another county's than this dispatch instance serves."""


@dataclass(frozen=True)
class ImportResult:
    county_code: str
    version: int
    changed: bool  # False: the same content was already the current version
    counts: dict[str, int]


def counts_of(files: CountyFiles) -> dict[str, int]:
    kinds = [g.kind for g in files.grids]
    return {
        "towns": len(files.towns),
        "villages": len(files.villages),
        "grids": kinds.count("ordinary"),
        "special_grids": kinds.count("special"),
        "micro_grids": kinds.count("micro"),
        "groups": len(files.groups),
    }


async def apply_county(conn: asyncpg.Connection, files: CountyFiles) -> ImportResult:
    """Replace the county's divisions and grids as a new version, in the caller's transaction."""
    code = files.county.code
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"county-import:{code}")
    digest = content_hash(map_features(files))
    current = await conn.fetchrow(
        "SELECT version, content_hash FROM county_versions WHERE county_code = $1 ORDER BY version DESC LIMIT 1",
        code,
    )
    counts = counts_of(files)
    if current is not None and current["content_hash"] == digest:
        return ImportResult(code, current["version"], False, counts)
    version = (current["version"] if current else 0) + 1
    divisions: list[tuple[str, str, str, str | None, str | None]] = [(code, files.county.name, "county", None, None)]
    divisions += [(d.code, d.name, d.level, d.kind, d.parent_code) for d in (*files.towns, *files.villages)]
    await conn.executemany(
        "INSERT INTO jurisdictions (code, name, level, kind, parent_code) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,"
        " kind = EXCLUDED.kind, parent_code = EXCLUDED.parent_code",
        divisions,
    )
    grids = []
    for g in files.grids:
        assert g.worker and g.group  # read_county_dir checked it
        grids.append(
            (g.code, g.name, g.village_code, [list(p) for p in g.polygon], *g.worker, *g.group, g.kind, g.parent_grid)
        )
    await conn.executemany(
        "INSERT INTO grids (code, name, village_code, polygon, worker_id, worker_name, group_id, group_name,"
        " kind, parent_grid) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (code) DO UPDATE SET"
        " name = EXCLUDED.name, village_code = EXCLUDED.village_code, polygon = EXCLUDED.polygon,"
        " worker_id = EXCLUDED.worker_id, worker_name = EXCLUDED.worker_name, group_id = EXCLUDED.group_id,"
        " group_name = EXCLUDED.group_name, kind = EXCLUDED.kind, parent_grid = EXCLUDED.parent_grid",
        grids,
    )
    # What the new version no longer has goes: grids first, then divisions from the bottom up.
    await conn.execute(
        "DELETE FROM grids WHERE starts_with(code, $1) AND NOT (code = ANY($2::text[]))",
        code,
        [g.code for g in files.grids],
    )
    await conn.execute(
        "DELETE FROM jurisdictions WHERE starts_with(code, $1) AND NOT (code = ANY($2::text[])) AND length(code) = $3",
        code,
        [d[0] for d in divisions],
        12,
    )
    await conn.execute(
        "DELETE FROM jurisdictions WHERE starts_with(code, $1) AND NOT (code = ANY($2::text[])) AND length(code) = $3",
        code,
        [d[0] for d in divisions],
        9,
    )
    await conn.execute(
        "INSERT INTO county_versions (county_code, version, content_hash, counts) VALUES ($1, $2, $3, $4)",
        code,
        version,
        digest,
        counts,
    )
    return ImportResult(code, version, True, counts)


def _write_beside(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.importing")
    temporary.write_text(text, encoding="utf-8")
    return temporary


async def import_county(
    settings: DispatchSettings, directory: Path, *, map_path: Path | None = None, groups_path: Path | None = None
) -> ImportResult:
    """Validate the county in `directory`, apply it to dispatch's tables as a new version and write
    the county map and broadcast groups files; all or nothing (see the module docstring)."""
    files = read_county_dir(directory)  # raises InvalidCountyFiles before anything is touched
    if not settings.jurisdiction_code.startswith(files.county.code):
        raise WrongCounty(
            f"the files are county {files.county.code}'s; this dispatch instance serves {settings.jurisdiction_code}"
        )
    map_path = Path(map_path or settings.county_map_path)
    groups_path = Path(groups_path or map_path.with_name("groups.csv"))
    pool = await create_pool(settings)
    staged: list[tuple[Path, Path]] = []
    try:
        await apply_migrations(pool, schema=schema_name(settings), service_dir=Path(__file__).parent)
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                result = await apply_county(conn, files)
                document = county_map(files, version=result.version)
                staged = [
                    (_write_beside(map_path, map_text(document)), map_path),
                    (_write_beside(groups_path, groups_text(files.groups)), groups_path),
                ]
            except BaseException:
                await transaction.rollback()
                raise
            await transaction.commit()
        for temporary, final in staged:
            os.replace(temporary, final)
        staged = []
        return result
    finally:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Validate a county's files (divisions.csv, grids.geojson, groups.csv, workers.csv) and import"
        " them as a new version: dispatch's division tables, the county map and the broadcast groups file."
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--map", type=Path, help="the county map to write (default: GRIDLINK_COUNTY_MAP_PATH)")
    parser.add_argument("--groups", type=Path, help="the broadcast groups file to write (default: beside the map)")
    parser.add_argument("--check", action="store_true", help="validate only; change nothing")
    args = parser.parse_args(argv)
    settings = DispatchSettings(service_name="dispatch")
    try:
        if args.check:
            files = read_county_dir(args.directory)
            print(f"[import-county] {files.county.name} ({files.county.code}) is valid: {counts_of(files)}")
            return 0
        result = asyncio.run(import_county(settings, args.directory, map_path=args.map, groups_path=args.groups))
    except InvalidCountyFiles as error:
        for line in error.errors:
            print(f"{args.directory}/{line}", file=sys.stderr)
        print(f"[import-county] {len(error.errors)} error(s); nothing was imported", file=sys.stderr)
        return 1
    except WrongCounty as error:
        print(f"[import-county] {error}; nothing was imported", file=sys.stderr)
        return 1
    state = "imported as version" if result.changed else "unchanged, still version"
    print(f"[import-county] {result.county_code} {state} {result.version}: {result.counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
