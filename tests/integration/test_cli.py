"""The commands an engineer types: kafkactl, `urbanflow topics apply`, `urbanflow status`."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("urbanflow"))


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, env={**os.environ, **env}, capture_output=True, text=True)


def test_kafkactl_refuses_to_start_on_a_port_in_use_and_says_what_to_set(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(
            [str(REPO / "infra" / "kafka" / "kafkactl"), "start"],
            UF_KAFKA_PORT=str(port),
            UF_VAR_DIR=str(tmp_path),
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "UF_KAFKA_PORT" in result.stderr


def test_topics_apply_is_idempotent(kafka_bootstrap):
    run([CLI, "topics", "apply"], UF_KAFKA_BOOTSTRAP=kafka_bootstrap)
    second = run([CLI, "topics", "apply"], UF_KAFKA_BOOTSTRAP=kafka_bootstrap)
    assert second.returncode == 0, second.stderr
    declared = re.search(r"topics: (\d+) declared, 0 changed", second.stdout)
    assert declared, second.stdout
    assert second.stdout.count(" unchanged\n") == int(declared.group(1))
    assert "stats.sdmx.observation.v1.dlq" in second.stdout


def test_status_shows_broker_topics_lag_and_warehouse(kafka_bootstrap, tmp_path):
    result = run(
        [CLI, "status"],
        UF_KAFKA_BOOTSTRAP=kafka_bootstrap,
        UF_WAREHOUSE_PATH=str(tmp_path / "warehouse.duckdb"),
        UF_SINK_GROUP="a-group-that-never-committed",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broker: up" in result.stdout
    assert "stats.sdmx.observation.v1" in result.stdout
    assert "not created yet" in result.stdout


def test_status_exits_non_zero_when_the_broker_is_down(tmp_path):
    result = run(
        [CLI, "status"],
        UF_KAFKA_BOOTSTRAP="127.0.0.1:1",
        UF_WAREHOUSE_PATH=str(tmp_path / "warehouse.duckdb"),
    )
    assert result.returncode == 1
    assert "broker: down" in result.stdout


def test_topics_apply_sets_min_insync_replicas_from_settings_and_keeps_retention(
    kafka_bootstrap, tmp_path
):
    """UF_TOPIC_MIN_INSYNC_REPLICAS is applied to existing topics (retention untouched: Kafka's
    AlterConfigs replaces a topic's whole config); a replica count below
    UF_TOPIC_REPLICATION_FACTOR is reported, since Kafka cannot raise it in place."""
    import uuid

    import yaml
    from kafka.admin import ConfigResource, ConfigResourceType

    from connectors.kafka.topics import admin_client

    name = f"test.{uuid.uuid4().hex[:10]}.replicas.v1"
    topics = tmp_path / "topics.yml"
    topics.write_text(
        yaml.safe_dump(
            {
                "topics": [
                    {
                        "name": name,
                        "partitions": 1,
                        "retention_ms": 3_600_000,
                        "dlq": False,
                        "event_types": ["org.urbanflow.stats.observation.v1"],
                    }
                ]
            }
        )
    )
    env = {"UF_KAFKA_BOOTSTRAP": kafka_bootstrap, "UF_TOPICS_FILE": str(topics)}
    try:
        assert run([CLI, "topics", "apply"], **env).returncode == 0
        again = run(
            [CLI, "topics", "apply"],
            **env,
            UF_TOPIC_MIN_INSYNC_REPLICAS="2",
            UF_TOPIC_REPLICATION_FACTOR="3",
        )
        assert again.returncode == 0, again.stderr
        assert "min.insync.replicas 1 -> 2" in again.stdout
        assert "has 1 replica(s), 3 wanted" in again.stdout
        admin = admin_client(kafka_bootstrap)
        try:
            configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        finally:
            admin.close()
        values = {k: v["value"] for k, v in configs["topic"][name].items()}
        assert values["min.insync.replicas"] == "2"
        assert values["retention.ms"] == "3600000"
    finally:
        admin = admin_client(kafka_bootstrap)
        try:
            admin.delete_topics([name])
        finally:
            admin.close()
