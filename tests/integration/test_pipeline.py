"""SDMX feeds -> real Kafka -> sink -> real `dbt build`, checked against the feeds themselves."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest
from kafka import KafkaConsumer, TopicPartition

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import apply_topics, load_topics
from connectors.reference import load_cities
from connectors.samples.sdmx_feeds import render_feeds
from connectors.sdk import load_config, run_source
from connectors.sdk.state import StateStore
from connectors.settings import Settings
from connectors.sink import Sink
from connectors.sources import sdmx
from connectors.transform import run_dbt

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
FEEDS = REPO / "sample_data" / "sdmx"
#: The publishers of the sample feeds, from their file names (`ken_knbs.csv` -> urn:nso:knbs): the
#: SDMX topic is shared with every test of the session, whose own publishers stay out of the totals.
SAMPLE_PUBLISHERS = tuple(
    sorted(f"urn:nso:{path.stem.split('_', 1)[1]}" for path in FEEDS.glob("*_*.*"))
)


def expected_totals_from_feeds() -> dict[str, tuple[int, float]]:
    """series -> (non-null observations, sum of values), read straight from the files.

    Deliberately independent of the connector's parsers: plain csv/json and SDMX positions.
    """
    totals: dict[str, list[float]] = defaultdict(list)
    for path in sorted(FEEDS.iterdir()):
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    row = {k.split(":")[0]: v.split(": ")[0] for k, v in row.items()}
                    if row["OBS_VALUE"]:
                        totals[row["SERIES"]].append(float(row["OBS_VALUE"]))
        elif path.suffix == ".json":
            message = json.loads(path.read_text(encoding="utf-8"))
            structure = message["data"]["structures"][0]
            series_dims = structure["dimensions"]["series"]
            position = [d["id"] for d in series_dims].index("SERIES")
            for dataset in message["data"]["dataSets"]:
                for key, series in dataset["series"].items():
                    code = series_dims[position]["values"][int(key.split(":")[position])]["id"]
                    for observation in series["observations"].values():
                        if observation[0] is not None:
                            totals[code].append(float(observation[0]))
    return {code: (len(values), sum(values)) for code, values in totals.items()}


@pytest.fixture
def real_topics(settings: Settings) -> list:
    specs = load_topics(settings.topics_file)
    apply_topics(settings.kafka_bootstrap, specs)
    return specs


def test_sample_feeds_flow_into_fct_city_indicator_with_the_feeds_totals(
    settings, real_topics, tmp_path
):
    config = load_config("sdmx", sdmx.SdmxConfig, overrides={"inputs": [str(FEEDS)]})
    store = StateStore(settings.state_dir, "sdmx")
    with EventProducer(settings.kafka_bootstrap) as producer:
        first = run_source(sdmx.SOURCE, config, producer, store)
        second = run_source(sdmx.SOURCE, config, producer, store)
    Sink(settings, real_topics).run(until_caught_up=True)
    run_dbt(settings, ["build"], capture=True)

    assert first.sent == sum(count for _, count in render_feeds(load_cities()).values())
    assert second.sent == 0
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        con.execute(
            "create temp view sample_indicators as select * from marts.fct_city_indicator "
            f"where source_urn in {SAMPLE_PUBLISHERS}"
        )
        rows = con.execute(
            """select series_code, count(value), sum(value), count(distinct city_code),
                      count(distinct country_iso3)
               from sample_indicators group by series_code"""
        ).fetchall()
        cities, countries = con.execute(
            "select count(distinct city_code), count(distinct country_iso3) from sample_indicators"
        ).fetchone()
        by_sex = dict(
            con.execute(
                "select sex, count(*) from sample_indicators "
                "where series_code = 'EN_LND_SLUM' group by sex"
            ).fetchall()
        )
    expected = expected_totals_from_feeds()
    assert {code: (count, pytest.approx(total, abs=1e-6)) for code, count, total, _, _ in rows} == {
        code: (count, pytest.approx(total, abs=1e-6)) for code, (count, total) in expected.items()
    }
    assert cities >= 24 and countries >= 10
    assert by_sex["female"] == by_sex["male"] == by_sex["total"]
    _assert_docs_generate_covers_every_mart(settings, tmp_path / "docs-target")


def _assert_docs_generate_covers_every_mart(settings: Settings, target: Path) -> None:
    """`dbt docs generate` works, and every mart and mart column it lists is described."""
    run_dbt(settings, ["docs", "generate", "--target-path", str(target)], capture=True)
    catalog = json.loads((target / "catalog.json").read_text(encoding="utf-8"))
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    marts = {
        key: node
        for key, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["schema"] == "marts"
    }
    assert len(marts) >= 20
    for key, node in marts.items():
        assert node["description"], key
        built = {name.lower() for name in catalog["nodes"][key]["columns"]}
        assert built == {name.lower() for name in node["columns"]}, key
        assert all(column["description"] for column in node["columns"].values()), key
    assert (target / "index.html").exists()


def _end_offsets(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def test_malformed_sdmx_file_is_refused_naming_file_and_line_and_nothing_is_sent(
    settings, real_topics, tmp_path
):
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "a_good.csv").write_text((FEEDS / "ken_knbs.csv").read_text(encoding="utf-8"))
    good_lines = (FEEDS / "per_inei.csv").read_text(encoding="utf-8").splitlines()
    good_lines[3] = good_lines[3].replace(",PT,", ",PT,extra-cell,")
    (feeds / "b_broken.csv").write_text("\n".join(good_lines) + "\n")
    before = _end_offsets(settings.kafka_bootstrap, sdmx.TOPIC)

    result = subprocess.run(
        [str(Path(sys.executable).with_name("urbanflow")), "source", "run", "sdmx", str(feeds)],
        env={
            **os.environ,
            "UF_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "UF_STATE_DIR": str(settings.state_dir),
        },
        capture_output=True,
        text=True,
    )

    assert result.returncode == 1
    assert f"{feeds / 'b_broken.csv'}:4" in result.stderr
    assert "Traceback" not in result.stderr
    assert _end_offsets(settings.kafka_bootstrap, sdmx.TOPIC) == before
    assert not (settings.state_dir / "sdmx.json").exists()
