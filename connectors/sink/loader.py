"""Transactional writes into warehouse.duckdb: a batch, its dead letters and the next offsets in one
DuckDB transaction, so a crash at any point leaves either all of a batch or none of it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from connectors.sink import arrow
from connectors.sink.decode import DeadLetter
from connectors.sink.raw import create_table_sql, insert_payloads_sql, insert_sql
from connectors.warehouse import someone_waits, warehouse_lock

OFFSETS_TABLE = "raw._sink_offsets"
DEAD_LETTERS_TABLE = "raw._sink_dead_letters"

_BOOKKEEPING_DDL = f"""
create schema if not exists raw;
create table if not exists {OFFSETS_TABLE} (
    kafka_topic varchar not null,
    kafka_partition integer not null,
    next_offset bigint not null,
    updated_at timestamptz not null,
    primary key (kafka_topic, kafka_partition)
);
create table if not exists {DEAD_LETTERS_TABLE} (
    kafka_topic varchar not null,
    kafka_partition integer not null,
    kafka_offset bigint not null,
    kafka_timestamp timestamptz,
    error_class varchar not null,
    reason varchar not null,
    contract varchar,
    dead_lettered_at timestamptz not null
);
-- the CloudEvents `source` of the refused record, so a partner sees its own refusals
alter table {DEAD_LETTERS_TABLE} add column if not exists source varchar;
"""

TopicPartitionKey = tuple[str, int]
#: JSON text one insert statement parses at most. DuckDB parses a vector (2,048 rows) of
#: payloads at a time and ran out of the writer's 64 MB on 1,000 8 KB events in one statement
#: (measured here); batches of small events (up to 2 KB each) still go in one statement.
INSERT_MAX_BYTES = 4 * 1024 * 1024
DUCKDB_VECTOR_ROWS = 2_048
#: Rows per row group of what the sink writes (DuckDB's default is 122,880). A batch larger than one
#: row group is written compressed straight into the file ("optimistic write"), so a commit logs
#: only block pointers in the WAL and the checkpoint on close has almost nothing left to copy:
#: measured here, 16-24 MB written per 100,000 1 KB events instead of 140-210 MB.
WRITER_ROW_GROUP_SIZE = 8_192


@contextmanager
def open_writer(warehouse: Path, memory_limit: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse for one batch commit, under the lock shared with dbt, closed before the
    lock is released; attached with the sink's row group size (`WRITER_ROW_GROUP_SIZE`)."""
    with warehouse_lock(warehouse):
        config = {"memory_limit": memory_limit, "temp_directory": f"{warehouse}.tmp"}
        con = duckdb.connect(config=config)
        try:
            path = str(warehouse).replace("'", "''")
            con.execute(f"attach '{path}' as warehouse (row_group_size {WRITER_ROW_GROUP_SIZE})")
            con.execute("use warehouse")
            yield con
        finally:
            con.close()


class HeldWriter:
    """The warehouse kept open across consecutive batches, for up to `hold_s` at a time.

    Attaching the file and checkpointing it on close cost about as much as inserting a
    6,000-event batch, so a busy sink that reopened per batch paid them twice over. Each batch
    is still its own transaction. The lock is let go before a batch when another process waits
    for it (`someone_waits`), after a batch that ends past `hold_s`, and when the sink idles
    (`release`). Used from one thread at a time (the sink's writer), which must be the only
    place the process opens the file: the lock is not reentrant.
    """

    def __init__(self, warehouse: Path, memory_limit: str, hold_s: float):
        self.warehouse = warehouse
        self.memory_limit = memory_limit
        self.hold_s = hold_s
        self._open: ExitStack | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._since = 0.0

    @contextmanager
    def batch(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection for one batch; kept for the next unless the hold is over or it failed."""
        if self._con is not None and someone_waits(self.warehouse):
            self.release()  # and queue behind them
        if self._con is None:
            stack = ExitStack()
            self._con = stack.enter_context(open_writer(self.warehouse, self.memory_limit))
            self._open, self._since = stack, time.monotonic()
        try:
            yield self._con
        except BaseException as exc:
            # closed with the error, so the lock's context sees it (a full disk becomes one line);
            # whatever went wrong, the next batch starts from a fresh attach
            stack, self._open, self._con = self._open, None, None
            if stack is not None:
                stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        if time.monotonic() - self._since >= self.hold_s:
            self.release()

    def release(self) -> None:
        """Close the warehouse and let go of the lock, if held."""
        stack, self._open, self._con = self._open, None, None
        if stack is not None:
            stack.close()


def event_source(payload: bytes | None) -> str | None:
    """The CloudEvents `source` of a refused record, when its payload is a JSON object with one."""
    try:
        event = orjson.loads(payload or b"")
    except orjson.JSONDecodeError:
        return None
    source = event.get("source") if isinstance(event, dict) else None
    return source if isinstance(source, str) else None


def ensure_schema(con: duckdb.DuckDBPyConnection, raw_tables: list[str]) -> None:
    con.execute(_BOOKKEEPING_DDL)
    for table in raw_tables:
        con.execute(create_table_sql(table))


def stored_offsets(con: duckdb.DuckDBPyConnection) -> dict[TopicPartitionKey, int]:
    """Where the sink must resume: the next offset per partition, as committed with the data."""
    rows = con.execute(f"select kafka_topic, kafka_partition, next_offset from {OFFSETS_TABLE}")
    return {(topic, partition): offset for topic, partition, offset in rows.fetchall()}


class StaleBatchError(Exception):
    """The warehouse already holds data past where this batch starts (another sink instance, or
    this one before a rebalance, committed it): the batch is dropped and re-read from there."""

    def __init__(self, partitions: list[TopicPartitionKey]):
        self.partitions = partitions
        super().__init__(f"stale batch for {partitions}")


def write_batch(
    con: duckdb.DuckDBPyConnection,
    tables: Mapping[str, Sequence[pa.Table]],
    dead_letters: list[DeadLetter],
    first_offsets: Mapping[TopicPartitionKey, int],
    next_offsets: Mapping[TopicPartitionKey, int],
    before_write: Callable[[], None] | None = None,
) -> None:
    """Insert rows, dead-letter records and next offsets atomically, fenced on the stored offsets.

    A batch may commit only if, for each of its partitions, the stored next offset is not past
    the batch's first record. That makes loading exactly-once whatever the interleaving of
    rebalances, restarts and zombie instances, without trusting Kafka's group membership.
    `before_write` runs inside the transaction once the fence passed; if it raises, nothing is
    written.
    """
    now = datetime.now(UTC)
    con.execute("begin transaction")
    try:
        stored = stored_offsets(con)
        stale = [tp for tp, first in first_offsets.items() if stored.get(tp, -1) > first]
        if stale:
            raise StaleBatchError(sorted(stale))
        if before_write is not None:
            before_write()  # e.g. send this batch's dead letters: only once the fence has passed
        for table, parts in tables.items():
            for rows in parts:
                if not rows.num_rows:
                    continue
                payloads = "payload" in rows.schema.names
                sql = (insert_payloads_sql if payloads else insert_sql)(table, "arrow_batch")
                text = "payload" if payloads else "data"
                for piece in arrow.slices(rows, text, INSERT_MAX_BYTES, DUCKDB_VECTOR_ROWS):
                    con.register("arrow_batch", piece)
                    con.execute(sql, [now])
                    con.unregister("arrow_batch")
        if dead_letters:
            con.executemany(
                f"insert into {DEAD_LETTERS_TABLE} (kafka_topic, kafka_partition, kafka_offset, "
                "kafka_timestamp, error_class, reason, contract, dead_lettered_at, source) "
                "values (?, ?, ?, make_timestamptz(? * 1000), ?, ?, ?, ?, ?)",
                [
                    (
                        d.topic,
                        d.partition,
                        d.offset,
                        d.timestamp,
                        d.refused.error_class,
                        d.refused.reason,
                        d.refused.contract,
                        now,
                        event_source(d.refused.payload),
                    )
                    for d in dead_letters
                ],
            )
        con.executemany(
            f"insert or replace into {OFFSETS_TABLE} values (?, ?, ?, ?)",
            [
                (topic, partition, offset, now)
                for (topic, partition), offset in next_offsets.items()
            ],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
