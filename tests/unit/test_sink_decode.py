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
    assert dead is not None
    assert dead.refused.error_class == error_class and reason in dead.refused.reason
    assert dead.refused.payload == value
    assert len(batch) == 0


def test_contract_violation_names_the_field_and_the_contract(decoder, valid_event):
    valid_event["data"]["value"] = "high"
    dead = decoder.decode_into(record(orjson.dumps(valid_event)), ColumnBatch())
    assert dead.refused.error_class == "contract"
    assert "value" in dead.refused.reason
    assert dead.refused.contract == "org.urbanflow.stats.observation.v1"


def test_dead_letter_headers_name_the_error_then_the_kafka_origin_in_a_fixed_order(
    decoder, valid_event
):
    valid_event["data"]["value"] = "high"
    dead = decoder.decode_into(record(orjson.dumps(valid_event)), ColumnBatch())

    headers = dead.headers()

    assert [name for name, _ in headers] == [
        "uf.error.class",
        "uf.error.reason",
        "uf.contract",
        "uf.original.topic",
        "uf.original.partition",
        "uf.original.offset",
        "uf.original.timestamp",
    ]
    assert dict(headers)["uf.error.class"] == b"contract"
    assert dict(headers)["uf.contract"] == b"org.urbanflow.stats.observation.v1"
    assert dict(headers)["uf.original.topic"] == TOPIC.name.encode()
    assert dict(headers)["uf.original.partition"] == b"1"
    assert dict(headers)["uf.original.offset"] == b"7"
    assert dict(headers)["uf.original.timestamp"] == b"1700000000000"


def test_a_dead_letter_keeps_a_key_that_is_not_utf8_byte_for_byte(decoder):
    raw_key = b"\xff\xfeA.KEN"
    dead = decoder.decode_into(Record(TOPIC.name, 1, 7, 0, raw_key, b"{not json"), ColumnBatch())

    assert dead.key == raw_key


def test_event_type_not_declared_for_the_topic_is_dead_lettered(decoder, valid_event):
    valid_event["type"] = "org.urbanflow.ops.batch_landed.v1"
    dead = decoder.decode_into(record(orjson.dumps(valid_event)), ColumnBatch())
    assert dead.refused.error_class == "unknown_type"
    assert "not declared for topic" in dead.refused.reason


def test_a_record_the_fast_path_refuses_but_the_contract_accepts_gets_the_same_row(
    decoder, valid_event
):
    fast, slow = ColumnBatch(), ColumnBatch()
    raw = orjson.dumps(valid_event)

    assert decoder.decode_records([record(raw)], fast) == []
    assert decoder.decode_into(record(raw), slow) is None

    data = [orjson.loads(b.columns.pop("data")[0]) for b in (fast, slow)]
    assert slow.columns == fast.columns
    assert data[0] == data[1]


def test_a_topic_whose_event_type_has_no_contract_is_a_start_up_error_naming_both():
    from dataclasses import replace

    from connectors.errors import ConfigError

    orphan = replace(TOPIC, event_types=("org.urbanflow.nothing.v1",))
    with pytest.raises(ConfigError) as info:
        RecordDecoder([orphan], max_event_bytes=4_096)
    message = str(info.value)
    assert TOPIC.name in message and "org.urbanflow.nothing.v1" in message
    assert "has no contract" in message and "\n" not in message
