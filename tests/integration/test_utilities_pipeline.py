"""Utilities source -> real Kafka topics -> sink: every reading the report counts lands once, and
bad KPI rows wait on the dead-letter topic with their reason."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import duckdb
import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import apply_topics, load_topics
from connectors.sdk import load_config, run_source
from connectors.sdk.state import StateStore
from connectors.settings import Settings
from connectors.sink import Sink
from connectors.sources import utilities

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "utilities"


@pytest.fixture
def utility_topics(settings: Settings) -> list:
    specs = [s for s in load_topics(settings.topics_file) if s.name.startswith("utility.")]
    apply_topics(settings.kafka_bootstrap, specs)
    return specs


@pytest.fixture
def run_tag() -> str:
    """Our events' sources end in this tag, so earlier runs on the shared topics do not count."""
    return f"it-{uuid.uuid4().hex[:10]}"


def dlq_messages_since(bootstrap: str, topic: str, start: dict[int, int]) -> list:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp.partition, 0))
        ends = consumer.end_offsets(tps)
        wanted = sum(ends[tp] - start.get(tp.partition, 0) for tp in tps)
        found: list = []
        deadline = time.monotonic() + 300
        while len(found) < wanted and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                found.extend(batch)
        return found
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def test_two_seconds_at_1000_per_s_land_exactly_as_many_readings_as_reported(
    settings, utility_topics, run_tag
):
    config = load_config(
        "utilities",
        utilities.UtilitiesConfig,
        overrides={"rate": 1000, "duration_s": 2, "meters": 300, "seed": 11, "run_tag": run_tag},
    )
    store = StateStore(settings.state_dir, "utilities")
    with EventProducer(settings.kafka_bootstrap, client_id="test-utilities") as producer:
        report = run_source(utilities.SOURCE, config, producer, store)
    Sink(settings, utility_topics).run(until_caught_up=True)

    sent = report.by_stream["readings"]
    assert report.rejected == 0
    assert 0 < sent <= 2_050  # at most 2 s at 1000/s; how many depends on the machine's speed
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows, ids, meters, partitions = con.execute(
            """select count(*), count(distinct event_id), count(distinct message_key),
                      count(distinct kafka_partition)
               from raw.utility_meter_reading_v1 where source like ?""",
            [f"%:{run_tag}"],
        ).fetchone()
        out_of_order = con.execute(
            """with readings as (
                   select message_key, kafka_offset, cast(data->>'sequence' as integer) as seq
                   from raw.utility_meter_reading_v1 where source like ?)
               , behind as (
                   select seq < max(seq) over (partition by message_key order by kafka_offset
                                               rows between unbounded preceding and 1 preceding)
                          as is_behind
                   from readings)
               select count(*) from behind where is_behind""",
            [f"%:{run_tag}"],
        ).fetchone()[0]
    assert (rows, ids) == (sent, sent)
    assert meters == len(store.load()["stream"]["next_sequence"])
    assert partitions == 6
    assert 0.02 * sent <= out_of_order <= 0.08 * sent  # out_of_order_fraction 0.05, per key


def test_bad_kpi_rows_go_to_the_dlq_with_their_reason_and_the_rest_load(
    settings, utility_topics, run_tag, tmp_path
):
    drops = tmp_path / f"drops-{run_tag}"
    drops.mkdir()
    shutil.copy(FIXTURES / "kpi_2025_02.csv", drops / "kpi_2025_02.csv")
    dlq = "utility.kpi.monthly.v1.dlq"
    before = end_offsets(settings.kafka_bootstrap, dlq)
    config = load_config(
        "utilities",
        utilities.UtilitiesConfig,
        overrides={"mode": "kpi", "inputs": [str(drops)], "run_tag": run_tag},
    )
    with EventProducer(settings.kafka_bootstrap, client_id="test-utilities") as producer:
        report = run_source(
            utilities.SOURCE, config, producer, StateStore(settings.state_dir, "utilities")
        )
    Sink(settings, utility_topics).run(until_caught_up=True)

    assert (report.by_stream, report.rejected) == ({"kpis": 3}, 3)
    ours = [
        m
        for m in dlq_messages_since(settings.kafka_bootstrap, dlq, before)
        if dict(m.headers)["uf.error.reason"].startswith(str(drops).encode())
    ]
    reasons = sorted(dict(m.headers)["uf.error.reason"].decode() for m in ours)
    assert reasons == [
        f"{drops / 'kpi_2025_02.csv'}:3 coverage_pct: 140 is outside 0 to 100",
        f"{drops / 'kpi_2025_02.csv'}:4 hours_of_supply_per_day: 'n/a' is not a number",
        f"{drops / 'kpi_2025_02.csv'}:5 city_code: 'XXABC' is not a city in ref_cities",
    ]
    assert sorted(orjson.loads(m.value)["row"] for m in ours) == [3, 4, 5]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        loaded = con.execute(
            """select data->>'city_code', cast(data->>'coverage_pct' as double)
               from raw.utility_kpi_monthly_v1 where source like ? order by 1""",
            [f"%:{run_tag}"],
        ).fetchall()
    assert loaded == [("GHACC", 74.9), ("KENBO", 82.7), ("PELIM", 93.1)]
