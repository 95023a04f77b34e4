"""The one reader of the SLA policy file, shared by sla (which enforces it) and notify (which quotes it)."""

from datetime import time

import pytest
import yaml

from services.sla.settings import SlaSettings
from shared.sla_policy import Duration, InvalidPolicy, load_sla_policy, parse_sla_policy

DOCUMENT = yaml.safe_load(SlaSettings().sla_policy_path.read_text(encoding="utf-8"))


def test_the_shipped_policy_reads_into_types():
    policy = load_sla_policy(SlaSettings().sla_policy_path)
    assert policy.version == "demo-2026.1" and policy.timezone == "Asia/Shanghai"
    assert policy.warning_ratio == 0.8
    assert policy.warning_ratio_of("acknowledge") == 0.5 and policy.warning_ratio_of("resolve") == 0.8
    assert policy.reminder_every_minutes == {"urgent": 3.0, "normal": 120.0}
    assert policy.stages["urgent"]["acknowledge"] == Duration("minutes", 10)
    assert policy.stages["normal"]["resolve"] == Duration("working_days", 3)
    assert policy.default_hours == ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))
    assert policy.department_hours["market"][1] == (time(13, 30), time(18, 30))
    assert policy.round_the_clock("police") and not policy.round_the_clock("zhujian")
    # The dispatch centre's own deadline: ruling on a returned case (退单仲裁), counted as its group's.
    assert policy.stages["normal"]["arbitrate"] == Duration("working_hours", 2)
    assert policy.dispatcher_department == "grid_center"


def test_a_level_overrides_only_the_stages_it_names():
    policy = parse_sla_policy(DOCUMENT)
    assert policy.duration(priority="normal", level="village", stage="resolve") == Duration("working_days", 2)
    assert policy.duration(priority="normal", level="village", stage="acknowledge") == Duration("working_hours", 2)
    assert policy.duration(priority="normal", level="county", stage="resolve") == Duration("working_days", 3)


WITHOUT_VERSION = {k: v for k, v in DOCUMENT.items() if k != "version"}


@pytest.mark.parametrize(
    "document",
    [
        DOCUMENT | change
        for change in [
            {"warning_ratio": 1.5},
            {"stage_warning_ratio": {"acknowledge": 0}},
            {"stage_warning_ratio": {"acknowledge": "half"}},
            {"stage_warning_ratio": {"lunch": 0.5}},
            {"stages": {"urgent": {"acknowledge": {"fortnights": 1}}}},
            {"stages": {"urgent": {"acknowledge": {"minutes": 10, "working_hours": 1}}}},
            {"stages": {"urgent": {"coffee": {"minutes": 10}}}},
            {"stages": {"urgent": {"acknowledge": {"minutes": 0}}}},
            {"levels": {"village": {"normal": {"resolve": {"weeks": 1}}}}},
            {"stages": {"rush": {"acknowledge": {"minutes": 5}}}},  # no reminder interval for "rush"
            # No time for arbitration (退单仲裁) of normal cases.
            {
                "stages": DOCUMENT["stages"]
                | {"normal": {"acknowledge": {"minutes": 5}, "joint_plan": {"minutes": 5}, "resolve": {"minutes": 5}}}
            },
            {"working_hours": {"default": [["17:30", "08:30"]]}},
            {"working_hours": {"default": [["half past eight", "12:00"]]}},
            {"notices": {"breaches": 0, "days": 30}},
            {"notices": {"breaches": 3}},
            {"notices": {"breaches": 3, "days": "a month"}},
        ]
    ]
    + [WITHOUT_VERSION],
)
def test_invalid_policies_are_refused(document):
    with pytest.raises(InvalidPolicy):
        parse_sla_policy(document)


def test_notices_for_repeated_breaches_are_policy_data():
    from shared.sla_policy import NoticePolicy

    assert load_sla_policy(SlaSettings().sla_policy_path).notices == NoticePolicy(breaches=3, days=30)
    assert parse_sla_policy(DOCUMENT | {"notices": {"breaches": 5, "days": 7}}).notices == NoticePolicy(5, 7)
    without = {k: v for k, v in DOCUMENT.items() if k != "notices"}
    assert parse_sla_policy(without).notices is None  # no 通报 unless the policy asks for them
