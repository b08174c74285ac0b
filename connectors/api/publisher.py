"""The one thread that publishes pushed events: dedup claims, Kafka sends, one confirm per group."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass

from connectors.api.checks import Accepted
from connectors.api.partners import SeenEvents
from connectors.errors import DeliveryError
from connectors.kafka.producer import EventProducer

log = logging.getLogger(__name__)

_MAX_GROUP_EVENTS = 20_000


@dataclass(slots=True)
class _Job:
    items: list[Accepted]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[bool]]


def _settle(job: _Job, outcome: list[bool] | BaseException) -> None:
    def resolve() -> None:
        if job.future.done():  # the client went away; its events were still handled
            return
        if isinstance(outcome, BaseException):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)

    job.loop.call_soon_threadsafe(resolve)


class Publisher:
    """The one thread that owns the producer and the dedup store: group commit.

    It takes every request waiting in its queue, claims their (source, id) pairs in SQLite,
    sends the new events, confirms them with ONE Kafka flush and commits the claims once, so
    concurrent requests share the round trip. kafka-python can block (metadata, a full buffer):
    here that never stalls the event loop, which keeps answering 401/429/400 meanwhile.
    A failed confirm rolls the claims back and fails every request in the group (503), so a
    retry publishes again; a retry can then duplicate what did land, which dbt removes on
    (source, id). A crash between confirm and commit has the same effect.
    """

    def __init__(self, producer: EventProducer, seen: SeenEvents):
        self._producer = producer
        self._seen = seen
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="uf-api-publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    async def publish(self, items: list[Accepted]) -> list[bool]:
        """Per item: True if published now, False if that (source, id) was published before."""
        loop = asyncio.get_running_loop()
        job = _Job(items, loop, loop.create_future())
        self._queue.put(job)
        return await job.future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            jobs, size = [first], len(first.items)
            while size < _MAX_GROUP_EVENTS:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
                size += len(job.items)
            self._publish(jobs)

    def _publish(self, jobs: list[_Job]) -> None:
        outcomes: list[list[bool]] = []
        try:
            new = self._seen.claim([(a.source, a.id) for job in jobs for a in job.items])
            for job in jobs:
                flags = []
                for item in job.items:
                    fresh = (item.source, item.id) in new
                    if fresh:
                        new.discard((item.source, item.id))  # a repeat in the group is a duplicate
                        self._producer.send_raw(item.topic, item.value, key=item.key)
                    flags.append(fresh)
                outcomes.append(flags)
            self._producer.confirm()
            self._seen.commit()
        except Exception as exc:  # every waiting request must get an answer, whatever failed
            log.error("publishing %d requests failed: %s", len(jobs), exc)
            self._seen.rollback()
            failure = DeliveryError(f"Kafka did not confirm delivery: {exc}")
            for job in jobs:
                _settle(job, failure)
            return
        for job, flags in zip(jobs, outcomes, strict=True):
            _settle(job, flags)
