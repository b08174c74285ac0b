"""IATI files -> real Kafka topics -> sink -> raw tables, with the invalid activity on the DLQ.

The real topics hold whatever earlier runs sent, so each test publishes the fixtures under a
publisher ref of its own and asserts on that publisher's events only.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import pytest
from kafka import KafkaConsumer

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import TopicSpec, apply_topics, load_topics
from connectors.sdk import Record, run_source
from connectors.sdk.state import StateStore
from connectors.settings import Settings
from connectors.sink import Sink
from connectors.sources import iati

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "iati"
FIXTURE_PUBLISHER = "GB-CHC-1180001"
IATI_TOPICS = {stream.topic for stream in iati.SOURCE.streams}


@pytest.fixture
def iati_topics(settings: Settings) -> list[TopicSpec]:
    """The three IATI topics as declared (with their DLQs), plus the sink's batch topic."""
    declared = load_topics(settings.topics_file)
    specs = [spec for spec in declared if spec.name in IATI_TOPICS]
    assert {spec.name for spec in specs} == IATI_TOPICS
    apply_topics(
        settings.kafka_bootstrap, [s for s in declared if s.name in IATI_TOPICS or not s.sink]
    )
    return specs


@pytest.fixture
def publisher_files(tmp_path: Path) -> tuple[str, list[Path]]:
    """The fixtures re-published under a fresh publisher ref, so event ids are this run's own."""
    publisher = f"GB-CHC-{uuid.uuid4().int % 10**9:09d}"
    paths = []
    for name in ("urban_programmes.xml", "one_invalid_activity.xml"):
        text = (FIXTURES / name).read_text(encoding="utf-8")
        path = tmp_path / name
        path.write_text(text.replace(FIXTURE_PUBLISHER, publisher), encoding="utf-8")
        paths.append(path)
    return publisher, paths


def _dead_letters(bootstrap: str, topic: str, key: bytes) -> list:
    """Records with `key` on a dead-letter topic, read from its beginning without a group."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3_000,
    )
    try:
        return [record for record in consumer if record.key == key]
    finally:
        consumer.close()


def test_iati_files_load_into_raw_tables_once_and_the_invalid_activity_is_dead_lettered(
    settings, iati_topics, publisher_files
):
    publisher, paths = publisher_files
    source = iati.source_urn(publisher)
    config = iati.IatiConfig(inputs=[str(p) for p in paths])
    expected: dict[str, set[str]] = {topic: set() for topic in IATI_TOPICS}
    for item in iati.SOURCE.read(config, {}):
        if isinstance(item, Record):
            expected[item.stream.topic].add(item.event_id)

    store = StateStore(settings.state_dir, "iati")
    with EventProducer(settings.kafka_bootstrap) as producer:
        first = run_source(iati.SOURCE, config, producer, store)
        second = run_source(iati.SOURCE, config, producer, store)
    Sink(settings, iati_topics).run(until_caught_up=True)

    assert (first.sent, first.rejected, first.checkpoints) == (33, 1, 2)
    assert first.by_stream == {"activities": 5, "transactions": 12, "results": 16}
    assert (second.sent, second.rejected) == (0, 0)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        for spec in iati_topics:
            rows = con.execute(
                f"select event_id, message_key, type from raw.{spec.raw_table} where source = ?",
                [source],
            ).fetchall()
            assert sorted(r[0] for r in rows) == sorted(expected[spec.name]), spec.name
            assert {r[2] for r in rows} == set(spec.event_types)
            assert all(r[1].startswith(publisher + "-") for r in rows)
        commitment = con.execute(
            """select data->>'value', data->>'currency', subject
               from raw.partner_iati_transaction_v1
               where source = ? and data->>'type_code' = '2' and message_key like '%NBO-WASH-01'""",
            [source],
        ).fetchone()
        actuals = con.execute(
            """select data->>'sex', sum((data->>'value')::double)
               from raw.partner_iati_result_v1
               where source = ? and data->>'measurement' = 'actual' and subject = 'BDDAC'
               group by 1 order by 1""",
            [source],
        ).fetchall()
    assert commitment == ("2500000.0", "USD", "KENBO")
    assert actuals == [("female", 450.0), ("male", 300.0)]

    dead = _dead_letters(
        settings.kafka_bootstrap, iati.ACTIVITIES.topic + ".dlq", f"{publisher}-GUL-WTR-05".encode()
    )
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["uf.error.class"] == b"invalid_activity"
    assert b"'1,250,000,000' is not a decimal number" in headers["uf.error.reason"]
    assert dead[0].value.startswith(b"<iati-activity ")
