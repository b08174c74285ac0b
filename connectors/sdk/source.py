"""Source base class, the records it yields and the runner that delivers them."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgspec
import orjson

from connectors.errors import ContractError
from connectors.events import make_event
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import DLQ_SUFFIX
from connectors.refusals import Refused, dead_letter_headers
from connectors.sdk.state import StateStore


@dataclass(frozen=True)
class Stream:
    """One kind of event a source emits."""

    name: str
    topic: str
    event_type: str
    key: str  # what the Kafka message key is, e.g. "series key" or "meter id"
    cursor: str | None = None  # the field that makes the stream incremental, if any


@dataclass(frozen=True)
class Record:
    """One event to send: `data` must satisfy the stream's contract (checked when built)."""

    stream: Stream
    key: str
    source: str
    event_id: str
    data: dict[str, Any]
    subject: str | None = None
    time: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    """State to save once everything yielded before it is confirmed by Kafka."""

    state: dict[str, Any]


@dataclass
class RunReport:
    source: str
    sent: int = 0
    rejected: int = 0
    checkpoints: int = 0
    by_stream: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        streams = ", ".join(f"{n} {c:,}" for n, c in sorted(self.by_stream.items())) or "nothing"
        return (
            f"{self.source}: sent {self.sent:,} events ({streams}), "
            f"{self.rejected:,} rejected to dead-letter topics, "
            f"{self.checkpoints} checkpoint(s), {self.seconds:.1f} s"
        )


class Source(ABC):
    """Subclass per source; see connectors/sdk/__init__.py and docs/connectors.md."""

    name: ClassVar[str]
    description: ClassVar[str]
    config: ClassVar[type[msgspec.Struct]]
    streams: ClassVar[tuple[Stream, ...]]

    def check(self, config: Any) -> list[str]:
        """Problems with the config or reachability; empty when the source can run."""
        return []

    @abstractmethod
    def read(self, config: Any, state: dict[str, Any]) -> Iterator[Record | Refused | Checkpoint]:
        """Yield records, refusals and checkpoints. Raise SourceFormatError when a whole input is
        unreadable (naming it); yield a `Refused` (with its `stream`) for a single bad item
        inside a readable input."""


def run_source(
    source: Source, config: Any, producer: EventProducer, store: StateStore
) -> RunReport:
    """Deliver everything `source.read` yields; persist state only at confirmed checkpoints.

    A `Refused` item (or a record its contract refuses) goes to its stream's dead-letter topic
    with the reason in the headers, and the rest still loads.
    """
    started = time.monotonic()
    report = RunReport(source=source.name)
    pending = 0  # items queued since the last confirmed checkpoint
    for item in source.read(config, store.load()):
        if isinstance(item, Checkpoint):
            producer.confirm()
            store.save(item.state)
            report.checkpoints += 1
            pending = 0
            continue
        if isinstance(item, Record):
            try:
                event = make_event(
                    item.stream.event_type,
                    item.source,
                    item.data,
                    event_id=item.event_id,
                    subject=item.subject,
                    time=item.time,
                )
            except ContractError as exc:
                item = Refused(
                    str(exc),
                    key=item.key,
                    payload=orjson.dumps(item.data),
                    error_class="contract",
                    event_id=item.event_id,
                    stream=item.stream,
                )
        if isinstance(item, Refused):
            send_dead_letter(source, item, producer)
            report.rejected += 1
            pending += 1
            continue
        producer.send_event(item.stream.topic, event, key=item.key)
        report.by_stream[item.stream.name] = report.by_stream.get(item.stream.name, 0) + 1
        pending += 1
    if pending:
        producer.confirm()
    report.sent = sum(report.by_stream.values())  # every one confirmed, or confirm() raised
    report.seconds = time.monotonic() - started
    return report


def send_dead_letter(source: Source, refused: Refused, producer: EventProducer) -> None:
    """`refused` to `<stream topic>.dlq`, headers naming the error, the contract and the source."""
    stream = refused.stream
    if not isinstance(stream, Stream):
        raise TypeError(f"source {source.name!r} refused an item without its stream: {refused!r}")
    if not refused.contract:
        refused = refused.replace(contract=stream.event_type)
    producer.send_raw(
        stream.topic + DLQ_SUFFIX,
        refused.payload or b"",
        key=refused.key,
        headers=dead_letter_headers(refused, {"source": source.name}),
    )
