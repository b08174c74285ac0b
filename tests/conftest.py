"""Shared fixtures. Integration tests use the broker that tests/run.sh started (UF_KAFKA_BOOTSTRAP),
random topic names and consumer groups, and DuckDB files under pytest's tmp_path."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import secrets_registry
from demo_harness import DemoRun, demo_env, run_demo

from connectors.kafka.topics import TopicSpec, apply_topics, load_topics
from connectors.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
OBSERVATION_TYPE = "org.urbanflow.stats.observation.v1"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = os.environ.get("UF_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000).close()
    except KafkaError:
        pytest.fail(f"integration tests need a broker at {bootstrap}: run them via `make test`")
    # Every sink run announces its batches on the platform's own ops topics: create them once, so
    # each test file also passes alone (the broker does not create topics on demand).
    ops = [s for s in load_topics(Settings.from_env().topics_file) if s.name.startswith("ops.")]
    apply_topics(bootstrap, ops)
    return bootstrap


@pytest.fixture(scope="session")
def sample_world_demo(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> DemoRun:
    """The sample world published once per session: test_demo checks its summary and re-runs it,
    Superset serves a copy of its serving.duckdb (one pipeline run instead of one per suite)."""
    env = demo_env(tmp_path_factory.mktemp("sample-world-demo"), kafka_bootstrap)
    return DemoRun(env, run_demo(env))


@pytest.fixture
def settings(tmp_path: Path, kafka_bootstrap: str) -> Settings:
    """Settings isolated to this test: own warehouse, state dir and consumer group."""
    base = Settings.from_env()
    return dataclasses.replace(
        base,
        kafka_bootstrap=kafka_bootstrap,
        var_dir=tmp_path,
        warehouse_path=tmp_path / "warehouse.duckdb",
        state_dir=tmp_path / "state",
        sink_group=f"test-sink-{uuid.uuid4().hex[:8]}",
        sink_batch_max_records=5_000,
        sink_batch_max_ms=500,
    )


@pytest.fixture
def observation_topic(kafka_bootstrap: str) -> Iterator[TopicSpec]:
    """A fresh observation topic (3 partitions) with its DLQ twin, deleted afterwards."""
    spec = TopicSpec(
        name=f"test.{uuid.uuid4().hex[:10]}.observation.v1",
        partitions=3,
        retention_ms=3_600_000,
        event_types=(OBSERVATION_TYPE,),
        sink=True,
        dlq=True,
        dlq_retention_ms=3_600_000,
    )
    apply_topics(kafka_bootstrap, [spec])
    yield spec
    from connectors.kafka.topics import admin_client

    admin = admin_client(kafka_bootstrap)
    try:
        admin.delete_topics([spec.name, spec.dlq_name])
    finally:
        admin.close()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep each test phase's captured output and error text, for the secret scan that runs last
    (tests/reliability/test_secret_scan.py): a secret in an assertion message is a leak too."""
    for title, text in report.sections:
        if title.endswith(f" {report.when}"):  # a later phase's report repeats earlier sections
            secrets_registry.capture(f"{report.nodeid} ({title})", text)
    if report.longrepr is not None:
        secrets_registry.capture(f"{report.nodeid} ({report.when}: error)", report.longreprtext)
