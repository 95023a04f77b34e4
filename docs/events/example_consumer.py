"""An example consumer of GridLink's events for another department (docs/events/GUIDE.md).

Needs only Python 3.11+ and aiokafka (`pip install aiokafka`), not GridLink's code.

    python example_consumer.py --bootstrap gridlink-kafka-kafka-bootstrap.infra.svc:9093 history 20261202-000042
    python example_consumer.py --bootstrap ... follow --group dept-330727-zjj.case-feed

`history` prints a case's life, rebuilt from the case topic (kept forever) without a consumer
group; `follow` consumes new case events as the department's own consumer group, committing after
each batch it has handled, and skips events it has already seen (delivery is at least once).
"""

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.helpers import create_ssl_context

CASES = "gridlink.cases"


def client_options(username: str | None, password: str | None, ca_file: str | None = None) -> dict[str, Any]:
    """The county's Kafka gives each department a SCRAM user over TLS (its CA from the operators);
    a local broker needs none."""
    if not username:
        return {}
    return {
        "security_protocol": "SASL_SSL",
        "ssl_context": create_ssl_context(cafile=ca_file),
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": username,
        "sasl_plain_password": password,
    }


async def case_history(*, bootstrap: str, case_no: str, topic: str = CASES, **options: Any) -> list[dict]:
    """Every event of one case (by its number, 案件编号), in the case's own order."""
    # Without a group the consumer is given every partition of the topic, and commits nothing.
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **options,
    )
    await consumer.start()
    try:
        for _ in range(100):  # the assignment follows the first metadata answer
            if consumer.assignment():
                break
            await asyncio.sleep(0.1)
        partitions = sorted(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        events = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:  # until the end of each
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    event = json.loads(record.value)
                    if event["payload"].get("case_no") == case_no:
                        events.append(event)
        return sorted(events, key=lambda e: (e["payload"].get("seq", 0), e["occurred_at"]))
    finally:
        await consumer.stop()


async def follow(
    *,
    bootstrap: str,
    group: str,
    handle: Callable[[dict], Awaitable[None]],
    topic: str = CASES,
    stop: asyncio.Event | None = None,
    **options: Any,
) -> None:
    """Consume as the department's group: handle each event once, commit after each batch."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **options,
    )
    seen: set[str] = set()  # keep this in your own database in production
    await consumer.start()
    try:
        while not (stop and stop.is_set()):
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    event = json.loads(record.value)
                    if event["event_id"] not in seen:
                        seen.add(event["event_id"])
                        await handle(event)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--ca-file", help="the cluster CA (PEM) the operators give you")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("history").add_argument("case_no")
    commands.add_parser("follow").add_argument("--group", required=True)
    args = parser.parse_args()
    options = client_options(args.username, args.password, args.ca_file)
    if args.command == "history":
        for event in asyncio.run(case_history(bootstrap=args.bootstrap, case_no=args.case_no, **options)):
            p = event["payload"]
            print(event["occurred_at"], event["type"], p.get("status"), p.get("department_name"), p.get("reason") or "")
    else:

        async def show(event: dict) -> None:
            print(event["type"], event["payload"].get("case_no"), event["payload"].get("status"))

        asyncio.run(follow(bootstrap=args.bootstrap, group=args.group, handle=show, **options))


if __name__ == "__main__":
    main()
