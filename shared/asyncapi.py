"""The event contract for other departments: an AsyncAPI 3 document generated from the topic
registry (shared/topics.py) and the event models (shared/events.py), one JSON Schema per event
type and payload version. Committed as docs/events/asyncapi.json and served by every service at
/asyncapi.json.

A released version's schema is kept in docs/events/released/; a change to a released version must
be backward compatible (`breaking_changes`), otherwise it needs a new schema version.

    python -m shared.asyncapi write      regenerate docs/events/asyncapi.json
    python -m shared.asyncapi release    snapshot the versions not released yet
"""

import argparse
import copy
import functools
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from shared.events import PAYLOAD_TYPES
from shared.logs import KAFKA_HEADER
from shared.settings import PROJECT_ROOT
from shared.topics import ALL_TOPICS, FOREVER, SERVICES, service_topics, topic_for

CONTRACT = PROJECT_ROOT / "docs" / "events"
DOCUMENT = CONTRACT / "asyncapi.json"
RELEASED = CONTRACT / "released"
REF = "#/components/schemas/{model}"


def message_name(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}"


def envelope_schema(event_type: str, version: int, payload: type[BaseModel], defs: dict[str, Any]) -> dict:
    """The JSON Schema of one event type and version: shared/events.py's Event with this payload."""
    schema = payload.model_json_schema(ref_template=REF, mode="serialization")
    defs.update(schema.pop("$defs", {}))
    defs[payload.__name__] = schema
    return {
        "type": "object",
        "required": [
            "event_id",
            "type",
            "schema_version",
            "occurred_at",
            "producer",
            "jurisdiction_code",
            "key",
            "payload",
        ],
        "properties": {
            "event_id": {"type": "string", "format": "uuid", "description": "Unique; consumers drop duplicates by it."},
            "type": {"const": event_type},
            "schema_version": {"const": version},
            "occurred_at": {"type": "string", "format": "date-time"},
            "producer": {"type": "string", "description": "The service that published it."},
            "jurisdiction_code": {
                "type": "string",
                "description": "Where the subject is; filter by prefix (county 6, town 9, village 12 digits).",
            },
            "correlation_id": {"type": ["string", "null"], "format": "uuid"},
            "key": {"type": "string", "description": "The Kafka key: the case id where there is one (order per case)."},
            "payload": {"$ref": REF.format(model=payload.__name__)},
        },
    }


def build_document() -> dict:
    """The document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_built())


@functools.cache
def _built() -> dict:
    defs: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for (event_type, version), payload in PAYLOAD_TYPES.items():
        name = message_name(event_type, version)
        schemas[name] = envelope_schema(event_type, version, payload, defs)
        messages[name] = {
            "name": name,
            "title": f"{event_type} (schema version {version})",
            "summary": (payload.__doc__ or "").strip().split("\n\n")[0].replace("\n", " "),
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {KAFKA_HEADER: {"type": "string", "description": "The HTTP request that caused it."}},
            },
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
    channels = {}
    for topic in ALL_TOPICS:
        retention = "forever" if topic.retention_ms == FOREVER else f"{topic.retention_ms // 86_400_000} days"
        channels[topic.name] = {
            "address": topic.name,
            "description": f"{topic.partitions} partitions, kept {retention}.",
            "messages": {
                name: {"$ref": f"#/components/messages/{name}"}
                for (event_type, version) in PAYLOAD_TYPES
                if topic_for(event_type) is topic and (name := message_name(event_type, version))
            },
        }
    operations = {}
    for service in SERVICES:
        access = service_topics(service)
        for action, topics in (("send", access.writes), ("receive", access.reads)):
            for topic in topics:
                operations[f"{service}.{action}.{topic.name}"] = {
                    "action": action,
                    "channel": {"$ref": f"#/channels/{topic.name}"},
                    "summary": f"{service} {'publishes on' if action == 'send' else 'consumes'} {topic.name}",
                }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "GridLink (网格通) events",
            "version": "1.0.0",
            "description": "Reports, cases, deadlines, evidence and notifications of a county's grid governance, "
            "as Kafka topics. Read docs/events/GUIDE.md first.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "county": {
                "host": "gridlink-kafka-kafka-bootstrap.infra.svc:9093",
                "protocol": "kafka",
                "description": "The county's Kafka: TLS, a SCRAM-SHA-512 user per department, ACLs per topic.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas | dict(sorted(defs.items()))},
    }


def render() -> str:
    return json.dumps(build_document(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def released_schema(event_type: str, version: int) -> dict:
    """A version's schema as a self-contained JSON Schema (its definitions inline, for snapshots)."""
    everything = build_document()["components"]["schemas"]
    schema = everything[message_name(event_type, version)]
    needed: dict[str, Any] = {}
    pending = [schema]
    while pending:  # only the definitions this schema reaches
        node = pending.pop()
        if isinstance(node, dict):
            if isinstance(ref := node.get("$ref"), str):
                name = ref.rsplit("/", 1)[1]
                if name not in needed:
                    needed[name] = everything[name]
                    pending.append(everything[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return {"$defs": dict(sorted(needed.items())), **schema}


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _types(schema: dict, root: dict) -> set[str]:
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return {t for option in schema["anyOf"] for t in _types(option, root)}
    kind = schema.get("type", "any")
    return set(kind) if isinstance(kind, list) else {kind}


def breaking_changes(old: dict, new: dict, path: str = "", *, old_root=None, new_root=None) -> list[str]:
    """What in `new` would break a consumer written against `old`: a field removed, a field's type
    changed or narrowed, a field newly required (a producer on `old` would not send it)."""
    old_root, new_root = old_root or old, new_root or new
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    problems = []
    if "const" in old and old.get("const") != new.get("const"):
        problems.append(f"{path or 'the event'}: constant changed from {old['const']!r} to {new.get('const')!r}")
    if old.get("type") is not None or new.get("type") is not None or "anyOf" in old or "anyOf" in new:
        lost = _types(old, old_root) - _types(new, new_root)
        if lost and "any" not in _types(new, new_root):
            problems.append(f"{path}: no longer accepts {sorted(lost)}")
    for name in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{path}.{name}: newly required")
    for name, old_field in old.get("properties", {}).items():
        if name not in new.get("properties", {}):
            problems.append(f"{path}.{name}: removed")
        else:
            problems += breaking_changes(
                old_field, new["properties"][name], f"{path}.{name}", old_root=old_root, new_root=new_root
            )
    if "items" in old and "items" in new:
        problems += breaking_changes(old["items"], new["items"], f"{path}[]", old_root=old_root, new_root=new_root)
    return problems


def released_file(event_type: str, version: int) -> Path:
    return RELEASED / f"{message_name(event_type, version)}.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The AsyncAPI contract of GridLink's events.")
    parser.add_argument("command", choices=["write", "release"])
    args = parser.parse_args(argv)
    if args.command == "write":
        DOCUMENT.write_text(render(), encoding="utf-8")
        print(f"wrote {DOCUMENT.relative_to(PROJECT_ROOT)}")
        return
    RELEASED.mkdir(parents=True, exist_ok=True)
    for event_type, version in PAYLOAD_TYPES:
        path = released_file(event_type, version)
        if not path.exists():
            path.write_text(json.dumps(released_schema(event_type, version), ensure_ascii=False, indent=2) + "\n")
            print(f"released {path.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
