"""Dead letters: list them, and replay them to the topic they came from once their cause is fixed.

A dead letter keeps the original message and why it failed (`ConsumerRunner.dead_letter`).
Replaying re-publishes the original bytes, with the original key, to the original topic. Every
consumer applies an event once by its id, so the services that had applied it already change
nothing and the one that failed applies it now. The replayer reads the dead-letter topic as its
own consumer group (one per filter) and commits what it has replayed, so a letter is replayed once;
`--dry-run` only counts.

    python -m shared.deadletters list
    python -m shared.deadletters replay --group dispatch-330727 --reason handler_failed [--dry-run]

The Kafka bootstrap and topic prefix come from GRIDLINK_* variables, as for the services.
"""

import argparse
import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer

from shared.kafka import create_producer
from shared.settings import ServiceSettings
from shared.topics import ALL_TOPICS, DEAD_LETTERS


@dataclass(frozen=True)
class Replay:
    matched: int  # letters the filter selected
    replayed: int  # re-published (0 in a dry run)
    refused: int  # naming a topic outside the registry: never written to
    letters: tuple[dict[str, Any], ...] = ()  # the matching letters, for `list`


def matches(letter: dict[str, Any], *, consumer_group: str | None, reason: str | None) -> bool:
    """Whether a letter is one the operator asked for (None: any)."""
    return (consumer_group is None or letter.get("consumer_group") == consumer_group) and (
        reason is None or letter.get("reason") == reason
    )


async def _read_all(consumer: AIOKafkaConsumer, *, idle_s: float) -> list[tuple[Any, dict[str, Any]]]:
    """Every letter not yet consumed by this group, until the topic has been quiet for `idle_s`."""
    letters: list[tuple[Any, dict[str, Any]]] = []
    while True:
        batches = await consumer.getmany(timeout_ms=int(idle_s * 1000))
        if not batches:
            return letters
        for records in batches.values():
            letters.extend((record, json.loads(record.value)) for record in records)


async def replay(
    settings: ServiceSettings,
    *,
    consumer_group: str | None = None,
    reason: str | None = None,
    dry_run: bool = False,
    idle_s: float = 2.0,
) -> Replay:
    """Re-publish the matching dead letters to their original topics (see the module's doc)."""
    known = {settings.topic(topic.name) for topic in ALL_TOPICS}
    group = f"{settings.topic_prefix}gridlink-dead-letter-replay.{consumer_group or 'all'}.{reason or 'any'}"
    consumer = AIOKafkaConsumer(
        settings.topic(DEAD_LETTERS.name),
        **settings.kafka_client_options(),
        group_id=None if dry_run else group,  # a dry run reads everything and remembers nothing
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = create_producer(settings)
    await consumer.start()
    await producer.start()
    try:
        letters = await _read_all(consumer, idle_s=idle_s)
        chosen = [letter for _, letter in letters if matches(letter, consumer_group=consumer_group, reason=reason)]
        refused = [letter for letter in chosen if letter.get("original_topic") not in known]
        if dry_run:
            return Replay(matched=len(chosen), replayed=0, refused=len(refused), letters=tuple(chosen))
        for letter in chosen:
            if letter in refused:
                continue
            key = letter["key"].encode() if letter.get("key") else None
            await producer.send_and_wait(letter["original_topic"], base64.b64decode(letter["value_base64"]), key=key)
        if letters:
            await consumer.commit()  # after the sends: a crash in between replays again, harmlessly
        return Replay(
            matched=len(chosen), replayed=len(chosen) - len(refused), refused=len(refused), letters=tuple(chosen)
        )
    finally:
        await producer.stop()
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="List or replay GridLink's dead letters.")
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("--group", help="only letters of this consumer group (e.g. dispatch-330727, notify)")
    parser.add_argument("--reason", help="only letters of this reason (malformed, handler_failed)")
    parser.add_argument("--dry-run", action="store_true", help="count what would be replayed, change nothing")
    args = parser.parse_args()
    dry_run = args.dry_run or args.command == "list"
    result = asyncio.run(replay(ServiceSettings(), consumer_group=args.group, reason=args.reason, dry_run=dry_run))
    if args.command == "list":
        for letter in result.letters:
            print(
                f"{letter.get('failed_at')}  {letter.get('consumer_group')}  {letter.get('reason')}  "
                f"{letter.get('original_topic')}/{letter.get('partition')}@{letter.get('offset')}  "
                f"{str(letter.get('error'))[:120]}"
            )
    print(f"matched {result.matched}, replayed {result.replayed}, refused {result.refused} (outside the registry)")


if __name__ == "__main__":
    main()
