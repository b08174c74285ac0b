"""The msgspec fast path must never accept what the JSON Schema contract refuses."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.contracts import get_contract, registry
from connectors.contracts.fast import NotCompilable, compile_event_decoder, to_type
from connectors.errors import ContractError
from connectors.samples.synthetic import observation_events

REPO = Path(__file__).resolve().parents[2]

OBSERVATION = "org.urbanflow.stats.observation.v1"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["2021", "2021-Q3", "1.0", "urn:x", "A:B(1.0)", "2026-01-01T00:00:00Z"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    return found


def _mutate(event: dict, path: tuple, action: str, value: Any, new_key: str) -> dict:
    mutated = copy.deepcopy(event)
    if not path:
        return mutated
    parent = mutated
    for key in path[:-1]:
        parent = parent[key]
    if action == "replace":
        parent[path[-1]] = value
    elif action == "delete":
        del parent[path[-1]]
    elif isinstance(parent[path[-1]], dict):
        parent[path[-1]][new_key] = value
    return mutated


def test_every_current_contract_compiles_to_a_fast_decoder():
    for event_type, contract in registry().items():
        assert compile_event_decoder(contract.event_schema, "E") is not None, event_type


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    st.sampled_from(["replace", "delete", "add"]),
    json_values,
    st.text(max_size=8),
)
def test_fast_decoder_accepts_only_events_the_schema_accepts(data, action, value, new_key):
    contract = get_contract(OBSERVATION)
    decoder = compile_event_decoder(contract.event_schema, "E")
    event = orjson.loads(next(observation_events(1, target_bytes=300))[1])
    path = data.draw(st.sampled_from(_paths(event)))
    mutated = _mutate(event, path, action, value, new_key)
    try:
        decoder.decode(orjson.dumps(mutated))
    except (msgspec.ValidationError, msgspec.DecodeError):
        return  # refusing is always safe: the slow path has the final word
    try:
        contract.validate_event(mutated)
    except ContractError as exc:
        pytest.fail(f"fast path accepted an invalid event ({exc}): {mutated}")


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "oneOf": [{"required": ["a"]}]},
        {"type": "string", "format": "email"},
        {"$ref": "#/defs/x"},
        {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {}},
    ],
)
def test_keywords_outside_the_supported_subset_are_not_compiled(schema):
    with pytest.raises(NotCompilable):
        to_type(schema)


def _v2_event() -> dict:
    """A synthetic observation event promoted to v2, with what only v2 carries."""
    event = orjson.loads(next(observation_events(1, target_bytes=300))[1])
    event["type"] = "org.urbanflow.stats.observation.v2"
    event["data"].update(
        action="delete",
        annotations=[{"id": "NOTE", "title": "Provisional", "text": "t"}],
        measures={"OBS_VALUE": 1.5, "CONF_LEVEL": "C95"},
    )
    return event


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    st.sampled_from(["replace", "delete", "add"]),
    json_values
    | st.sampled_from(["upsert", "delete", "purge", [{"id": 1}], [{"x": "y"}], [{}], {"M": []}]),
    st.text(max_size=8),
)
def test_fast_decoder_of_observation_v2_accepts_only_events_the_schema_accepts(
    data, action, value, new_key
):
    contract = get_contract("org.urbanflow.stats.observation.v2")
    decoder = compile_event_decoder(contract.event_schema, "E")
    event = _v2_event()
    contract.validate_event(event)
    mutated = _mutate(event, data.draw(st.sampled_from(_paths(event))), action, value, new_key)
    try:
        decoder.decode(orjson.dumps(mutated))
    except (msgspec.ValidationError, msgspec.DecodeError):
        return
    try:
        contract.validate_event(mutated)
    except ContractError as exc:
        pytest.fail(f"fast path accepted an invalid v2 event ({exc}): {mutated}")


def test_a_leap_second_is_refused_by_both_paths_naming_time():
    """RFC 3339 allows second 60, which no warehouse timestamp holds: a batch with one such event
    could never commit, so the contract refuses it and the sink dead-letters it alone."""
    event = orjson.loads(next(iter(observation_events(1)))[1])
    event["time"] = "2016-12-31T23:59:60Z"
    contract = get_contract(OBSERVATION)
    with pytest.raises(ContractError, match=r"\$\.time"):
        contract.validate_event(event)
    with pytest.raises(msgspec.ValidationError):
        compile_event_decoder(contract.event_schema, "E").decode(orjson.dumps(event))


def test_a_leap_second_in_a_data_date_time_is_refused_by_both_paths_naming_the_field():
    """The same holds for every date-time of a contract: dbt casts them to timestamptz, and one
    leap second would stop the staging model, not that event alone."""
    contract = get_contract("org.urbanflow.utility.meter_reading.v1")
    event = {
        "specversion": "1.0",
        "id": "m-1",
        "source": "urn:utility:test",
        "type": contract.event_type,
        "time": "2026-01-01T00:00:00Z",
        "data": {
            "meter_id": "KENBO-W-000123",
            "city_code": "KENBO",
            "service": "water",
            "kind": "water_kiosk",
            "reading_time": "2016-12-31T23:59:60Z",
            "value": 1.0,
            "unit": "m3",
            "cumulative": False,
            "sequence": 1,
        },
    }
    with pytest.raises(ContractError, match=r"reading_time"):
        contract.validate_event(event)
    with pytest.raises(msgspec.ValidationError):
        compile_event_decoder(contract.event_schema, "E").decode(orjson.dumps(event))
    event["data"]["reading_time"] = "2016-12-31t23:59:59z"  # lowercase is RFC 3339 too
    contract.validate_event(event)
    compile_event_decoder(contract.event_schema, "E").decode(orjson.dumps(event))


@pytest.mark.parametrize(
    ("written", "valid"),
    [("2024-02-29", True), ("2023-02-29", False), ("2024-04-31", False), ("2024-13-01", False)],
)
def test_a_date_must_be_a_day_that_exists_on_both_paths(written, valid):
    """Dates are a pattern in the contracts (draft 4 has no `date` format), and dbt casts them
    to `date`: one impossible day would stop the staging model, not that event alone."""
    from connectors.sources.iati import activity_records, read_inputs

    activity = read_inputs([str(REPO / "sample_data" / "iati")])[0].activities[0]
    record = next(r for r in activity_records(activity) if r.stream.name == "transactions")
    contract = get_contract(record.stream.event_type)
    event = {
        "specversion": "1.0",
        "id": record.event_id,
        "source": record.source,
        "type": contract.event_type,
        "time": "2026-01-01T00:00:00Z",
        "data": {**record.data, "date": written},
    }
    decoder = compile_event_decoder(contract.event_schema, "E")
    if valid:
        contract.validate_event(event)
        decoder.decode(orjson.dumps(event))
        return
    with pytest.raises(ContractError, match=r"\$\.data\.date"):
        contract.validate_event(event)
    with pytest.raises(msgspec.ValidationError):
        decoder.decode(orjson.dumps(event))


def test_an_integer_past_bigint_is_refused_even_written_as_an_integral_number():
    """JSON Schema's "integer" takes 1e308; the warehouse's BIGINT cannot, and one such event
    would stop the dbt model that casts it (what the Kafka fuzz test found on GDACS ids)."""
    schema = get_contract("org.urbanflow.hazard.event.v1").event_schema
    bound = schema["properties"]["data"]["properties"]["hazard_event_id"]
    assert bound["maximum"] == 2**63 - 1 and bound["minimum"] == 1
