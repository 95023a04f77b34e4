"""Load an existing county map's divisions and grids (settings.county_map_path) into a dispatch
database as they are. Counties are imported from their files with services/dispatch/county_import.py
(`make seed` imports the demo county that way, with versions); this loads a map file alone.

Idempotent: rows are upserted, so running it again changes nothing.
"""

import asyncio
from pathlib import Path

from services.dispatch.settings import DispatchSettings
from shared.db import apply_migrations, create_pool, schema_name
from shared.jurisdictions import County, load_county


async def seed(settings: DispatchSettings, county: County) -> dict[str, int]:
    """Upsert the county's divisions and grids; returns how many the database holds."""
    pool = await create_pool(settings)
    try:
        await apply_migrations(pool, schema=schema_name(settings), service_dir=Path(__file__).parent)
        # (code, name, level, kind, parent_code): the county has neither kind nor parent.
        rows: list[tuple[str, str, str, str | None, str | None]] = [(county.code, county.name, "county", None, None)]
        rows += [(t.code, t.name, "town", t.kind, county.code) for t in county.towns.values()]
        rows += [(v.code, v.name, "village", v.kind, v.town_code) for v in county.villages.values()]
        grids = [
            (
                g.code,
                g.name,
                g.village_code,
                [list(p) for p in g.polygon],
                g.worker.worker_id,
                g.worker.name,
                g.group.group_id,
                g.group.name,
            )
            for g in county.grids.values()
        ]
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO jurisdictions (code, name, level, kind, parent_code) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,"
                " kind = EXCLUDED.kind, parent_code = EXCLUDED.parent_code",
                rows,
            )
            await conn.executemany(
                "INSERT INTO grids (code, name, village_code, polygon, worker_id, worker_name, group_id, group_name)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
                " village_code = EXCLUDED.village_code, polygon = EXCLUDED.polygon, worker_id = EXCLUDED.worker_id,"
                " worker_name = EXCLUDED.worker_name, group_id = EXCLUDED.group_id, group_name = EXCLUDED.group_name",
                grids,
            )
            counts = dict(
                await conn.fetchrow(
                    "SELECT count(*) FILTER (WHERE level = 'town') AS towns,"
                    " count(*) FILTER (WHERE level = 'village') AS villages FROM jurisdictions"
                )
            )
            counts["grids"] = await conn.fetchval("SELECT count(*) FROM grids")
        return counts
    finally:
        await pool.close()


def main() -> None:
    settings = DispatchSettings(service_name="dispatch")
    county = load_county(settings.county_map_path)
    counts = asyncio.run(seed(settings, county))
    print(
        f"[seed] {county.name} ({county.code}) loaded into {settings.database_url}: "
        f"{counts['towns']} towns, {counts['villages']} villages/communities, {counts['grids']} grids"
    )


if __name__ == "__main__":
    main()
