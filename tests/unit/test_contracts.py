"""Contracts: every file compiles, versions stay backward compatible, validation names the field."""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest

from connectors.contracts import backward_incompatibilities, get_contract, registry
from connectors.errors import ContractError
from connectors.events import make_event

OBSERVATION = "org.urbanflow.stats.observation.v1"
VALID_DATA = {
    "dataflow": "KNBS:DF_CITY_SDG(1.0)",
    "series_key": "A.KEN.KENBO.EN_LND_SLUM._T",
    "dimensions": {"FREQ": "A", "REF_AREA": "KEN", "CITY": "KENBO"},
    "attributes": {"UNIT_MEASURE": "PT", "UNIT_MULT": "0"},
    "time_period": "2021",
    "value": 46.5,
}


def test_every_contract_file_compiles_and_is_named_by_its_event_type():
    contracts = registry()
    assert OBSERVATION in contracts
    for event_type, contract in contracts.items():
        assert contract.path.name == f"{event_type}.json"
        assert contract.dataschema.endswith(f"{event_type}.json")


def test_each_new_contract_version_is_backward_compatible_with_the_previous_one():
    families: dict[str, dict[int, dict]] = defaultdict(dict)
    for contract in registry().values():
        families[contract.family][contract.version] = contract.schema
    for family, versions in families.items():
        ordered = sorted(versions)
        assert ordered == list(range(1, len(ordered) + 1)), f"{family}: versions must be 1..N"
        for old, new in itertools.pairwise(ordered):
            problems = list(backward_incompatibilities(versions[old], versions[new]))
            assert problems == [], f"{family} v{new} breaks v{old}: {problems}"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["required"].append("labels"), "new required property 'labels'"),
        (lambda s: s["properties"]["value"].update(type="number"), "$.value: type narrowed"),
        (lambda s: s["properties"].pop("labels"), "$.labels: property removed"),
        (lambda s: s["properties"]["series_key"].update(maxLength=10), "$.series_key: maxLength"),
        (lambda s: s["properties"]["time_period"].update(pattern="^[0-9]{4}$"), "pattern added"),
    ],
)
def test_backward_check_reports_each_kind_of_narrowing(change, expected):
    import copy

    old = get_contract(OBSERVATION).schema
    new = copy.deepcopy(old)
    change(new)
    assert any(expected in problem for problem in backward_incompatibilities(old, new))


def test_adding_an_optional_property_is_backward_compatible():
    import copy

    old = get_contract(OBSERVATION).schema
    new = copy.deepcopy(old)
    new["properties"]["comment"] = {"type": "string"}
    assert list(backward_incompatibilities(old, new)) == []


def test_make_event_builds_a_valid_cloudevent_with_dataschema():
    event = make_event(OBSERVATION, "urn:nso:knbs", VALID_DATA, event_id="e1", subject="KENBO")
    assert event["specversion"] == "1.0"
    assert event["dataschema"].endswith(f"{OBSERVATION}.json")
    assert event["time"].endswith("Z")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**VALID_DATA, "value": "46.5"}, "value"),
        ({k: v for k, v in VALID_DATA.items() if k != "dimensions"}, "dimensions"),
        ({**VALID_DATA, "time_period": "21"}, "time_period"),
        ({**VALID_DATA, "dataflow": "no agency"}, "dataflow"),
        ({**VALID_DATA, "unexpected": 1}, "$.data must not contain {'unexpected'}"),
    ],
)
def test_make_event_refuses_data_that_breaks_the_contract_naming_the_field(data, field):
    with pytest.raises(ContractError) as info:
        make_event(OBSERVATION, "urn:nso:knbs", data, event_id="e1")
    assert field in str(info.value)
    assert OBSERVATION in str(info.value)


def test_envelope_source_must_be_a_urn():
    with pytest.raises(ContractError, match="source"):
        make_event(OBSERVATION, "knbs", VALID_DATA, event_id="e1")


def test_unknown_event_type_lists_the_known_ones():
    with pytest.raises(ContractError, match=OBSERVATION):
        get_contract("org.example.nothing.v1")
