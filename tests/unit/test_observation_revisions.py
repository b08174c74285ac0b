"""Revisions of observation sources (World Bank, UN SDG, SDMX) keep every publication distinct.

Staging keeps the first copy of each event id, so a value revised and then revised back must not
reuse its first id, or a full refresh would keep the first copy and lose the last word.
"""

from __future__ import annotations

from connectors.sdk import Checkpoint, Record
from connectors.sources.observations import (
    Observation,
    incremental_observations,
    observation_stream,
)

STREAM = observation_stream("stats.worldbank.observation.v1", "series key")


def _observation(value: float) -> Observation:
    return Observation(
        dataflow="WB:WDI(1.0)",
        series_key="KEN.SP.URB.TOTL",
        dimensions={"REF_AREA": "KEN"},
        attributes={},
        labels={},
        time_period="2023",
        value=value,
        line=None,
    )


def _publish(value: float, state: dict) -> tuple[list[Record], dict]:
    items = list(incremental_observations(STREAM, [_observation(value)], state, lambda _: "urn:x"))
    records = [item for item in items if isinstance(item, Record)]
    (checkpoint,) = [item for item in items if isinstance(item, Checkpoint)]
    return records, checkpoint.state


def test_a_value_revised_and_revised_back_is_three_events_with_three_ids():
    first, state = _publish(1.0, {})
    revised, state = _publish(2.0, state)
    back, state = _publish(1.0, state)
    ids = [r.event_id for r in (*first, *revised, *back)]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert state["published"] == {"WB:WDI(1.0)|KEN.SP.URB.TOTL|2023": 3}


def test_an_unchanged_value_sends_nothing_and_a_rerun_from_the_same_state_repeats_the_ids():
    _, state = _publish(1.0, {})
    unchanged, same = _publish(1.0, state)
    assert unchanged == [] and same == state
    revised, _ = _publish(2.0, state)
    again, _ = _publish(2.0, state)  # a crash before the checkpoint: same state, same ids
    assert [r.event_id for r in revised] == [r.event_id for r in again]
    assert "published" not in state  # one publication each: nothing extra kept
