"""The loader's offset fence (real DuckDB file): a batch behind the stored offsets never lands."""

from __future__ import annotations

import threading
import time
from collections import namedtuple

import duckdb
import pytest

from connectors.kafka.topics import TopicSpec
from connectors.samples.synthetic import observation_events
from connectors.sink.decode import ColumnBatch, RecordDecoder
from connectors.sink.loader import (
    HeldWriter,
    StaleBatchError,
    ensure_schema,
    stored_offsets,
    write_batch,
)
from connectors.warehouse import connect, lock_holder, lock_path, someone_waits

Record = namedtuple("Record", "topic partition offset timestamp key value")
SPEC = TopicSpec("t.x.v1", 1, 1, ("org.urbanflow.stats.observation.v1",), True, True, 1)
TP = ("t.x.v1", 0)


def batch_of(first: int, count: int):
    values = [v for _, v in observation_events(count, start=first, target_bytes=300)]
    records = [
        Record("t.x.v1", 0, first + i, 1_700_000_000_000, b"k", v) for i, v in enumerate(values)
    ]
    columns = ColumnBatch()
    assert RecordDecoder([SPEC], 10_000).decode_records(records, columns) == []
    return {"t_x_v1": columns.to_arrow()}


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(connection, ["t_x_v1"])
    yield connection
    connection.close()


def test_consecutive_batches_commit_rows_and_next_offsets_together(con):
    write_batch(con, batch_of(0, 10), [], {TP: 0}, {TP: 10})
    write_batch(con, batch_of(10, 5), [], {TP: 10}, {TP: 15})
    assert con.execute("select count(*), max(kafka_offset) from raw.t_x_v1").fetchone() == (15, 14)
    assert stored_offsets(con) == {TP: 15}


def test_batch_starting_behind_the_stored_offset_is_refused_and_writes_nothing(con):
    write_batch(con, batch_of(0, 10), [], {TP: 0}, {TP: 10})
    with pytest.raises(StaleBatchError) as info:
        write_batch(con, batch_of(5, 10), [], {TP: 5}, {TP: 15})
    assert info.value.partitions == [TP]
    assert con.execute("select count(*) from raw.t_x_v1").fetchone() == (10,)
    assert stored_offsets(con) == {TP: 10}


def test_dead_letters_are_recorded_with_their_reason_in_the_batch_transaction(con):
    bad = Record("t.x.v1", 0, 10, 1_700_000_000_000, b"k", b"{not json")
    (dead,) = RecordDecoder([SPEC], 10_000).decode_records([bad], ColumnBatch())

    write_batch(con, batch_of(0, 10), [dead], {TP: 0}, {TP: 11})

    row = con.execute(
        "select kafka_topic, kafka_partition, kafka_offset, error_class, contract "
        "from raw._sink_dead_letters"
    ).fetchall()
    assert row == [("t.x.v1", 0, 10, "json", "")]
    assert stored_offsets(con) == {TP: 11}


def test_a_dead_letter_keeps_the_publisher_of_a_json_event_and_none_for_anything_else():
    from connectors.sink.loader import event_source

    assert event_source(b'{"source": "urn:partner:acme", "id": "1"}') == "urn:partner:acme"
    assert event_source(b'{"source": 7}') is None
    assert event_source(b"[1, 2]") is None
    assert event_source(b"not json \xff") is None
    assert event_source(None) is None


def _held(tmp_path, hold_s: float) -> HeldWriter:
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        ensure_schema(con, ["t_x_v1"])
    return HeldWriter(warehouse, "64MB", hold_s)


def test_held_writer_keeps_the_warehouse_across_batches_until_released(tmp_path):
    held = _held(tmp_path, hold_s=3600)
    with held.batch() as first:
        write_batch(first, batch_of(0, 10), [], {TP: 0}, {TP: 10})
    with held.batch() as second:
        write_batch(second, batch_of(10, 5), [], {TP: 10}, {TP: 15})
    assert second is first
    assert lock_holder(lock_path(held.warehouse)) is not None  # still ours between batches

    held.release()

    assert lock_holder(lock_path(held.warehouse)) is None
    with duckdb.connect(str(held.warehouse), read_only=True) as reader:
        assert reader.execute("select count(*) from raw.t_x_v1").fetchone() == (15,)
        assert stored_offsets(reader) == {TP: 15}


def test_held_writer_lets_go_once_a_batch_ends_past_the_hold(tmp_path):
    held = _held(tmp_path, hold_s=0)
    with held.batch() as con:
        write_batch(con, batch_of(0, 10), [], {TP: 0}, {TP: 10})
    assert lock_holder(lock_path(held.warehouse)) is None


def test_held_writer_lets_go_when_a_batch_fails_and_keeps_nothing_of_it(tmp_path):
    held = _held(tmp_path, hold_s=3600)
    with held.batch() as con:
        write_batch(con, batch_of(0, 10), [], {TP: 0}, {TP: 10})
    with pytest.raises(StaleBatchError), held.batch() as con:
        write_batch(con, batch_of(5, 10), [], {TP: 5}, {TP: 15})

    assert lock_holder(lock_path(held.warehouse)) is None
    with held.batch() as con:  # the next batch attaches afresh
        assert con.execute("select count(*) from raw.t_x_v1").fetchone() == (10,)
    held.release()


def test_held_writer_lets_a_waiting_reader_in_before_its_next_batch(tmp_path):
    held = _held(tmp_path, hold_s=3600)
    with held.batch() as con:
        write_batch(con, batch_of(0, 10), [], {TP: 0}, {TP: 10})
    counted: list[int] = []

    def read() -> None:
        with connect(held.warehouse, read_only=True) as reader:
            counted.append(reader.execute("select count(*) from raw.t_x_v1").fetchone()[0])

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 60
    while not someone_waits(held.warehouse) and not counted and time.monotonic() < deadline:
        time.sleep(0.01)
    assert someone_waits(held.warehouse), "the reader should be queued behind the held writer"

    with held.batch() as con:  # lets the reader in first, then takes the lock back
        write_batch(con, batch_of(10, 5), [], {TP: 10}, {TP: 15})
    reader.join(60)
    held.release()

    assert counted == [10]
