"""The sink never idles silently without partitions (seen once: kafka-python looping on
"coordinator not ready" for 16 minutes under `--until-caught-up`).

Pure loop logic: a stand-in consumer that never gets an assignment; the warehouse is a real file.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest

from connectors.errors import UrbanFlowError
from connectors.kafka.topics import TopicSpec
from connectors.samples.synthetic import OBSERVATION_TYPE
from connectors.settings import Settings
from connectors.sink.service import Sink

TOPIC = TopicSpec("stats.test.observation.v1", 1, 3_600_000, (OBSERVATION_TYPE,), True, True, 1)


class NeverAssigned:
    """A consumer whose group never hands it a partition."""

    def __init__(self) -> None:
        self.polls = 0

    def poll(self, timeout_ms: int) -> dict:
        self.polls += 1
        return {}

    def assignment(self) -> set:
        return set()


@pytest.fixture
def sink(tmp_path) -> Sink:
    settings = dataclasses.replace(
        Settings.from_env(),
        var_dir=tmp_path,
        warehouse_path=tmp_path / "warehouse.duckdb",
        sink_group="test-group",
        sink_join_timeout_s=0.5,
    )
    built = Sink(settings, [TOPIC])
    built._consumer = NeverAssigned()
    return built


def test_a_catch_up_run_without_partitions_stops_with_one_clear_error(sink):
    with pytest.raises(UrbanFlowError) as error:
        sink._loop(until_caught_up=True, max_seconds=None)

    message = str(error.value)
    assert "consumer group test-group got no partition of stats.test.observation.v1" in message
    assert "UF_SINK_JOIN_TIMEOUT_S" in message
    assert sink.stats.loaded == 0


def test_a_service_without_partitions_warns_and_keeps_trying(sink, caplog):
    consumer = sink._consumer
    original = consumer.poll

    def poll_until_warned(timeout_ms: int) -> dict:
        if any("got no partition" in r.getMessage() for r in caplog.records):
            sink.stop()
        return original(timeout_ms)

    consumer.poll = poll_until_warned
    with caplog.at_level(logging.WARNING, logger="connectors.sink.service"):
        sink._loop(until_caught_up=False, max_seconds=None)

    warnings = [r.getMessage() for r in caplog.records if "got no partition" in r.getMessage()]
    assert warnings and warnings[0].endswith("still trying")
    assert consumer.polls > 1
