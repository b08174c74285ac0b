"""kafka-python 3.0.12 can abandon a finished group join (a metadata-triggered rejoin whose poll
timed out before the SyncGroup answer): `resume_stalled_join` asks for the rejoin it lost, and
leaves every other state alone. Stand-ins for the coordinator's state; the real race is shown by
the sink suites, which start hundreds of fresh groups."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from connectors.kafka.clients import resume_stalled_join


@dataclass
class Join:
    is_done: bool


@dataclass
class Coordinator:
    _join_task: Join | None
    rejoin: bool = False
    requested: list[bool] = field(default_factory=list)

    def need_rejoin(self) -> bool:
        return self.rejoin

    def request_rejoin(self) -> None:
        self.requested.append(True)
        self.rejoin = True


@dataclass
class Consumer:
    _coordinator: Coordinator | None


def test_a_finished_join_nobody_will_apply_is_rejoined_once():
    coordinator = Coordinator(Join(is_done=True))
    consumer = Consumer(coordinator)

    assert resume_stalled_join(consumer) is True
    assert coordinator.requested == [True]
    assert resume_stalled_join(consumer) is False  # the next poll now runs the join again
    assert coordinator.requested == [True]


@pytest.mark.parametrize(
    "coordinator",
    [
        None,  # no group: manually assigned partitions
        Coordinator(None),  # joined, nothing pending
        Coordinator(Join(is_done=False)),  # the broker has not answered yet
        Coordinator(Join(is_done=True), rejoin=True),  # the next poll applies it
    ],
)
def test_every_other_state_is_left_to_kafka_python(coordinator):
    assert resume_stalled_join(Consumer(coordinator)) is False
    assert coordinator is None or coordinator.requested == []
