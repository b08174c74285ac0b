"""Contracts: every file compiles, versions stay backward compatible, validation names the field."""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from connectors.contracts import (
    CALENDAR_DATE,
    Contract,
    backward_incompatibilities,
    get_contract,
    registry,
)
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


def version_problems(contracts: dict[str, Contract]) -> dict[str, list[str]]:
    """Per family: versions not numbered 1..N, and each version's breaks of the previous one."""
    families: dict[str, dict[int, dict]] = defaultdict(dict)
    for contract in contracts.values():
        families[contract.family][contract.version] = contract.schema
    problems: dict[str, list[str]] = {}
    for family, versions in families.items():
        ordered = sorted(versions)
        found = [] if ordered == list(range(1, len(ordered) + 1)) else [f"versions {ordered}"]
        for old, new in itertools.pairwise(ordered):
            found += [
                f"v{new} breaks v{old}: {problem}"
                for problem in backward_incompatibilities(versions[old], versions[new])
            ]
        if found:
            problems[family] = found
    return problems


def write_contract(folder: Path, event_type: str, schema: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{event_type}.json").write_text(json.dumps(schema), encoding="utf-8")


def test_each_contract_family_is_numbered_from_v1_and_every_version_keeps_the_previous_valid():
    assert version_problems(registry()) == {}


def test_a_compatible_v2_passes_and_a_narrowing_v2_or_a_gap_is_reported_per_family(tmp_path):
    v1 = copy.deepcopy(get_contract(OBSERVATION).schema)
    compatible = copy.deepcopy(v1)
    compatible["properties"]["comment"] = {"type": "string"}
    narrowing = copy.deepcopy(v1)
    narrowing["required"].append("labels")
    family = "org.example.reading"
    write_contract(tmp_path / "good", f"{family}.v1", v1)
    write_contract(tmp_path / "good", f"{family}.v2", compatible)
    write_contract(tmp_path / "bad", f"{family}.v1", v1)
    write_contract(tmp_path / "bad", f"{family}.v2", narrowing)
    write_contract(tmp_path / "gap", f"{family}.v1", v1)
    write_contract(tmp_path / "gap", f"{family}.v3", compatible)

    assert version_problems(registry(tmp_path / "good")) == {}
    assert version_problems(registry(tmp_path / "bad")) == {
        family: ["v2 breaks v1: $: new required property 'labels'"]
    }
    assert version_problems(registry(tmp_path / "gap")) == {family: ["versions [1, 3]"]}


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
    old = get_contract(OBSERVATION).schema
    new = copy.deepcopy(old)
    change(new)
    assert any(expected in problem for problem in backward_incompatibilities(old, new))


def test_adding_an_optional_property_is_backward_compatible():
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


OBSERVATION_V2 = "org.urbanflow.stats.observation.v2"


def test_observation_v2_is_a_real_second_version_that_keeps_every_v1_payload_valid():
    v1, v2 = get_contract(OBSERVATION), get_contract(OBSERVATION_V2)

    assert (v2.family, v2.version) == (v1.family, 2)
    assert list(backward_incompatibilities(v1.schema, v2.schema)) == []
    v2.validate_data(VALID_DATA)


def test_observation_v2_carries_annotations_measures_and_deletions_that_v1_refuses():
    deletion = {
        **VALID_DATA,
        "value": None,
        "action": "delete",
        "annotations": [{"id": "NOTE", "title": "Provisional", "type": "remark"}],
        "measures": {"OBS_VALUE": None, "CONF_LEVEL": "C95"},
    }

    get_contract(OBSERVATION_V2).validate_data(deletion)
    with pytest.raises(ContractError, match="must not contain"):
        get_contract(OBSERVATION).validate_data(deletion)
    with pytest.raises(ContractError, match="action"):
        get_contract(OBSERVATION_V2).validate_data({**VALID_DATA, "action": "purge"})


#: Staging folders of dbt_project and the contracts their models read.
_STAGING_CONTRACTS = {"hxl": "hxl", "iati": "iati", "utilities": "utility", "gdacs": "hazard"}
_INTEGER_CAST = re.compile(r"cast\(data ->> '\$\.(\w+)' as integer\)")


def test_every_field_dbt_casts_to_integer_is_bounded_to_integer_in_its_contracts():
    """An integer above 2^31 - 1 that the contract lets through would stop the staging model
    casting it to `integer`, not that event alone (the contracts bound integers to BIGINT)."""
    staging = Path(__file__).resolve().parents[2] / "dbt_project" / "models" / "staging"
    checked = 0
    for folder, family in _STAGING_CONTRACTS.items():
        fields = {
            m
            for sql in (staging / folder).glob("*.sql")
            for m in _INTEGER_CAST.findall(sql.read_text())
        }
        for contract in registry().values():
            if not contract.event_type.startswith(f"org.urbanflow.{family}."):
                continue
            properties = contract.event_schema["properties"]["data"].get("properties", {})
            for name in fields & set(properties):
                assert properties[name].get("maximum", 2**63) <= 2**31 - 1, (
                    contract.event_type,
                    name,
                )
                checked += 1
    assert checked >= 10  # hxl row/column (v1, v2), iati indices and baseline year, kpi row


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_sdmx_period_pattern_spells_its_days_as_every_calendar_date_does(version):
    """The observation contracts write the day part of their period pattern out (JSON has no
    constants): it must stay the one `CALENDAR_DATE` every other date is held to."""
    schema = get_contract(f"org.urbanflow.stats.observation.{version}").schema
    assert CALENDAR_DATE[1:-1] in schema["properties"]["time_period"]["pattern"]


@pytest.mark.parametrize("period", ["2024-13", "2024-00", "2023-02-29", "2024-04-31"])
def test_an_sdmx_period_that_is_no_period_is_refused_naming_time_period(period):
    """The marts derive each period's first day, and a null one fails their not_null tests,
    which stops every publish: such an event must be refused alone (as the SDMX reader does)."""
    with pytest.raises(ContractError, match="time_period"):
        get_contract(OBSERVATION).validate_data({**VALID_DATA, "time_period": period})
