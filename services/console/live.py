"""The live queue: one Kafka consumer per console process reads the case and SLA topics from their
end and hands each case event to the open pages (SSE) of the people allowed to see that case; a
case that leaves someone's sight (transferred to another department) is removed from their page,
and a missed deadline (sla.breached) flags the case as overdue where it is shown."""

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer

from shared.auth import Actor
from shared.events import CaseFacts, Event, MalformedEvent, SlaBreached, UnknownEventType, parse_event
from shared.settings import ServiceSettings
from shared.topics import ensure_topics, service_topics

log = logging.getLogger(__name__)


def visible(actor: Actor, case: CaseFacts | SlaBreached) -> bool:
    """Dispatch's rule (`can_see`) for who may see a case, on an event's facts: the division and
    below (a grid worker's division is their grid), and for handlers their department's cases."""
    place = (getattr(case, "grid_code", None) or case.jurisdiction_code) or ""
    if not place.startswith(actor.jurisdiction_code):
        return False
    if actor.role == "handler":
        return actor.department_code in (case.department_code, *getattr(case, "co_department_codes", ()))
    return True


@dataclass(eq=False)
class Subscriber:
    actor: Actor
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(maxsize=200))


class Hub:
    """Who listens; what each may hear. It remembers the last facts of recent cases, so that when a
    case leaves someone's sight (转派 to another department) their page is told to drop it."""

    def __init__(self, render: Callable[[Event], dict], *, remembered: int = 50_000):
        self.render = render
        self.subscribers: set[Subscriber] = set()
        self.running = False
        self.last: OrderedDict[str, CaseFacts] = OrderedDict()
        self.remembered = remembered

    def subscribe(self, actor: Actor) -> Subscriber:
        subscriber = Subscriber(actor)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def _put(self, subscriber: Subscriber, message: dict) -> bool:
        try:
            subscriber.queue.put_nowait(message)
            return True
        except asyncio.QueueFull:  # a page that stopped reading; it reloads when it reconnects
            log.warning("live queue of %s is full; dropping an event", subscriber.actor.label)
            return False

    def deliver(self, event: Event) -> int:
        """Hand a case event to every subscriber allowed to see its case, and a missed deadline to
        every one who sees its case; how many got it."""
        facts = event.payload
        if isinstance(facts, SlaBreached):
            flag = {"type": event.type, "case_id": str(facts.case_id), "overdue": True}
            return sum(self._put(s, flag) for s in list(self.subscribers) if visible(s.actor, facts))
        if not isinstance(facts, CaseFacts):
            return 0
        key = str(facts.case_id)
        before = self.last.pop(key, None)
        self.last[key] = facts
        if len(self.last) > self.remembered:
            self.last.popitem(last=False)
        message, count = None, 0
        for subscriber in list(self.subscribers):
            if visible(subscriber.actor, facts):
                message = message or self.render(event)
                count += self._put(subscriber, message)
            elif before is not None and visible(subscriber.actor, before):
                count += self._put(subscriber, {"type": event.type, "case_id": key, "gone": True})
        return count


@asynccontextmanager
async def running_hub(settings: ServiceSettings, render: Callable[[Event], dict]) -> AsyncIterator[Hub]:
    """Consume the case and SLA topics (no consumer group: each process reads everything, from the
    end) while the console runs."""
    hub = Hub(render)
    if settings.kafka_create_topics:
        await ensure_topics(settings)
    consumer = AIOKafkaConsumer(
        *(settings.topic(t.name) for t in service_topics("console").reads),
        **settings.kafka_client_options(),
        group_id=None,  # no group: every partition is this process's
        enable_auto_commit=False,
        auto_offset_reset="latest",
    )
    await consumer.start()
    # Every partition positioned at its end now, so every event published once the console is up is seen.
    for _ in range(200):
        if consumer.assignment():
            break
        await asyncio.sleep(0.05)
    await consumer.seek_to_end()
    for partition in consumer.assignment():
        await consumer.position(partition)

    async def run() -> None:
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        try:
                            hub.deliver(parse_event(record.value))
                        except (MalformedEvent, UnknownEventType) as error:
                            log.warning("skipping a %s message: %s", record.topic, error)
        finally:
            hub.running = False

    # Running from here (the consumer is started), not from the task's first step: a readiness
    # probe answered before the task is first scheduled must not call the console not ready.
    hub.running = True
    task = asyncio.create_task(run())
    try:
        yield hub
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()
