"""Dead letters you can act on: list them, show one, replay a selection after a fix.

The `<topic>.dlq` topics are read directly (a throwaway consumer: no group, nothing committed,
from each partition's beginning to the end offset it had when the read started), because the
dead letters a source refused never reach the warehouse; `raw._sink_dead_letters` only knows the
sink's.

Invariant of a replay: a dead letter is re-sent at most once per ledger entry, and always as it
was refused: the original value byte for byte (so the CloudEvent keeps its `id` and `source`) and
the original key (so it lands on the partition of its key). The ledger (`<UF_STATE_DIR>/
dlq-replays.json`) is saved only after Kafka confirmed the re-sent records, like a source's state:
a second replay re-sends nothing, and a crash between the confirmation and the save can at worst
re-send a chunk, which dbt staging deduplicates on `(source, event_id)`. The sink decides again
with the contracts of the moment: an event that still fails becomes a new dead letter with its
new reason, at the new coordinates.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from connectors.errors import BrokerUnavailableError, ConfigError, UrbanFlowError
from connectors.kafka.clients import client_options, unreachable
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import DLQ_SUFFIX, TopicSpec
from connectors.refusals import HEADER_PREFIX
from connectors.sdk.state import StateStore
from connectors.sink.loader import event_source

#: The header a replayed record carries, naming the dead letter it was re-sent from.
REPLAY_HEADER = f"{HEADER_PREFIX}replay.of"
#: Records re-sent between two confirmations (and ledger saves): bounds what a crash can repeat.
REPLAY_CHUNK = 1_000
#: How long reading a DLQ up to its end offsets may take before we say so instead of hanging.
READ_TIMEOUT_S = 120.0


class DeadLetterNotFoundError(UrbanFlowError):
    """No dead letter at the coordinates given."""


@dataclass(frozen=True)
class DeadLetterRecord:
    """One record of a `<topic>.dlq`: where it sits, what it was and why it was refused."""

    dlq_topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @property
    def coordinates(self) -> str:
        return f"{self.dlq_topic}:{self.partition}:{self.offset}"

    @property
    def ledger_key(self) -> str:
        """Coordinates and time: a DLQ deleted and created again reuses offsets, not times."""
        return f"{self.coordinates}@{self.timestamp_ms}"

    def header(self, name: str) -> str:
        return self.headers.get(HEADER_PREFIX + name, "")

    @property
    def topic(self) -> str:
        """The topic the item was meant for (the sink names it; a source's is the DLQ's twin)."""
        return self.header("original.topic") or self.dlq_topic.removesuffix(DLQ_SUFFIX)

    @property
    def refused_by(self) -> str:
        """`sink` when the sink refused a record it read from Kafka, else `source`."""
        return "sink" if self.header("original.topic") else "source"

    @property
    def source(self) -> str:
        """The source connector that refused it, else the CloudEvents `source` of its payload."""
        return self.header("source") or event_source(self.value) or "-"

    @property
    def reason(self) -> str:
        return self.header("error.reason")

    @property
    def original(self) -> tuple[str, int, int] | None:
        """(topic, partition, offset) of the record the sink refused; None for a source's."""
        if self.refused_by != "sink":
            return None
        return (
            self.topic,
            int(self.header("original.partition") or -1),
            int(self.header("original.offset") or -1),
        )

    @property
    def seen(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)


@dataclass
class DeadLetterGroup:
    """Dead letters of one topic, source and reason."""

    topic: str
    source: str
    reason: str
    count: int
    first_seen: datetime
    last_seen: datetime
    latest: str  # coordinates of the newest one, for `urbanflow dlq show`


@dataclass
class ReplayReport:
    replayed: int = 0
    already_replayed: int = 0
    not_replayable: int = 0  # refused by a source: its payload is the input item, not an event
    by_topic: dict[str, int] = field(default_factory=dict)

    def summary(self, *, dry_run: bool) -> str:
        verb = "would replay" if dry_run else "replayed"
        where = ", ".join(f"{n} to {t}" for t, n in sorted(self.by_topic.items()))
        text = f"dlq: {verb} {self.replayed} dead letter{'s' if self.replayed != 1 else ''}"
        text += f" ({where})" if where else ""
        text += f"; {self.already_replayed} already replayed, skipped"
        if self.not_replayable:
            text += (
                f"; {self.not_replayable} refused by a source, not replayable: "
                "fix the input or the source, then run it again (`urbanflow source run`)"
            )
        return text


# -- selection (pure) -------------------------------------------------------------------------
def dlq_topics(specs: Iterable[TopicSpec], topic: str | None, topics_file: Path) -> list[str]:
    """The DLQ topics to read: every declared one, or the one of `topic` (named with or without
    its `.dlq` suffix); an undeclared topic is an error naming the topics file."""
    declared = {spec.dlq_name: spec for spec in specs if spec.dlq}
    if topic is None:
        return sorted(declared)
    name = topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX
    if name not in declared:
        raise ConfigError(
            f"topic {topic.removesuffix(DLQ_SUFFIX)} has no dead-letter topic declared in "
            f"{topics_file} (declared: {', '.join(sorted(declared)) or 'none'})"
        )
    return [name]


def select(
    letters: Iterable[DeadLetterRecord],
    *,
    source: str | None = None,
    reason_contains: str | None = None,
) -> list[DeadLetterRecord]:
    """Dead letters of `source` (exact) whose reason contains `reason_contains` (any case)."""
    needle = (reason_contains or "").casefold()
    return [
        letter
        for letter in letters
        if (source is None or letter.source == source) and needle in letter.reason.casefold()
    ]


def outstanding(
    letters: Iterable[DeadLetterRecord], replayed: Iterable[str]
) -> tuple[list[DeadLetterRecord], list[DeadLetterRecord]]:
    """(dead letters still to act on, those replayed or repeating one): a sink that crashed after
    sending a batch's dead letters sends them again, so one refused record is acted on once."""
    done = set(replayed)
    current: list[DeadLetterRecord] = []
    settled: list[DeadLetterRecord] = []
    seen: set[tuple[str, int, int]] = set()
    for letter in letters:
        original = letter.original
        repeat = original is not None and original in seen
        if original is not None:
            seen.add(original)
        (settled if repeat or letter.ledger_key in done else current).append(letter)
    return current, settled


def summarize(letters: Iterable[DeadLetterRecord]) -> list[DeadLetterGroup]:
    """Counts and first/last seen per (topic, source, reason), most frequent first."""
    groups: dict[tuple[str, str, str], DeadLetterGroup] = {}
    for letter in letters:
        key = (letter.topic, letter.source, letter.reason)
        group = groups.get(key)
        if group is None:
            groups[key] = DeadLetterGroup(*key, 1, letter.seen, letter.seen, letter.coordinates)
            continue
        group.count += 1
        group.first_seen = min(group.first_seen, letter.seen)
        if letter.seen >= group.last_seen:
            group.last_seen, group.latest = letter.seen, letter.coordinates
    return sorted(groups.values(), key=lambda g: (-g.count, g.topic, g.source, g.reason))


# -- Kafka I/O --------------------------------------------------------------------------------
def _consumer(bootstrap: str) -> KafkaConsumer:
    """No group: nothing is committed, nobody else's offsets or lag move."""
    try:
        return KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id="urbanflow-dlq",
            bootstrap_timeout_ms=10_000,  # an unreachable broker is an error in seconds
            **client_options(),
        )
    except KafkaError as error:
        raise unreachable(bootstrap, error) from None


def _partitions(consumer: KafkaConsumer, topic: str, bootstrap: str) -> list[TopicPartition]:
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise ConfigError(f"topic {topic} missing at {bootstrap}; run `urbanflow topics apply`")
    return [TopicPartition(topic, p) for p in sorted(partitions)]


def _record(record: object) -> DeadLetterRecord:
    return DeadLetterRecord(
        dlq_topic=record.topic,  # type: ignore[attr-defined]
        partition=record.partition,  # type: ignore[attr-defined]
        offset=record.offset,  # type: ignore[attr-defined]
        timestamp_ms=record.timestamp,  # type: ignore[attr-defined]
        key=record.key,  # type: ignore[attr-defined]
        value=record.value or b"",  # type: ignore[attr-defined]
        headers={
            name: (value or b"").decode("utf-8", "replace")
            for name, value in record.headers or []  # type: ignore[attr-defined]
        },
    )


def read_dead_letters(
    bootstrap: str, topics: list[str], *, timeout_s: float = READ_TIMEOUT_S
) -> list[DeadLetterRecord]:
    """Every record of the DLQ `topics`, from the beginning to the end offsets at the start."""
    consumer = _consumer(bootstrap)
    try:
        tps = [tp for topic in topics for tp in _partitions(consumer, topic, bootstrap)]
        ends = consumer.end_offsets(tps)
        starts = consumer.beginning_offsets(tps)
        wanted = {tp: ends[tp] for tp in tps if ends[tp] > starts[tp]}
        letters: list[DeadLetterRecord] = []
        if not wanted:
            return letters
        consumer.assign(list(wanted))
        consumer.seek_to_beginning(*wanted)
        deadline = time.monotonic() + timeout_s
        while wanted:
            if time.monotonic() > deadline:
                raise BrokerUnavailableError(
                    f"read {len(letters)} dead letters of {', '.join(topics)} but the broker at "
                    f"{bootstrap} sent nothing more for {timeout_s:.0f} s; try again"
                )
            for tp, records in consumer.poll(timeout_ms=500).items():
                end = wanted.get(tp)
                letters.extend(_record(r) for r in records if end is not None and r.offset < end)
            for tp in [tp for tp, end in wanted.items() if consumer.position(tp) >= end]:
                del wanted[tp]
            consumer.pause(*[tp for tp in consumer.assignment() if tp not in wanted])
        return sorted(letters, key=lambda d: (d.dlq_topic, d.timestamp_ms, d.partition, d.offset))
    except KafkaError as exc:
        raise BrokerUnavailableError(f"broker at {bootstrap} errored: {exc}") from None
    finally:
        consumer.close(autocommit=False)


def read_one(
    bootstrap: str, topic: str, partition: int, offset: int, *, timeout_s: float = 30.0
) -> DeadLetterRecord:
    """The dead letter at (topic, partition, offset); `topic` may omit its `.dlq` suffix."""
    name = topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX
    consumer = _consumer(bootstrap)
    try:
        partitions = consumer.partitions_for_topic(name)
        if not partitions:
            raise DeadLetterNotFoundError(f"no dead-letter topic {name} at {bootstrap}")
        if partition not in partitions:
            raise DeadLetterNotFoundError(
                f"{name} has no partition {partition} (partitions 0..{max(partitions)})"
            )
        tp = TopicPartition(name, partition)
        start, end = consumer.beginning_offsets([tp])[tp], consumer.end_offsets([tp])[tp]
        if not start <= offset < end:
            held = f"offsets {start}..{end - 1}" if end > start else "no records"
            raise DeadLetterNotFoundError(
                f"no dead letter at {name} partition {partition} offset {offset} "
                f"(that partition holds {held})"
            )
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.offset == offset:
                        return _record(record)
        raise BrokerUnavailableError(
            f"the broker at {bootstrap} did not return {name} partition {partition} offset "
            f"{offset} within {timeout_s:.0f} s; try again"
        )
    except KafkaError as exc:
        raise BrokerUnavailableError(f"broker at {bootstrap} errored: {exc}") from None
    finally:
        consumer.close(autocommit=False)


def pretty_payload(value: bytes) -> str:
    """The payload as indented JSON, or as text when it is not JSON (that may be why it died)."""
    try:
        return orjson.dumps(orjson.loads(value), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return value.decode("utf-8", "replace") + "\n(not valid JSON)"


# -- replay -----------------------------------------------------------------------------------
class ReplayLedger:
    """The dead letters already replayed (coordinates and time); saved after Kafka confirmed."""

    def __init__(self, state_dir: Path):
        self._store = StateStore(state_dir, "dlq-replays")
        self.replayed: dict[str, str] = dict(self._store.load().get("replayed", {}))

    @property
    def path(self) -> Path:
        return self._store.path

    def add(self, letters: Iterable[DeadLetterRecord]) -> None:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self.replayed.update(dict.fromkeys((d.ledger_key for d in letters), now))

    def save(self) -> None:
        self._store.save({"replayed": self.replayed})


def replay(
    letters: list[DeadLetterRecord],
    ledger: ReplayLedger,
    producer: EventProducer | None,
) -> ReplayReport:
    """Re-send the selected dead letters to their original topics, value and key unchanged.

    `letters` is a selection of what `read_dead_letters` returned; those in the ledger (and
    repeats of one refused record) are skipped. With `producer=None` nothing is sent: a dry run.
    """
    report = ReplayReport()
    current, settled = outstanding(letters, ledger.replayed)
    report.already_replayed = sum(1 for d in settled if d.ledger_key in ledger.replayed)
    replayable = [d for d in current if d.original is not None]
    report.not_replayable = len(current) - len(replayable)
    # Repeats of a record about to be replayed are settled by the same replay.
    duplicates = [d for d in settled if d.ledger_key not in ledger.replayed]
    for letter in replayable:
        report.by_topic[letter.topic] = report.by_topic.get(letter.topic, 0) + 1
    report.replayed = len(replayable)
    if producer is None:
        return report
    for start in range(0, len(replayable), REPLAY_CHUNK):
        chunk = replayable[start : start + REPLAY_CHUNK]
        for letter in chunk:
            producer.send_raw(
                letter.topic,
                letter.value,
                key=letter.key,
                headers=[(REPLAY_HEADER, letter.coordinates.encode())],
            )
        producer.confirm()
        ledger.add(chunk)
        ledger.save()
    originals = {d.original for d in replayable}
    ledger.add(d for d in duplicates if d.original in originals)
    ledger.save()
    return report


def check_topics_exist(bootstrap: str, topics: Iterable[str]) -> None:
    """The original topics must exist before we send: a missing one would block the producer."""
    consumer = _consumer(bootstrap)
    try:
        for topic in sorted(set(topics)):
            _partitions(consumer, topic, bootstrap)
    finally:
        consumer.close(autocommit=False)
