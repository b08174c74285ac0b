"""`read_to_high_watermark` lets a catch-up sink stop without waiting a poll out at the end of
its partitions. kafka-python's own partition states stand in for a consumer's; the sink suites
show the whole run (every event loaded, then the run ends)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import pytest
from kafka.consumer.subscription_state import TopicPartitionState
from kafka.structs import TopicPartition

from connectors.kafka.clients import read_to_high_watermark
from connectors.sink.service import SINK_SWITCH_INTERVAL_S, tuned_for_the_loop


@dataclass
class Subscription:
    assignment: dict[TopicPartition, TopicPartitionState] = field(default_factory=dict)


@dataclass
class Consumer:
    _subscription: Subscription


def state(position: int | None, highwater: int | None) -> TopicPartitionState:
    partition = TopicPartitionState()
    if position is not None:
        partition.seek(position)
    partition.highwater = highwater
    return partition


def consumer(*states: TopicPartitionState) -> Consumer:
    tps = [TopicPartition("t", p) for p in range(len(states))]
    return Consumer(Subscription(dict(zip(tps, states, strict=True))))


def test_every_partition_read_to_its_high_watermark_is_the_end():
    assert read_to_high_watermark(consumer(state(10, 10), state(0, 0), state(7, 7))) is True


@pytest.mark.parametrize(
    "states",
    [
        (),  # nothing assigned yet: not caught up, whatever the topic holds
        (state(10, 10), state(3, 7)),  # one partition has records to go
        (state(10, None),),  # not fetched yet: the high watermark is unknown
        (state(None, 10),),  # no position yet (awaiting its reset)
    ],
)
def test_anything_else_is_not(states):
    assert read_to_high_watermark(consumer(*states)) is False


def test_a_consumer_without_partition_states_is_never_at_the_end():
    assert read_to_high_watermark(object()) is False  # type: ignore[arg-type]


def test_the_switch_interval_is_restored_after_the_run():
    before = sys.getswitchinterval()
    with tuned_for_the_loop():
        assert sys.getswitchinterval() == pytest.approx(SINK_SWITCH_INTERVAL_S)
    assert sys.getswitchinterval() == before
