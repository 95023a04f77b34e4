"""The event contract (docs/events): the committed AsyncAPI document is what the code generates, every
reference in it resolves, every event version is released, and no released version is broken."""

import copy
import json
from contextlib import asynccontextmanager

import httpx
import pytest

from shared import asyncapi
from shared.events import PAYLOAD_TYPES
from shared.settings import ServiceSettings
from shared.web import create_service_app


def test_the_committed_document_is_what_the_code_generates():
    assert asyncapi.DOCUMENT.read_text(encoding="utf-8") == asyncapi.render(), "run: python -m shared.asyncapi write"


def test_every_reference_resolves_and_every_topic_and_event_is_described():
    document = asyncapi.build_document()
    assert document["asyncapi"].startswith("3.")
    text = json.dumps(document)
    for ref in set(part.split('"')[0] for part in text.split('"$ref": "')[1:]):
        node = document
        for key in ref.removeprefix("#/").split("/"):
            node = node[key]
    described = {m for channel in document["channels"].values() for m in channel["messages"]}
    assert described == {asyncapi.message_name(t, v) for t, v in PAYLOAD_TYPES}


def test_every_event_version_is_released():
    missing = [asyncapi.message_name(t, v) for t, v in PAYLOAD_TYPES if not asyncapi.released_file(t, v).exists()]
    assert not missing, f"release them: python -m shared.asyncapi release ({missing})"


def test_no_released_version_is_broken():
    """A consumer written against a released version keeps working: change a released version only
    compatibly (add optional fields); anything else is a new schema_version."""
    versions = set(PAYLOAD_TYPES)
    for path in sorted(asyncapi.RELEASED.glob("*.json")):
        released = json.loads(path.read_text(encoding="utf-8"))
        event_type, version = released["properties"]["type"]["const"], released["properties"]["schema_version"]["const"]
        assert (event_type, version) in versions, f"{path.name}: a released version was removed"
        current = asyncapi.released_schema(event_type, version)
        assert asyncapi.breaking_changes(released, current) == [], path.name


def test_a_breaking_change_is_named():
    released = asyncapi.released_schema("case.dispatched", 1)
    changed = copy.deepcopy(released)
    payload = changed["$defs"]["CaseDispatched"]
    del payload["properties"]["department_name"]
    payload["required"].append("grid_code")
    payload["properties"]["priority"] = {"type": "integer"}
    problems = asyncapi.breaking_changes(released, changed)
    assert ".payload.department_name: removed" in problems
    assert ".payload.grid_code: newly required" in problems
    assert ".payload.priority: no longer accepts ['string']" in problems
    changed["properties"]["schema_version"] = {"const": 2}
    assert ".schema_version: constant changed from 1 to 2" in asyncapi.breaking_changes(released, changed)
    # Adding an optional field is fine.
    compatible = copy.deepcopy(released)
    compatible["$defs"]["CaseDispatched"]["properties"]["note"] = {"type": "string"}
    assert asyncapi.breaking_changes(released, compatible) == []


@pytest.mark.parametrize("command", ["write", "release"])
def test_the_commands_write_into_the_contract_folder(command, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(asyncapi, "DOCUMENT", tmp_path / "asyncapi.json")
    monkeypatch.setattr(asyncapi, "RELEASED", tmp_path / "released")
    monkeypatch.setattr(asyncapi, "PROJECT_ROOT", tmp_path)
    asyncapi.main([command])
    written = list(tmp_path.rglob("*.json"))
    assert written and capsys.readouterr().out.count("\n") == len(written)


async def test_every_service_serves_the_document():
    @asynccontextmanager
    async def lifespan(app):
        yield

    app = create_service_app(ServiceSettings(service_name="any"), title="t", lifespan=lifespan)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        served = await client.get("/asyncapi.json")
    assert served.status_code == 200 and served.json() == asyncapi.build_document()


def test_the_guide_names_every_topic_and_event_type():
    guide = (asyncapi.CONTRACT / "GUIDE.md").read_text(encoding="utf-8")
    from shared.topics import ALL_TOPICS

    for topic in ALL_TOPICS:
        assert f"`{topic.name}`" in guide
        assert all(event_type in guide for event_type in topic.event_types), topic.name
