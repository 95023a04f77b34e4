"""Other departments integrate through the topics: every released event type keeps a JSON sample
here, and every sample must still parse."""

import json
from pathlib import Path

import pytest

from shared.events import PAYLOAD_TYPES, parse_event
from shared.topics import topic_for

SAMPLES = Path(__file__).parent / "samples"


def test_every_registered_event_type_has_a_sample():
    names = {p.name for p in SAMPLES.glob("*.json")}
    assert names == {f"{t}.v{v}.json" for t, v in PAYLOAD_TYPES}


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_sample_parses_and_round_trips(path: Path):
    raw = json.loads(path.read_text(encoding="utf-8"))
    event = parse_event(path.read_bytes())
    assert (event.type, event.schema_version) == (raw["type"], raw["schema_version"])
    # Fields added later as optional may appear with their defaults; nothing in the sample changes.
    assert_contains(json.loads(event.to_bytes()), raw)
    assert topic_for(event.type) is not None


def assert_contains(actual, expected, path="event"):
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing"
            assert_contains(actual[key], value, f"{path}.{key}")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
