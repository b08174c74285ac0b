"""The sink's record decoder on hand-made records: rows for valid events, reasons for the rest."""

from __future__ import annotations

from collections import namedtuple

import duckdb
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.kafka.topics import TopicSpec
from connectors.samples.synthetic import observation_events
from connectors.sink.decode import ColumnBatch, RecordDecoder
from connectors.sink.loader import ensure_schema, write_batch
from connectors.sink.raw import RAW_COLUMNS

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


def _loaded_rows(batch: ColumnBatch) -> list[tuple]:
    """The warehouse rows of `batch` (in-memory DuckDB), `data` parsed, `ingested_at` left out."""
    con = duckdb.connect()
    ensure_schema(con, ["t"])
    write_batch(con, {"t": batch.to_arrow()}, [], {TP: 0}, {TP: 1})
    rows = con.execute(
        f"select {', '.join(NAMES)} from raw.t order by kafka_partition, kafka_offset"
    ).fetchall()
    con.close()
    data = NAMES.index("data")
    return [(*row[:data], orjson.loads(row[data]), *row[data + 1 :]) for row in rows]


NAMES = [c.name for c in RAW_COLUMNS if c.name != "ingested_at"]
TP = ("stats.sdmx.observation.v1", 1)


def test_a_valid_record_loads_the_same_row_from_its_payload_as_from_decoded_columns(
    decoder, valid_event
):
    fast, slow = ColumnBatch(), ColumnBatch()
    raw = orjson.dumps(valid_event)

    assert decoder.decode_records([record(raw)], fast) == []
    assert decoder.decode_into(record(raw), slow) is None

    assert len(fast.payloads["payload"]) == 1 and len(slow.columns["event_id"]) == 1
    assert _loaded_rows(fast) == _loaded_rows(slow)
    assert _loaded_rows(fast)[0][NAMES.index("data")] == valid_event["data"]


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {"id": _text.filter(bool), "source": _text.map(lambda s: "urn:" + s)},
            optional={
                "subject": _text,
                "dataschema": _text,
                "time": st.sampled_from(["2026-01-01T00:00:00Z", "2024-02-29T23:59:59.5+05:30"]),
                "value": st.none() | st.floats(-1e300, 1e300) | st.integers(-(2**53), 2**53),
                "label": _text,
            },
        ),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
def test_the_payload_path_loads_exactly_the_rows_the_decoded_path_loads(changes, pretty):
    """DuckDB takes the attributes out of the payload; the reference is the Python decode."""
    decoder = RecordDecoder([TOPIC], max_event_bytes=4_096)
    fast, slow = ColumnBatch(), ColumnBatch()
    base = orjson.loads(next(observation_events(1, target_bytes=400))[1])
    for offset, change in enumerate(changes):
        event = {**base, **{k: v for k, v in change.items() if k not in ("value", "label")}}
        event["data"] = {**base["data"], "value": change.get("value", 1.5)}
        if "label" in change:
            event["data"]["labels"] = {"CITY": change["label"]}
        raw = orjson.dumps(event, option=orjson.OPT_INDENT_2 if pretty else None)
        assert decoder.decode_records([record(raw, offset)], fast) == []
        assert decoder.decode_into(record(raw, offset), slow) is None

    assert _loaded_rows(fast) == _loaded_rows(slow)


def test_a_topic_whose_event_type_has_no_contract_is_a_start_up_error_naming_both():
    from dataclasses import replace

    from connectors.errors import ConfigError

    orphan = replace(TOPIC, event_types=("org.urbanflow.nothing.v1",))
    with pytest.raises(ConfigError) as info:
        RecordDecoder([orphan], max_event_bytes=4_096)
    message = str(info.value)
    assert TOPIC.name in message and "org.urbanflow.nothing.v1" in message
    assert "has no contract" in message and "\n" not in message


@pytest.mark.parametrize("written", ["2026-01-01t08:30:00z", "2026-01-01T08:30:00z"])
def test_a_lowercase_t_or_z_in_time_loads_on_both_paths_as_the_same_instant(
    decoder, valid_event, written
):
    """RFC 3339 (and the contracts) allow a lowercase `t` and `z`, which DuckDB's timestamp cast
    refuses: one such event would stop its whole batch from committing, on every retry."""
    valid_event["time"] = written
    fast, slow = ColumnBatch(), ColumnBatch()
    raw = orjson.dumps(valid_event)
    assert decoder.decode_records([record(raw)], fast) == []
    assert decoder.decode_into(record(raw), slow) is None

    for batch in (fast, slow):
        (row,) = _loaded_rows(batch)
        loaded = row[NAMES.index("event_time")]
        assert loaded.isoformat().replace("+00:00", "Z") == "2026-01-01T08:30:00Z"
