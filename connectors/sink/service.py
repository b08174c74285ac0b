"""The sink service: Kafka -> DuckDB, exactly once, per DESIGN.md §3.

Each batch and the next offsets of its partitions commit in one DuckDB transaction; on start and on
every rebalance the sink seeks to the offsets stored in the warehouse, so a crash anywhere neither
loses nor duplicates a record. Offsets are also committed to Kafka, so consumer lag stays visible.

Records are validated on the main thread between polls (which do not wait while records remain
to validate), and each batch is written on a thread of its own while the next one is read:
DuckDB's insert runs without the GIL, so reading and writing share the machine's cores instead of
taking turns. (Validating on the writer thread instead left the main thread waiting for it.) One
batch at a time is in the writer's hands, the warehouse is only opened on the writer thread (see
HeldWriter), and the consumer only on the main thread (kafka-python's consumer is not
thread-safe).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import signal
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from connectors.errors import ConfigError, UrbanFlowError
from connectors.events import make_event, stable_event_id
from connectors.kafka.clients import (
    client_options,
    joining,
    read_to_high_watermark,
    resume_stalled_join,
    unreachable,
)
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import TopicSpec
from connectors.settings import Settings
from connectors.sink.decode import ColumnBatch, DeadLetter, RecordDecoder
from connectors.sink.loader import (
    HeldWriter,
    StaleBatchError,
    ensure_schema,
    stored_offsets,
    write_batch,
)
from connectors.warehouse import connect

BATCH_LANDED_TOPIC = "ops.warehouse.batch_landed.v1"
BATCH_LANDED_TYPE = "org.urbanflow.ops.batch_landed.v1"
WRITER_MEMORY_LIMIT = "64MB"  # DuckDB's default is 80 % of RAM; the sink needs far less

log = logging.getLogger(__name__)


@dataclass
class SinkStats:
    loaded: int = 0
    dead_lettered: int = 0
    batches: int = 0
    stale_batches: int = 0
    started: float = field(default_factory=time.monotonic)
    rows_by_table: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def summary(self, warehouse: str) -> str:
        rate = self.loaded / self.seconds if self.seconds > 0 else 0.0
        return (
            f"sink: loaded {self.loaded:,} events in {self.batches} batches, "
            f"{self.dead_lettered:,} dead-lettered, {self.seconds:.1f} s "
            f"({rate:,.0f} events/s) -> {warehouse}"
        )


class _Pending:
    """Records read since the last commit: as polled (`undecoded`, one list per partition and
    poll) until the main thread has a moment, then decoded into `batches` per raw table and
    `dead`."""

    def __init__(self) -> None:
        self.undecoded: list[list[Any]] = []
        self.batches: dict[str, ColumnBatch] = defaultdict(ColumnBatch)
        self.dead: list[DeadLetter] = []
        self.first_offsets: dict[tuple[str, int], int] = {}
        self.next_offsets: dict[tuple[str, int], int] = {}
        self.count = 0
        self.bytes = 0  # of the records' values
        self.opened = time.monotonic()

    def __bool__(self) -> bool:
        return bool(self.next_offsets)


class Sink:
    """Long-running loader; `run()` returns when stopped by a signal or, if asked, caught up."""

    def __init__(self, settings: Settings, topics: list[TopicSpec], *, show_progress: bool = False):
        self.settings = settings
        self.specs = {spec.name: spec for spec in topics if spec.sink}
        self.decoder = RecordDecoder(list(self.specs.values()), settings.max_event_bytes)
        self.stats = SinkStats()
        self.show_progress = show_progress
        self._stopping = False
        self._pending = _Pending()
        #: the batch the writer thread has in hand, and what its write returns (rows per table)
        self._in_flight: tuple[_Pending, Future[dict[str, int]]] | None = None
        #: partitions re-seeked after a stale batch: the rest of the poll in hand is not used
        self._reseeked: set[tuple[str, int]] = set()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="urbanflow-sink-writer")
        #: the warehouse, on the writer thread only (see HeldWriter)
        self._warehouse = HeldWriter(
            settings.warehouse_path, WRITER_MEMORY_LIMIT, settings.sink_writer_hold_ms / 1000
        )
        self._consumer: KafkaConsumer | None = None
        self._producer: EventProducer | None = None
        with connect(settings.warehouse_path) as con:
            ensure_schema(con, [spec.raw_table for spec in self.specs.values()])

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self, *_: Any) -> None:
        """Finish the batch in hand, commit it, then return from run()."""
        self._stopping = True

    def run(self, *, until_caught_up: bool = False, max_seconds: float | None = None) -> SinkStats:
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._open()
            with tuned_for_the_loop():
                self._loop(until_caught_up, max_seconds)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._close()
        return self.stats

    def _open(self) -> None:
        settings = self.settings
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=settings.kafka_bootstrap,
                group_id=settings.sink_group,
                # Static membership: a restarted sink with the same id gets its partitions back
                # at once instead of waiting out a rebalance (Kafka Connect works the same way).
                group_instance_id=settings.sink_instance_id,
                session_timeout_ms=15_000,
                client_id="urbanflow-sink",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                **settings.sink_fetch_settings,
                **client_options(),
            )
        except KafkaError as error:
            raise unreachable(settings.kafka_bootstrap, error) from None
        self._producer = EventProducer(settings.kafka_bootstrap, client_id="urbanflow-sink")
        # Load topic metadata before joining the group: a join that races the first metadata
        # response gets an empty assignment from the range assignor and idles until the next
        # metadata refresh. It also turns a missing topic into a clear error.
        # What the sink writes to must exist as well: a missing dead-letter or batch-landed topic
        # would otherwise block the first commit until the producer's metadata wait times out.
        needed = [*sorted(self.specs), *(s.dlq_name for s in self.specs.values() if s.dlq)]
        missing = [t for t in [*needed, BATCH_LANDED_TOPIC] if not self._topic_exists(t)]
        if missing:
            raise ConfigError(
                f"topic{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing at "
                f"{settings.kafka_bootstrap}; run `urbanflow topics apply`"
            )
        self._consumer.subscribe(sorted(self.specs), listener=_SeekToWarehouseOffsets(self))

    def _topic_exists(self, topic: str) -> bool:
        assert self._consumer is not None
        return bool(self._consumer.partitions_for_topic(topic))

    def _close(self) -> None:
        try:
            if self._consumer is not None:
                self._commit(wait=True)
        finally:
            self._writer.shutdown(wait=True)
            self._warehouse.release()
        if self._producer is not None:
            self._producer.confirm()
            self._producer.close()
        if self._consumer is not None:
            self._consumer.close(autocommit=False)

    # -- main loop -------------------------------------------------------------------------
    def _loop(self, until_caught_up: bool, max_seconds: float | None) -> None:
        consumer = self._consumer
        assert consumer is not None
        settings = self.settings
        unassigned_since = time.monotonic()
        more_since = False  # the broker had more than the last fetch's high watermark said
        with _Progress(self.stats, enabled=self.show_progress) as progress:
            while not self._stopping:
                if max_seconds is not None and self.stats.seconds >= max_seconds:
                    break
                self._reseeked.clear()
                # with records to validate, only take what has arrived (unless the group is
                # joining), and validate while the next fetch is on its way; catching up, do not
                # wait at the high watermark either, unless the broker said there is more since.
                # Idle means a poll with nothing to validate that found nothing.
                to_decode = bool(self._pending.undecoded)
                at_end = until_caught_up and not more_since and read_to_high_watermark(consumer)
                wait = not (to_decode or at_end) or joining(consumer)
                polled = consumer.poll(timeout_ms=200 if wait else 0)
                idle = not polled and not to_decode
                more_since = more_since and not polled
                if not polled and resume_stalled_join(consumer):
                    log.warning("group %s: finishing a join kafka-python left", settings.sink_group)
                if polled or consumer.assignment():
                    unassigned_since = time.monotonic()
                elif time.monotonic() - unassigned_since >= settings.sink_join_timeout_s:
                    self._no_assignment(until_caught_up)
                    unassigned_since = time.monotonic()
                for records in polled.values():
                    self._take(records)
                self._decode_next()
                pending = self._pending
                age_ms = (time.monotonic() - pending.opened) * 1000
                if pending and (
                    idle
                    or pending.count >= settings.sink_batch_max_records
                    or pending.bytes >= settings.sink_batch_max_bytes
                    or age_ms >= settings.sink_batch_max_ms
                ):
                    if not self._writer_busy():
                        self._commit()
                elif self._in_flight is not None and self._in_flight[1].done():
                    self._settle()  # count it and commit its offsets to Kafka without delay
                if idle:
                    self._settle()  # see the write in hand through
                    if self._in_flight is None:
                        self._warehouse.release()  # and let dbt and readers in meanwhile
                progress.update()
                if until_caught_up and idle and not self._pending and self._in_flight is None:
                    if self._caught_up():
                        break
                    more_since = True

    def _no_assignment(self, until_caught_up: bool) -> None:
        """No partition for `sink_join_timeout_s`: the group coordinator is unreachable, or the
        group's other members hold every partition. A catch-up run stops; a service says so."""
        settings = self.settings
        message = (
            f"consumer group {settings.sink_group} got no partition of "
            f"{', '.join(sorted(self.specs))} in {settings.sink_join_timeout_s:.0f} s at "
            f"{settings.kafka_bootstrap}: its group coordinator does not answer, or other "
            "members of the group hold every partition"
        )
        if until_caught_up:
            raise UrbanFlowError(
                f"{message}; stopped, every batch so far is committed (UF_SINK_JOIN_TIMEOUT_S)"
            )
        log.warning("%s; still trying", message)

    def _writer_busy(self) -> bool:
        """Whether the writer still holds a batch while this one may grow: reading on instead
        of waiting keeps the main thread on what only it can do (up to twice the batch size)."""
        in_flight, settings = self._in_flight, self.settings
        return (
            in_flight is not None
            and not in_flight[1].done()
            and self._pending.count < 2 * settings.sink_batch_max_records
            and self._pending.bytes < 2 * settings.sink_batch_max_bytes
        )

    def _take(self, records: list[Any]) -> None:
        first = records[0]
        partition = (first.topic, first.partition)
        expected = self._pending.next_offsets.get(partition)
        if expected is not None and first.offset < expected:
            # The partition was rewound (a rebalance re-seeked it): never mix the two reads in
            # one batch. Commit what we hold (the offset fence decides if it still may) first.
            self._commit()
        if partition in self._reseeked:
            return  # these follow on from a stale batch's records; read again from the warehouse
        pending = self._pending
        if not pending:
            pending.opened = time.monotonic()  # a batch's age counts from its first record
        pending.undecoded.append(records)
        pending.first_offsets.setdefault(partition, first.offset)
        pending.next_offsets[partition] = records[-1].offset + 1
        pending.count += len(records)
        pending.bytes += sum(len(r.value or b"") for r in records)

    def _decode_next(self, *, all_of_them: bool = False) -> None:
        """Validate the oldest records in hand not validated yet (with `all_of_them`, all)."""
        pending = self._pending
        while pending.undecoded:
            records = pending.undecoded.pop(0)
            batch = pending.batches[self.specs[records[0].topic].raw_table]
            pending.dead.extend(self.decoder.decode_records(records, batch))
            if not all_of_them:
                return

    def _commit(self, *, wait: bool = False) -> None:
        """Hand the records read so far to the writer thread, once the batch it holds is
        settled; with `wait`, settle this one too."""
        assert self._consumer is not None
        self._decode_next(all_of_them=True)  # while the writer may still be busy
        self._settle()
        if self._pending:
            pending, self._pending = self._pending, _Pending()
            self._in_flight = (pending, self._writer.submit(self._write, pending))
        if wait:
            self._settle()

    def _write(self, pending: _Pending) -> dict[str, int]:
        """On the writer thread: rows, dead-letter rows and next offsets in one DuckDB
        transaction, fenced on the stored offsets. Dead letters go to Kafka (confirmed) inside
        that transaction, after the fence: a stale batch sends none, and a crash can at worst
        repeat one, never lose one."""
        tables = {n: batch.to_arrow() for n, batch in pending.batches.items() if len(batch)}
        pending.batches.clear()  # the Arrow copy is all we need now; keeps peak memory down
        try:
            with self._warehouse.batch() as con:
                write_batch(
                    con,
                    tables,
                    pending.dead,
                    pending.first_offsets,
                    pending.next_offsets,
                    before_write=lambda: self._send_dead_letters(pending.dead),
                )
            return {name: sum(t.num_rows for t in parts) for name, parts in tables.items()}
        finally:
            tables.clear()
            release_freed_memory()

    def _settle(self) -> None:
        """Wait for the batch the writer holds, then do what only the main thread may: count it
        and commit its offsets to Kafka, or, if it was stale, read it again."""
        if self._in_flight is None:
            return
        assert self._consumer is not None
        pending, write = self._in_flight
        self._in_flight = None
        try:
            loaded = write.result()
        except StaleBatchError:
            # Nothing of this batch was written: read its partitions again from the stored
            # offsets (those past the fence belong to someone else's work), and so the records
            # read after it, which follow on from where it should have ended.
            self.stats.stale_batches += 1
            partitions = {*pending.next_offsets, *self._pending.next_offsets}
            self._pending = _Pending()
            self._reseeked |= partitions
            assigned = self._consumer.assignment()
            self.seek_to_stored(
                [TopicPartition(t, p) for t, p in partitions if TopicPartition(t, p) in assigned]
            )
            return
        except BaseException:
            # Not committed, like the records read after it: the stored offsets bring both back.
            self._pending = _Pending()
            raise
        self.stats.batches += 1
        self.stats.loaded += sum(loaded.values())
        self.stats.dead_lettered += len(pending.dead)
        for name, rows in loaded.items():
            self.stats.rows_by_table[name] += rows
        try:
            self._consumer.commit(
                {
                    TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
                    for (topic, partition), offset in pending.next_offsets.items()
                }
            )
        except KafkaError as exc:
            # the warehouse's offsets are the record (committed above); Kafka's only show lag
            log.warning("group offsets not committed to Kafka (%s); the warehouse has them", exc)
        self._announce(loaded, len(pending.dead), pending.next_offsets)

    def _send_dead_letters(self, dead_letters: list[DeadLetter]) -> None:
        assert self._producer is not None
        for dead in dead_letters:
            self._producer.send_raw(
                self.specs[dead.topic].dlq_name,
                dead.refused.payload or b"",
                key=dead.key,
                headers=dead.headers(),
            )
        if dead_letters:
            self._producer.confirm()

    def _announce(
        self, loaded: dict[str, int], dead: int, offsets: dict[tuple[str, int], int]
    ) -> None:
        """Tell downstream (Airflow's AssetWatcher) that data landed; low volume, one per batch."""
        assert self._producer is not None
        batch_id = uuid.uuid4().hex
        data = {
            "batch_id": batch_id,
            "warehouse": str(self.settings.warehouse_path),
            "rows_by_table": loaded,
            "dead_lettered": dead,
            "offsets": [
                {"topic": t, "partition": p, "next_offset": o}
                for (t, p), o in sorted(offsets.items())
            ],
        }
        event = make_event(
            BATCH_LANDED_TYPE,
            "urn:urbanflow:sink",
            data,
            event_id=stable_event_id(batch_id),
            subject=str(self.settings.warehouse_path.name),
        )
        self._producer.send_event(BATCH_LANDED_TOPIC, event, key="warehouse")

    def _caught_up(self) -> bool:
        assert self._consumer is not None
        assignment = self._consumer.assignment()
        if not assignment:
            return False
        ends = self._consumer.end_offsets(list(assignment))
        return all(self._consumer.position(tp) >= ends[tp] for tp in assignment)

    # -- rebalances ------------------------------------------------------------------------
    def _stored_offsets(self) -> dict[tuple[str, int], int]:
        """On the writer thread: the held warehouse is let go and the offsets read afresh."""
        self._warehouse.release()
        with connect(self.settings.warehouse_path) as con:
            return stored_offsets(con)

    def seek_to_stored(self, partitions: list[TopicPartition]) -> None:
        assert self._consumer is not None
        # on the writer thread: it may hold the warehouse, whose lock a second opener here
        # would wait for in vain
        stored = self._writer.submit(self._stored_offsets).result()
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, offset)


class _SeekToWarehouseOffsets(ConsumerRebalanceListener):
    """The warehouse, not Kafka's group offsets, decides where each partition resumes.

    kafka-python runs this on its IO thread, where blocking Kafka calls are not allowed, so a
    revocation commits nothing: records in hand for a revoked partition fail the offset fence in
    `write_batch` and are read again by whoever owns the partition next.
    """

    def __init__(self, sink: Sink):
        self.sink = sink

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.sink.seek_to_stored(list(assigned))


#: Young-generation collection threshold while the sink runs (CPython's default is 700).
SINK_GC_THRESHOLD = 20_000
#: GIL switch interval while the sink runs (CPython: 5 ms); see `tuned_for_the_loop`
SINK_SWITCH_INTERVAL_S = 0.0005


@contextlib.contextmanager
def tuned_for_the_loop() -> Iterator[None]:
    """The interpreter tuned for the sink's loop, and put back after it.

    Fewer garbage collections: kafka-python makes several tracked objects per record, so at
    CPython's default the sink ran ~600 collections per 200,000 events, 0.25 s of its 4.2 s
    (measured here; 5 collections, 0.01 s, at this threshold). The records are freed as they are
    written, not left in cycles, so memory stays where it was.

    A shorter GIL switch interval: kafka-python's I/O thread reads each fetch response only once
    it holds the GIL, and at CPython's 5 ms default it waited behind the main thread's
    validation, which delayed the next fetch: 2 runs each here, 45-47 % of the raw consume rate
    at 5 ms, 49-50 % at 0.5 ms (docs/benchmarks.md).
    """
    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(SINK_GC_THRESHOLD, *threshold[1:])
    sys.setswitchinterval(SINK_SWITCH_INTERVAL_S)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        sys.setswitchinterval(interval)


def release_freed_memory() -> None:
    """Hand memory freed after a batch back to the OS (glibc keeps it otherwise), so the sink's
    RSS reflects the batch in hand, not the largest batch it ever held."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class _Progress:
    """A live line while the sink works (events loaded, rate); silent when not on a terminal."""

    def __init__(self, stats: SinkStats, *, enabled: bool):
        self.stats = stats
        self.enabled = enabled
        self._live: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.live import Live

            self._live = Live(self._render(), refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def _render(self) -> str:
        s = self.stats
        rate = s.loaded / s.seconds if s.seconds else 0
        return (
            f"[bold]sink[/] loaded {s.loaded:,} · dead-lettered {s.dead_lettered:,} · "
            f"batches {s.batches} · {rate:,.0f} events/s"
        )

    def update(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
