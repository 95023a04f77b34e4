"""Dead letters: list them, and replay them to the topic they came from once their cause is fixed.

A dead letter keeps the original message and why it failed (`ConsumerRunner.dead_letter`).
Replaying re-publishes the original bytes, with the original key, to the original topic. Every
consumer applies an event once by its id, so the services that had applied it already change
nothing and the one that failed applies it now. The replayer reads the dead-letter topic as its
own consumer group (one per filter) and commits what it has replayed, so a letter is replayed once;
`--dry-run` only counts.

    python -m shared.deadletters list [filters]      one line a letter
    python -m shared.deadletters show [filters]      each letter whole, with its original message
    python -m shared.deadletters replay [filters] [--dry-run]
    filters: --group dispatch-330727  --reason malformed|handler_failed  --topic gridlink.cases
             --since 2026-12-03T08:00+08:00  --until 2026-12-03T09:00+08:00 (when it failed)

The Kafka bootstrap and topic prefix come from GRIDLINK_* variables, as for the services.
"""

import argparse
import asyncio
import base64
import json
from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True)
class LetterFilter:
    """Which dead letters the operator means; None is any. `topic` is the registry's name (without
    the deployment's prefix); `since`/`until` bound when the letter failed, both included."""

    consumer_group: str | None = None
    reason: str | None = None
    topic: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: dict[str, Any], *, topic_prefix: str = "") -> bool:
        failed_at = datetime.fromisoformat(letter["failed_at"]) if letter.get("failed_at") else None
        return (
            (self.consumer_group is None or letter.get("consumer_group") == self.consumer_group)
            and (self.reason is None or letter.get("reason") == self.reason)
            and (self.topic is None or letter.get("original_topic") == topic_prefix + self.topic)
            and (self.since is None or (failed_at is not None and failed_at >= self.since))
            and (self.until is None or (failed_at is not None and failed_at <= self.until))
        )

    def name(self) -> str:
        """The replayer's consumer group for this filter: what one filter replayed, it replays once."""
        parts = (self.consumer_group, self.reason, self.topic, self.since, self.until)
        return ".".join("any" if p is None else p.isoformat() if isinstance(p, datetime) else p for p in parts)


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
    only: LetterFilter = LetterFilter(),
    dry_run: bool = False,
    idle_s: float = 2.0,
) -> Replay:
    """Re-publish the matching dead letters to their original topics (see the module's doc)."""
    known = {settings.topic(topic.name) for topic in ALL_TOPICS}
    group = f"{settings.topic_prefix}gridlink-dead-letter-replay.{only.name()}"
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
        chosen = [letter for _, letter in letters if only.matches(letter, topic_prefix=settings.topic_prefix)]
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


def original_message(letter: dict[str, Any]) -> Any:
    """The message that failed: its JSON when it is JSON, else its text (a malformed one may be neither)."""
    raw = base64.b64decode(letter.get("value_base64") or "")
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def moment(text: str) -> datetime:
    """A command-line time: ISO 8601 with its offset (a time without one is refused, not guessed)."""
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text}: give the offset, e.g. {text}+08:00 for Beijing time")
    return at


def main() -> None:
    parser = argparse.ArgumentParser(description="List, show or replay GridLink's dead letters.")
    parser.add_argument("command", choices=["list", "show", "replay"])
    parser.add_argument("--group", help="only letters of this consumer group (e.g. dispatch-330727, notify)")
    parser.add_argument("--reason", help="only letters of this reason (malformed, handler_failed)")
    parser.add_argument("--topic", help="only letters from this topic (e.g. gridlink.cases)")
    parser.add_argument("--since", type=moment, help="only letters that failed at or after this time")
    parser.add_argument("--until", type=moment, help="only letters that failed at or before this time")
    parser.add_argument("--dry-run", action="store_true", help="count what would be replayed, change nothing")
    args = parser.parse_args()
    only = LetterFilter(
        consumer_group=args.group, reason=args.reason, topic=args.topic, since=args.since, until=args.until
    )
    dry_run = args.dry_run or args.command != "replay"
    result = asyncio.run(replay(ServiceSettings(), only=only, dry_run=dry_run))
    for letter in result.letters:
        if args.command == "list":
            print(
                f"{letter.get('failed_at')}  {letter.get('consumer_group')}  {letter.get('reason')}  "
                f"{letter.get('original_topic')}/{letter.get('partition')}@{letter.get('offset')}  "
                f"{str(letter.get('error'))[:120]}"
            )
        elif args.command == "show":
            whole = {k: v for k, v in letter.items() if k != "value_base64"} | {"message": original_message(letter)}
            print(json.dumps(whole, ensure_ascii=False, indent=2))
    print(f"matched {result.matched}, replayed {result.replayed}, refused {result.refused} (outside the registry)")


if __name__ == "__main__":
    main()
