"""`urbanflow dlq` on a real broker: list dead letters by reason, show one, replay after a fix."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import pytest
import yaml

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import TopicSpec, load_topics
from connectors.samples.synthetic import observation_events
from connectors.settings import Settings
from connectors.sink import Sink

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("urbanflow"))
V1 = "org.urbanflow.stats.observation.v1"
V2 = "org.urbanflow.stats.observation.v2"
NOT_DECLARED = "is not declared for topic"
COORDINATES = re.compile(r"(\S+\.dlq):(\d+):(\d+)")


@dataclasses.dataclass
class Scene:
    settings: Settings
    spec: TopicSpec
    topics_file: Path  # the topic as first declared: v1 only
    fixed_topics_file: Path  # the fix: v2 declared too

    def cli(self, *args: str, topics_file: Path | None = None) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "UF_KAFKA_BOOTSTRAP": self.settings.kafka_bootstrap,
            "UF_TOPICS_FILE": str(topics_file or self.topics_file),
            "UF_STATE_DIR": str(self.settings.state_dir),
            "UF_WAREHOUSE_PATH": str(self.settings.warehouse_path),
            "COLUMNS": "400",  # one table row per line
        }
        return subprocess.run([CLI, "dlq", *args], env=env, capture_output=True, text=True)

    def sink(self, topics_file: Path) -> None:
        Sink(self.settings, load_topics(topics_file)).run(until_caught_up=True)

    def rows(self) -> tuple[int, int]:
        """(rows, distinct (source, event_id)) in the topic's raw table."""
        with duckdb.connect(str(self.settings.warehouse_path), read_only=True) as con:
            table = f"raw.{self.spec.raw_table}"
            query = f"select count(*), count(distinct (source, event_id)) from {table}"
            return con.execute(query).fetchone()

    def event_ids(self) -> list[str]:
        with duckdb.connect(str(self.settings.warehouse_path), read_only=True) as con:
            rows = con.execute(f"select event_id from raw.{self.spec.raw_table}").fetchall()
        return sorted(r[0] for r in rows)


def _topics_file(path: Path, spec: TopicSpec, event_types: list[str]) -> Path:
    entry = {
        "name": spec.name,
        "partitions": spec.partitions,
        "retention_ms": spec.retention_ms,
        "dlq_retention_ms": spec.dlq_retention_ms,
        "event_types": event_types,
    }
    path.write_text(yaml.safe_dump({"topics": [entry]}), encoding="utf-8")
    return path


def _event(n: int, **changes: object) -> tuple[str, bytes]:
    key, value = next(iter(observation_events(1, start=n, target_bytes=400)))
    event = orjson.loads(value)
    data = changes.pop("data", {})
    return key, orjson.dumps({**event, **changes, "data": {**event["data"], **data}})


@pytest.fixture
def scene(settings, observation_topic, tmp_path) -> Scene:
    """20 good v1 events; 5 good v2 events and 1 bad one, refused because the topic does not
    declare v2 yet; 2 v1 events that break the contract. The sink has run once."""
    events = [
        *observation_events(20, target_bytes=400),
        *[_event(100 + n, type=V2) for n in range(5)],
        _event(105, type=V2, data={"value": "forty"}),
        *[_event(200 + n, data={"value": "forty"}) for n in range(2)],
    ]
    with EventProducer(settings.kafka_bootstrap) as producer:
        for key, value in events:
            producer.send_raw(observation_topic.name, value, key=key)
        producer.confirm()
    scene = Scene(
        settings,
        observation_topic,
        _topics_file(tmp_path / "topics.yml", observation_topic, [V1]),
        _topics_file(tmp_path / "topics-fixed.yml", observation_topic, [V1, V2]),
    )
    scene.sink(scene.topics_file)
    assert scene.rows() == (20, 20)
    return scene


def _table_rows(stdout: str, needle: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in stdout.splitlines()
        if needle in line
    ]


def test_list_counts_dead_letters_by_topic_source_and_reason(scene):
    result = scene.cli("list", "--topic", scene.spec.name)

    assert result.returncode == 0, result.stderr
    [undeclared] = _table_rows(result.stdout, NOT_DECLARED)
    [contract] = _table_rows(result.stdout, f"(contract {V1})")
    assert undeclared[:2] == contract[:2] == [scene.spec.name, "urn:nso:synth"]
    assert undeclared[3] == "6" and contract[3] == "2"
    assert "$.data.value must be number or null" in contract[2]
    assert "dlq: 8 dead letters in 2 groups" in result.stdout
    only_contract = scene.cli("list", "--reason-contains", "MUST BE NUMBER")
    assert "dlq: 2 dead letters in 1 group " in only_contract.stdout, only_contract.stderr
    other_source = scene.cli("list", "--source", "urn:nso:elsewhere")
    assert "dlq: 0 dead letters in 0 groups" in other_source.stdout, other_source.stderr


def test_show_prints_the_original_payload_headers_and_coordinates(scene):
    listed = scene.cli("list", "--reason-contains", "must be number")
    topic, partition, offset = COORDINATES.search(listed.stdout).groups()

    result = scene.cli("show", topic, partition, offset)

    assert result.returncode == 0, result.stderr
    assert f"dead letter {topic}:{partition}:{offset}" in result.stdout
    assert re.search(rf"original: {re.escape(scene.spec.name)}:\d+:\d+", result.stdout)
    assert "uf.error.class: contract" in result.stdout
    assert f"uf.contract: {V1}" in result.stdout
    assert '\n  "data": {' in result.stdout  # pretty-printed
    assert '"value": "forty"' in result.stdout


def test_show_of_a_wrong_coordinate_is_one_clear_line_and_exit_1(scene):
    result = scene.cli("show", scene.spec.dlq_name, "0", "99999")

    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert f"no dead letter at {scene.spec.dlq_name} partition 0 offset 99999" in result.stderr
    missing = scene.cli("show", "no.such.topic", "0", "0")
    assert missing.returncode == 1
    assert "no dead-letter topic no.such.topic.dlq" in missing.stderr


def test_replay_after_the_fix_lands_each_event_once_and_what_still_fails_comes_back(scene):
    fixed = scene.fixed_topics_file
    dry = scene.cli("replay", "--reason-contains", NOT_DECLARED, "--dry-run", topics_file=fixed)
    assert "dlq: would replay 6 dead letters" in dry.stdout, dry.stderr
    scene.sink(fixed)
    assert scene.rows() == (20, 20)  # a dry run sends nothing

    replayed = scene.cli("replay", "--reason-contains", NOT_DECLARED, topics_file=fixed)
    assert replayed.returncode == 0, replayed.stderr
    assert f"dlq: replayed 6 dead letters (6 to {scene.spec.name})" in replayed.stdout
    scene.sink(fixed)

    # The five valid v2 events landed exactly once, under the ids they were sent with.
    assert scene.rows() == (25, 25)
    assert [i for i in scene.event_ids() if re.fullmatch(r"synth-1\d\d", i)] == [
        f"synth-10{n}" for n in range(5)
    ]
    # The invalid one is a dead letter again, with the reason of the contract it now meets.
    listed = scene.cli("list", topics_file=fixed)
    assert _table_rows(listed.stdout, NOT_DECLARED) == []
    [again] = _table_rows(listed.stdout, f"(contract {V2})")
    assert again[3] == "1"
    assert "dlq: 3 dead letters in 2 groups (6 replayed or repeated, not shown)" in listed.stdout
    topic, partition, offset = COORDINATES.search(again[-1]).groups()
    shown = scene.cli("show", topic, partition, offset, topics_file=fixed)
    assert '"id": "synth-105"' in shown.stdout and "uf.error.class: contract" in shown.stdout

    # Replaying the same selection again sends nothing: no row, no new dead letter.
    second = scene.cli("replay", "--reason-contains", NOT_DECLARED, topics_file=fixed)
    assert "dlq: replayed 0 dead letters; 6 already replayed, skipped" in second.stdout
    scene.sink(fixed)
    assert scene.rows() == (25, 25)
    assert "dlq: 3 dead letters" in scene.cli("list", topics_file=fixed).stdout
