"""The sink against a real broker and DuckDB files: exactly once, dead letters, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import pytest
from sink_harness import (
    DYING_SINK,
    WAIT_S,
    bad_records,
    end_offsets,
    loaded_so_far,
    produce,
    raw_counts,
    read_topic,
    sink_process,
    wait_for,
    write_topics_file,
)

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import TopicSpec, apply_topics, load_topics
from connectors.samples.synthetic import observation_events
from connectors.settings import Settings
from connectors.sink import Sink
from connectors.sink.service import BATCH_LANDED_TOPIC

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def batch_landed_topic(kafka_bootstrap: str) -> None:
    """The topic the sink announces each batch on, as infra/kafka/topics.yml declares it: the
    broker creates no topic by itself, and these tests must not need another test to run first."""
    specs = load_topics(Settings.from_env().topics_file)
    apply_topics(kafka_bootstrap, [spec for spec in specs if spec.name == BATCH_LANDED_TOPIC])


def test_n_events_produced_are_loaded_as_exactly_n_rows(settings, observation_topic):
    produce(settings, observation_topic.name, 5_000)

    stats = Sink(settings, [observation_topic]).run(until_caught_up=True)

    assert stats.loaded == 5_000
    assert raw_counts(settings.warehouse_path, observation_topic) == (5_000, 5_000, 5_000)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        stored = dict(
            con.execute(
                "select kafka_partition, next_offset from raw._sink_offsets where kafka_topic = ?",
                [observation_topic.name],
            ).fetchall()
        )
    assert stored == end_offsets(settings, observation_topic.name, 3)


def test_large_events_are_loaded_in_batches_the_writers_memory_holds(settings, observation_topic):
    # 3,000 12 KB events: in one batch, DuckDB's 64 MB writer ran out of memory on them, and the
    # sink stopped with the same batch in front of it every time
    with EventProducer(settings.kafka_bootstrap) as producer:
        for key, value in observation_events(3_000, target_bytes=12_000):
            producer.send_raw(observation_topic.name, value, key=key)
        producer.confirm()

    stats = Sink(settings, [observation_topic]).run(until_caught_up=True)

    assert stats.loaded == 3_000
    assert stats.batches >= 2  # 36 MB of payloads, batches of 16 MiB (up to 32 while busy)
    assert raw_counts(settings.warehouse_path, observation_topic) == (3_000, 3_000, 3_000)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        detail = con.execute(
            f"select min(length(data->>'$.attributes.SOURCE_DETAIL')) "
            f"from raw.{observation_topic.raw_table}"
        ).fetchone()[0]
    assert detail > 10_000  # loaded whole


def test_second_sink_run_loads_nothing_already_loaded(settings, observation_topic):
    produce(settings, observation_topic.name, 1_000)
    Sink(settings, [observation_topic]).run(until_caught_up=True)
    produce(settings, observation_topic.name, 500, start=1_000)

    stats = Sink(settings, [observation_topic]).run(until_caught_up=True)

    assert stats.loaded == 500
    assert raw_counts(settings.warehouse_path, observation_topic) == (1_500, 1_500, 1_500)


def _malformed_records(valid_event: dict) -> dict[str, bytes]:
    wrong_type = {**valid_event, "data": {**valid_event["data"], "value": "forty"}}
    missing_field = {
        **valid_event,
        "data": {k: v for k, v in valid_event["data"].items() if k != "series_key"},
    }
    no_envelope = {k: v for k, v in valid_event.items() if k != "source"}
    unknown_type = {**valid_event, "type": "org.example.unknown.v1"}
    oversize = {**valid_event, "subject": "x" * 300_000}
    return {
        "json": b'{"specversion": "1.0", "id": ',
        "contract:value": orjson.dumps(wrong_type),
        "contract:series_key": orjson.dumps(missing_field),
        "contract:source": orjson.dumps(no_envelope),
        "unknown_type": orjson.dumps(unknown_type),
        "oversize": orjson.dumps(oversize),
    }


def test_malformed_records_go_to_the_dlq_with_reasons_and_valid_ones_still_load(
    settings, observation_topic
):
    valid = [v for _, v in observation_events(20, target_bytes=400)]
    bad = _malformed_records(orjson.loads(valid[0]))
    with EventProducer(settings.kafka_bootstrap) as producer:
        for value in valid[:10]:
            producer.send_raw(observation_topic.name, value, key="k")
        for value in bad.values():
            producer.send_raw(observation_topic.name, value, key="k")
        for value in valid[10:]:
            producer.send_raw(observation_topic.name, value, key="k")
        producer.confirm()

    stats = Sink(settings, [observation_topic]).run(until_caught_up=True)

    assert stats.loaded == 20 and stats.dead_lettered == len(bad)
    assert raw_counts(settings.warehouse_path, observation_topic) == (20, 20, 20)
    dead = read_topic(settings, observation_topic.dlq_name, 3)
    assert len(dead) == len(bad)
    classes = sorted(dict(r.headers)["uf.error.class"].decode() for r in dead)
    assert classes == sorted(name.split(":")[0] for name in bad)
    by_value = {r.value: dict(r.headers) for r in dead}
    for label, value in bad.items():
        headers = by_value[value]
        assert headers["uf.original.topic"].decode() == observation_topic.name
        assert int(headers["uf.original.offset"]) >= 10
        if ":" in label:
            assert label.split(":")[1] in headers["uf.error.reason"].decode()
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from raw._sink_dead_letters").fetchone()[0] == len(bad)


@pytest.mark.slow
def test_sink_killed_with_sigkill_mid_load_and_restarted_loads_each_event_once(
    settings, observation_topic, tmp_path
):
    total, bad = 60_000, bad_records(12)
    produce(settings, observation_topic.name, total // 2)
    with EventProducer(settings.kafka_bootstrap) as producer:
        for value in bad:
            producer.send_raw(observation_topic.name, value, key="bad")
        producer.confirm()
    produce(settings, observation_topic.name, total // 2, start=total // 2)
    topics_file = write_topics_file(tmp_path, observation_topic)
    for dies_in_batch in (1, 2, 3, 5):
        before = loaded_so_far(settings.warehouse_path)
        dying = sink_process(settings, topics_file, script=DYING_SINK, args=[str(dies_in_batch)])
        output, _ = dying.communicate(timeout=WAIT_S)
        assert dying.returncode == -signal.SIGKILL, output
        assert before <= loaded_so_far(settings.warehouse_path) < total + len(bad)
    # And one crash from outside, wherever the sink happens to be once it has committed a batch.
    before = loaded_so_far(settings.warehouse_path)
    killed = sink_process(settings, topics_file)
    wait_for(
        "the sink to commit a batch",
        lambda: loaded_so_far(settings.warehouse_path) > before or killed.poll() is not None,
    )
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=WAIT_S)

    final = sink_process(settings, topics_file)
    output, _ = final.communicate(timeout=WAIT_S)

    assert final.returncode == 0, output
    assert raw_counts(settings.warehouse_path, observation_topic) == (total, total, total)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        recorded = con.execute(
            "select count(*), count(distinct (kafka_partition, kafka_offset)) "
            "from raw._sink_dead_letters"
        ).fetchone()
    assert recorded == (len(bad), len(bad))
    # A crash after the dead letters went out may send one again, never lose one.
    dead = read_topic(settings, observation_topic.dlq_name, 3)
    assert {r.value for r in dead} == set(bad)


@pytest.mark.slow
def test_two_sink_instances_in_one_group_load_each_event_once(
    settings, observation_topic, tmp_path
):
    total = 30_000
    produce(settings, observation_topic.name, total)
    topics_file = write_topics_file(tmp_path, observation_topic)
    first = sink_process(settings, topics_file, until_caught_up=False, instance="sink-a")
    second = sink_process(settings, topics_file, until_caught_up=False, instance="sink-b")
    wait_for(
        f"two sink instances to load {total:,} events",
        lambda: loaded_so_far(settings.warehouse_path) >= total,
    )
    for proc in (first, second):
        proc.send_signal(signal.SIGTERM)
    outputs = [proc.communicate(timeout=WAIT_S)[0] for proc in (first, second)]

    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    assert raw_counts(settings.warehouse_path, observation_topic) == (total, total, total)


def test_long_running_sink_stops_cleanly_on_sigterm_with_everything_committed(
    settings, observation_topic, tmp_path
):
    produce(settings, observation_topic.name, 3_000)
    proc = sink_process(
        settings, write_topics_file(tmp_path, observation_topic), until_caught_up=False
    )
    wait_for(
        "the sink to load 3,000 events",
        lambda: loaded_so_far(settings.warehouse_path) == 3_000,
        proc=proc,
    )
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=WAIT_S)

    assert proc.returncode == 0, output
    assert "sink: loaded 3,000 events" in output
    assert raw_counts(settings.warehouse_path, observation_topic) == (3_000, 3_000, 3_000)


def test_a_missing_dead_letter_topic_stops_the_sink_at_start_up_naming_it(
    tmp_path, settings, kafka_bootstrap
):
    """Someone forgot `urbanflow topics apply` for a new topic: the data topic exists, its `.dlq`
    twin does not. The sink must say so in one line and exit 1, not wait on its first commit."""
    import uuid
    from dataclasses import replace

    from connectors.kafka.topics import admin_client

    spec = TopicSpec(
        name=f"test.{uuid.uuid4().hex[:10]}.observation.v1",
        partitions=1,
        retention_ms=3_600_000,
        event_types=("org.urbanflow.stats.observation.v1",),
        sink=True,
        dlq=True,
        dlq_retention_ms=3_600_000,
    )
    apply_topics(kafka_bootstrap, [replace(spec, dlq=False)])  # the data topic only
    try:
        produce(settings, spec.name, 50)
        env = {
            **os.environ,
            "UF_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "UF_VAR_DIR": str(tmp_path),
            "UF_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
            "UF_TOPICS_FILE": str(write_topics_file(tmp_path, spec)),
        }
        done = subprocess.run(
            [str(Path(sys.executable).with_name("urbanflow")), "sink", "run", "--until-caught-up"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 1
        assert "Traceback" not in done.stderr + done.stdout
        (line,) = [text for text in done.stderr.splitlines() if text.strip()]
        assert f"{spec.name}.dlq" in line and "urbanflow topics apply" in line
    finally:
        admin = admin_client(kafka_bootstrap)
        try:
            admin.delete_topics([spec.name])
        finally:
            admin.close()
