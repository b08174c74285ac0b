"""HXL, World Bank and UN SDG sources -> real Kafka -> sink -> DuckDB, then re-runs send nothing.

Real topic names, an isolated warehouse and state dir per test (the `settings` fixture): the sink
loads those topics from the beginning, so the assertions look only at this run's event ids.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest
from kafka import KafkaConsumer, TopicPartition

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import apply_topics, load_topics
from connectors.sdk import Record, load_config, run_source
from connectors.sdk.state import StateStore
from connectors.sink import Sink
from connectors.sources import hxl, unsdg, worldbank

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HXL_BAD_NUMBER = FIXTURES / "hxl" / "dtm_eth_bad_number.csv"


def _configs() -> dict:
    return {
        hxl.SOURCE: load_config(
            "hxl",
            hxl.HxlConfig,
            overrides={
                "partner": "iom-dtm",
                "inputs": [
                    str(FIXTURES / "hxl" / "dtm_som_idp_sites_2024-03.csv"),
                    str(FIXTURES / "hxl" / "dtm_eth_site_assessment_r35.xlsx"),
                    str(HXL_BAD_NUMBER),
                ],
            },
        ),
        worldbank.SOURCE: load_config(
            "worldbank",
            worldbank.WorldBankConfig,
            overrides={"inputs": [str(FIXTURES / "worldbank")]},
        ),
        unsdg.SOURCE: load_config(
            "unsdg", unsdg.UnSdgConfig, overrides={"inputs": [str(FIXTURES / "unsdg")]}
        ),
    }


def _end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return consumer.end_offsets(partitions)
    finally:
        consumer.close()


def _read_from(bootstrap: str, starts: dict[TopicPartition, int]) -> list:
    """Every message after `starts` up to the current end of each partition."""
    ends = _end_offsets(bootstrap, next(iter(starts)).topic)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign(list(starts))
    for partition, offset in starts.items():
        consumer.seek(partition, offset)
    wanted = sum(ends[p] - starts[p] for p in starts)
    messages: list = []
    deadline = time.monotonic() + 300
    while len(messages) < wanted and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            messages.extend(batch)
    consumer.close()
    return messages


def test_three_sources_land_in_raw_tables_bad_hxl_row_in_dlq_and_reruns_send_nothing(settings):
    names = {hxl.TOPIC, worldbank.TOPIC, unsdg.TOPIC}
    specs = [s for s in load_topics(settings.topics_file) if s.name in names]
    apply_topics(settings.kafka_bootstrap, specs)
    configs = _configs()
    expected = {  # event id -> data, straight from each source's read() without Kafka
        source.name: {
            item.event_id: item.data for item in source.read(config, {}) if isinstance(item, Record)
        }
        for source, config in configs.items()
    }
    dlq_start = _end_offsets(settings.kafka_bootstrap, hxl.TOPIC + ".dlq")

    with EventProducer(settings.kafka_bootstrap) as producer:
        first = {
            s.name: run_source(s, c, producer, StateStore(settings.state_dir, s.name))
            for s, c in configs.items()
        }
        second = {
            s.name: run_source(s, c, producer, StateStore(settings.state_dir, s.name))
            for s, c in configs.items()
        }
    Sink(settings, specs).run(until_caught_up=True)

    assert {n: (r.sent, r.rejected) for n, r in first.items()} == {
        "hxl": (69, 1),
        "worldbank": (12, 0),
        "unsdg": (10, 0),
    }
    assert {n: (r.sent, r.rejected) for n, r in second.items()} == {
        "hxl": (0, 0),
        "worldbank": (0, 0),
        "unsdg": (0, 0),
    }
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        for source, spec in ((hxl, hxl.TOPIC), (worldbank, worldbank.TOPIC), (unsdg, unsdg.TOPIC)):
            ids = list(expected[source.SOURCE.name])
            table = spec.replace(".", "_")
            loaded = con.execute(
                f"select count(distinct event_id) from raw.{table} "
                "where list_contains(?, event_id)",
                [ids],
            ).fetchone()[0]
            assert loaded == len(ids), spec
        girls = con.execute(
            """select source, data ->> '$.sex', data ->> '$.age_group',
                      cast(data ->> '$.value' as double), data ->> '$.city_code'
               from raw.partner_hxl_record_v1
               where data ->> '$.dataset' = 'dtm_som_idp_sites_2024-03.csv'
                 and cast(data ->> '$.row' as integer) = 3
                 and cast(data ->> '$.column' as integer) = 14
                 and list_contains(?, event_id)
               limit 1""",
            [list(expected["hxl"])],
        ).fetchone()
        uganda = con.execute(
            """select source, cast(data ->> '$.value' as double), data ->> '$.labels.REF_AREA'
               from raw.stats_worldbank_observation_v1
               where data ->> '$.series_key' = 'EN.POP.SLUM.UR.ZS.UGA'
                 and data ->> '$.time_period' = '2018' and list_contains(?, event_id)
               limit 1""",
            [list(expected["worldbank"])],
        ).fetchone()
        kenya_female = con.execute(
            """select source, cast(data ->> '$.value' as double)
               from raw.stats_unsdg_observation_v1
               where data ->> '$.series_key' = 'EN_LND_SLUM.404.G.F.U'
                 and data ->> '$.time_period' = '2018' and list_contains(?, event_id)
               limit 1""",
            [list(expected["unsdg"])],
        ).fetchone()
    assert girls == ("urn:partner:iom-dtm", "female", "children", 14890.0, "SOMGQ")
    assert uganda == ("urn:nso:worldbank", 48.3, "Uganda")
    assert kenya_female == ("urn:nso:unsd", 47.0)

    dead = _read_from(settings.kafka_bootstrap, dlq_start)
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["uf.error.reason"] == (
        f"{HXL_BAD_NUMBER}:4: column H (#affected+f+idps): '11,38O' is not a count of people"
    )
    assert headers["uf.contract"] == "org.urbanflow.hxl.record.v2"
    assert headers["uf.source"] == "hxl"
    assert dead[0].key == b"dtm_eth_bad_number.csv"
