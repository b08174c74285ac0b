"""The loader's offset fence (real DuckDB file): a batch behind the stored offsets never lands."""

from __future__ import annotations

from collections import namedtuple

import duckdb
import pytest

from connectors.kafka.topics import TopicSpec
from connectors.samples.synthetic import observation_events
from connectors.sink.decode import ColumnBatch, RecordDecoder
from connectors.sink.loader import StaleBatchError, ensure_schema, stored_offsets, write_batch

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
