"""The sink's record decoder on hand-made records: rows for valid events, reasons for the rest."""

from __future__ import annotations

from collections import namedtuple

import orjson
import pytest

from connectors.kafka.topics import TopicSpec
from connectors.samples.synthetic import observation_events
from connectors.sink.decode import ColumnBatch, RecordDecoder

Record = namedtuple("Record", "topic partition offset timestamp key value")
TOPIC = TopicSpec(
    name="stats.sdmx.observation.v1",
    partitions=3,
    retention_ms=1,
    event_types=("org.urbanflow.stats.observation.v1",),
    sink=True,
    dlq=True,
    dlq_retention_ms=1,
)


def record(value: bytes | None, offset: int = 7) -> Record:
    return Record(TOPIC.name, 1, offset, 1_700_000_000_000, b"A.KEN", value)


@pytest.fixture
def decoder() -> RecordDecoder:
    return RecordDecoder([TOPIC], max_event_bytes=4_096)


@pytest.fixture
def valid_event() -> dict:
    _, value = next(observation_events(1, target_bytes=500))
    return orjson.loads(value)


def test_valid_event_becomes_one_row_with_its_kafka_coordinates(decoder, valid_event):
    batch = ColumnBatch()
    assert decoder.decode_into(record(orjson.dumps(valid_event)), batch) is None
    assert len(batch) == 1
    cols = batch.columns
    assert cols["event_id"] == [valid_event["id"]]
    assert cols["kafka_partition"] == [1] and cols["kafka_offset"] == [7]
    assert cols["message_key"] == ["A.KEN"]
    assert orjson.loads(cols["data"][0]) == valid_event["data"]


@pytest.mark.parametrize(
    ("value", "error_class", "reason"),
    [
        (None, "empty", "no value"),
        (b"{not json", "json", "not valid JSON"),
        (b"[1, 2]", "envelope", "JSON object"),
        (b"x" * 5_000, "oversize", "5000 bytes"),
    ],
)
def test_unreadable_records_are_dead_lettered_with_a_reason(decoder, value, error_class, reason):
    batch = ColumnBatch()
    dead = decoder.decode_into(record(value), batch)
    assert dead is not None and dead.error_class == error_class and reason in dead.reason
    assert len(batch) == 0


def test_contract_violation_names_the_field_and_the_contract(decoder, valid_event):
    valid_event["data"]["value"] = "high"
    dead = decoder.decode_into(record(orjson.dumps(valid_event)), ColumnBatch())
    assert dead.error_class == "contract"
    assert "value" in dead.reason
    assert dead.contract == "org.urbanflow.stats.observation.v1"
    headers = dict(dead.headers())
    assert headers["uf.original.offset"] == b"7"
    assert headers["uf.original.topic"] == TOPIC.name.encode()


def test_event_type_not_declared_for_the_topic_is_dead_lettered(decoder, valid_event):
    valid_event["type"] = "org.urbanflow.ops.batch_landed.v1"
    dead = decoder.decode_into(record(orjson.dumps(valid_event)), ColumnBatch())
    assert dead.error_class == "unknown_type"
    assert "not declared for topic" in dead.reason
