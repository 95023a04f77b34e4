"""The demo county is generated, and shipped as files: the committed files must be exactly what
the generator makes (regenerate them with `make county`)."""

from devtools.demo_county import (
    COUNTIES_DIR,
    COUNTY_MAP_PATH,
    DEMO_BROADCAST_GROUPS,
    GROUPS_PATH,
    demo_broadcast_groups,
    demo_county_map,
    demo_files,
)
from services.dispatch.settings import DispatchSettings
from services.intake.settings import IntakeSettings
from services.notify.settings import NotifySettings


def test_the_committed_files_are_what_the_generator_makes():
    files = demo_files()
    assert set(files) == {COUNTY_MAP_PATH, GROUPS_PATH} | set(COUNTIES_DIR.glob("*/*"))
    for path, text in files.items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run make county"


def test_services_are_given_the_shipped_files_by_default():
    assert IntakeSettings().county_map_path == DispatchSettings().county_map_path == COUNTY_MAP_PATH
    assert NotifySettings().notify_groups_path == GROUPS_PATH


def test_generation_is_deterministic():
    assert demo_county_map() == demo_county_map()


def test_every_grid_has_its_residents_group_and_building_groups_fill_up_the_count(county):
    rows = demo_broadcast_groups(county)
    assert len(rows) == DEMO_BROADCAST_GROUPS == len({r[0] for r in rows}) == len({r[3] for r in rows})
    assert {r[2] for r in rows} == set(county.grids)
    assert {g.group.group_id for g in county.grids.values()} <= {r[0] for r in rows}
