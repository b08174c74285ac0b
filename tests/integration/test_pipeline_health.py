"""The pipeline-health DAG's work against a real broker, DuckDB and dbt: a health snapshot, dbt's
source freshness and a recorded run failure on a loaded warehouse, then the ops marts built from
them, checked against what the broker and the warehouse say themselves."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from kafka import KafkaConsumer, TopicPartition

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import apply_topics, load_topics
from connectors.orchestration import health
from connectors.sdk import load_config, run_source
from connectors.sdk.state import StateStore
from connectors.settings import Settings
from connectors.sink import Sink
from connectors.sources import sdmx
from connectors.transform import WAREHOUSE_BUILD, run_dbt
from connectors.warehouse import connect

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
FEEDS = REPO / "sample_data" / "sdmx"
SDMX_TOPIC = "stats.sdmx.observation.v1"
SDMX_RAW = "stats_sdmx_observation_v1"
HEALTH_MARTS = ("fct_pipeline_health", "fct_source_freshness", "fct_run_failures")


@pytest.fixture
def real_topics(settings: Settings) -> list:
    specs = load_topics(settings.topics_file)
    apply_topics(settings.kafka_bootstrap, specs)
    return specs


def _end_offsets(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def _query(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_fresh_warehouse_builds_with_empty_health_marts(settings):
    """No DAG has run and no event landed: the health tables still exist (dbt's on-run-start
    creates them), so the whole project builds, and the marts are there, empty."""
    run_dbt(settings, WAREHOUSE_BUILD, capture=True)

    counts = {
        mart: _query(settings, f"select count(*) from marts.{mart}")[0][0] for mart in HEALTH_MARTS
    }
    assert counts == dict.fromkeys(HEALTH_MARTS, 0)
    raw = {
        name
        for (name,) in _query(
            settings, "select table_name from information_schema.tables where table_schema='raw'"
        )
    }
    assert {"_pipeline_health", "_source_freshness", "_run_failures"} <= raw


def test_health_snapshots_freshness_and_failures_reach_the_ops_marts(
    settings, real_topics, monkeypatch
):
    config = load_config("sdmx", sdmx.SdmxConfig, overrides={"inputs": [str(FEEDS)]})
    with EventProducer(settings.kafka_bootstrap) as producer:
        sent = run_source(sdmx.SOURCE, config, producer, StateStore(settings.state_dir, "sdmx"))
        producer.send_raw(SDMX_TOPIC, b"not a cloudevent", key="health-test")
        producer.confirm()
    stats = Sink(settings, real_topics).run(until_caught_up=True)
    assert sent.sent > 0 and stats.dead_lettered >= 1

    # -- the three checks, as the DAG's tasks run them ----------------------------------------
    snapshot = health.pipeline_health(settings)
    first = health.source_freshness(settings)
    # the SDMX rows as if loaded ten days ago: past warn_after (7 days), before error_after (35)
    with connect(settings.warehouse_path) as con:
        con.execute(f"update raw.{SDMX_RAW} set ingested_at = ingested_at - interval 10 day")
    second = health.source_freshness(settings)
    # the failure callback reads its settings from the environment, as in an Airflow task
    monkeypatch.setenv("UF_WAREHOUSE_PATH", str(settings.warehouse_path))
    failing_task = SimpleNamespace(
        dag_id="urbanflow_source_sdmx", task_id="run", run_id="scheduled__health", try_number=2
    )
    health.on_failure(
        {
            "ti": failing_task,
            "exception": ValueError("feed unreachable"),
            "params": {"source": "sdmx"},
        }
    )
    health.build_health_marts(settings)

    # -- the snapshot, against the warehouse and the broker -------------------------------------
    raw_rows = _query(settings, f"select count(*) from raw.{SDMX_RAW}")[0][0]
    snapshot_rows = _query(
        settings,
        "select measure, subject, measured_value from marts.fct_pipeline_health where is_latest",
    )
    latest = {(measure, subject): value for measure, subject, value in snapshot_rows}
    assert latest[("broker_up", "broker")] == 1
    assert latest[("raw_rows", f"raw.{SDMX_RAW}")] == raw_rows > 0
    assert latest[("consumer_lag", SDMX_TOPIC)] == 0  # the sink caught up
    dlq = f"{SDMX_TOPIC}.dlq"
    assert latest[("dead_letters", dlq)] == _end_offsets(settings.kafka_bootstrap, dlq) >= 1
    assert snapshot["broker_up"] and snapshot["rows_recorded"] == len(latest)

    # -- freshness: dbt's verdict per source table, two checks ---------------------------------
    rows = _query(
        settings,
        """select source_table, freshness_status, max_loaded_age_hours, warn_after_hours,
                  error_after_hours, max_loaded_at is null, error_message, is_latest
           from marts.fct_source_freshness order by checked_at, source_table""",
    )
    checks = {}
    for table, status, age, warn, error, never, message, is_latest in rows:
        checks.setdefault(is_latest, {})[table] = (status, age, warn, error, never, message)
    before, after = checks[False], checks[True]
    assert set(before) == set(after) and len(after) == second["sources"] == first["sources"]
    sdmx_table = f"sdmx.{SDMX_RAW}"
    assert before[sdmx_table][0] == "pass" and before[sdmx_table][1] < 1
    status, age, warn, error, never, _ = after[sdmx_table]
    assert (status, warn, error, never) == ("warn", 7 * 24, 35 * 24, False)
    assert 240 <= age < 241  # ten days, measured seconds after the rows were aged
    # sink tables nothing was sent to (which ones depends on what else used the shared test
    # broker's topics): dbt calls them stale, with no load time
    empty = [
        table
        for table in after
        if not table.split(".", 1)[1].startswith("_")
        and _query(settings, f"select count(*) from raw.{table.split('.', 1)[1]}")[0][0] == 0
    ]
    for table in empty:
        assert after[table][0] == "error" and after[table][4] is True, table
    # the quality gate never ran here: its table does not exist, dbt cannot query it
    status, *_, message = after["quality._quality_results"]
    assert status == "runtime error" and "_quality_results" in message
    # the health DAG's own snapshots are checked too, and were just taken
    assert after["orchestration._pipeline_health"][0] == "pass"
    assert second["warn"] >= 1 and second["runtime error"] == 1
    assert sdmx_table in second["not_fresh"] and sdmx_table not in first["not_fresh"]

    # -- the failed run, as the DAG's failure callback recorded it ------------------------------
    failures = _query(
        settings,
        """select dag_id, task_id, run_id, attempt, pull_source, error_summary
           from marts.fct_run_failures""",
    )
    assert failures == [
        (
            "urbanflow_source_sdmx",
            "run",
            "scheduled__health",
            2,
            "sdmx",
            "ValueError('feed unreachable')",
        )
    ]
