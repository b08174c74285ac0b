"""The SDMX-JSON field guide's observation layouts and data-set actions, on the ECB specimens
(tests/fixtures/sdmx/README.md) and on messages built here from the guide's rules.

Expected values are worked out in the test from the message itself (an independent count), not
copied from the reader's output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from connectors.errors import SourceFormatError
from connectors.sources.sdmx import OBSERVATIONS_V2, SOURCE, SdmxConfig
from connectors.sources.sdmx.helpers import parse_sdmx_csv, parse_sdmx_json

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "sdmx"
CONTRACTS = REPO / "connectors" / "contracts"
V1 = Draft202012Validator(
    json.loads((CONTRACTS / "org.urbanflow.stats.observation.v1.json").read_text())
)
V2 = Draft202012Validator(
    json.loads((CONTRACTS / "org.urbanflow.stats.observation.v2.json").read_text())
)
TIME_SERIES = FIXTURES / "ecb_exr_json2_time_series.json"
FLAT = FIXTURES / "ecb_exr_json2_flat.json"
DELETE_V2 = FIXTURES / "ecb_exr_json2_action_delete.json"
DELETE_V1 = FIXTURES / "ecb_exr_json1_action_delete.json"


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_bytes())


def _parse(message: dict[str, Any], origin: str = "message.json"):
    return parse_sdmx_json(json.dumps(message).encode(), origin)


def _expected_annotated(message: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """(series key index, observation key) -> annotation ids, from the arrays' tails."""
    structure = message["data"]["structures"][0]
    n_measures = len((structure.get("measures") or {}).get("observation") or [None])
    n_attributes = len(structure["attributes"].get("observation") or [])
    ids = [a["id"] for a in structure["annotations"]]
    found = {}
    for data_set in message["data"]["dataSets"]:
        for series_key, series in (data_set.get("series") or {"": data_set}).items():
            for obs_key, entry in series["observations"].items():
                tail = entry[n_measures + n_attributes :]
                found[(series_key, obs_key)] = [
                    ids[i] for i in [*series.get("annotations", []), *tail]
                ]
    return found


@pytest.mark.parametrize("path", [TIME_SERIES, FLAT], ids=lambda p: p.name)
def test_annotation_indexes_after_the_attributes_become_annotations(path: Path) -> None:
    message = _load(path)
    expected = _expected_annotated(message)

    observations = _parse(message, path.name)

    assert len(observations) == len(expected)
    assert sorted(tuple(a["id"] for a in o.annotations) for o in observations) == sorted(
        tuple(ids) for ids in expected.values()
    )
    assert any(o.annotations for o in observations)
    for observation in observations:
        assert observation.attributes["OBS_STATUS"] == "A"
        V2.validate(observation.to_event_data())


def test_an_observation_annotation_keeps_its_title_type_and_text() -> None:
    rub_2013_01_21 = {
        (o.dimensions["CURRENCY"], o.time_period): o for o in _parse(_load(TIME_SERIES))
    }[("RUB", "2013-01-21")]

    assert rub_2013_01_21.annotations == (
        {
            "id": "XYZ98765",
            "title": "Sample observation annotation title",
            "type": "example",
            "text": "Sample observation annotation text",
        },
    )
    assert rub_2013_01_21.value == 40.3


def test_trailing_attributes_may_be_omitted_when_there_are_no_annotations() -> None:
    message = _load(TIME_SERIES)
    series = message["data"]["dataSets"][0]["series"]["1"]
    series["observations"]["0"] = [40.3426]  # OBS_STATUS omitted: its default applies

    observation = {o.time_period: o for o in _parse(message) if o.dimensions["CURRENCY"] == "RUB"}

    assert observation["2013-01-18"].value == 40.3426
    assert observation["2013-01-18"].annotations == ()


def test_an_annotation_index_out_of_range_is_refused_naming_the_position() -> None:
    message = _load(TIME_SERIES)
    message["data"]["dataSets"][0]["series"]["1"]["observations"]["1"] = [40.3, 0, 9]

    with pytest.raises(SourceFormatError, match=r'observations\["1"\]\[2:\]\[0\]: annotation'):
        _parse(message, "ecb.json")


def _several_measures() -> dict[str, Any]:
    message = _load(FLAT)
    structure = message["data"]["structures"][0]
    structure["measures"] = {
        "observation": [
            {"id": "OBS_VALUE"},
            {"id": "OBS_VALUE_LOW"},
            {"id": "CONF_LEVEL", "values": [{"id": "C90"}, {"id": "C95"}]},
        ]
    }
    observations = message["data"]["dataSets"][0]["observations"]
    for key, entry in list(observations.items()):
        observations[key] = [entry[0], entry[0] - 0.5, 1, *entry[1:]]
    return message


def test_several_measures_are_all_kept_and_value_is_obs_value() -> None:
    message = _several_measures()
    raw = message["data"]["dataSets"][0]["observations"]

    observations = _parse(message)

    assert len(observations) == len(raw)
    for observation in observations:
        assert set(observation.measures) == {"OBS_VALUE", "OBS_VALUE_LOW", "CONF_LEVEL"}
        assert observation.measures["OBS_VALUE"] == observation.value
        assert observation.measures["OBS_VALUE_LOW"] == pytest.approx(observation.value - 0.5)
        assert observation.measures["CONF_LEVEL"] == "C95"
        assert observation.attributes["OBS_STATUS"] == "A"
        V2.validate(observation.to_event_data())


def test_several_measures_without_obs_value_take_the_first_as_value() -> None:
    message = _several_measures()
    message["data"]["structures"][0]["measures"]["observation"][0]["id"] = "VALUE_MID"

    observations = _parse(message)

    assert all(o.value == o.measures["VALUE_MID"] for o in observations)


@pytest.mark.parametrize("path", [DELETE_V2, DELETE_V1], ids=lambda p: p.name)
def test_a_delete_data_set_with_empty_observation_arrays_becomes_deletions(path: Path) -> None:
    message = _load(path)
    data_sets = message.get("data", message)["dataSets"]  # 1.0 drafts have no `data`
    expected = {
        ds["action"].lower(): sum(len(s["observations"]) for s in ds["series"].values())
        for ds in data_sets
    }

    observations = parse_sdmx_json(path.read_bytes(), path.name)

    deletions = [o for o in observations if o.action == "delete"]
    assert len(deletions) == expected["delete"] == 1
    assert len(observations) - len(deletions) == expected["replace"] == 2
    (deleted,) = deletions
    assert deleted.value is None
    data = deleted.to_event_data()
    assert data["action"] == "delete"
    V2.validate(data)
    assert not V1.is_valid(data)


@pytest.mark.parametrize(
    ("action", "expected"),
    [("Information", "upsert"), ("Merge", "upsert"), ("Append", "upsert"), ("Replace", "upsert")],
)
def test_information_merge_append_and_replace_upsert(action: str, expected: str) -> None:
    message = _load(TIME_SERIES)
    message["data"]["dataSets"][0]["action"] = action

    assert {o.action for o in _parse(message)} == {expected}


def test_an_unknown_action_is_refused() -> None:
    message = _load(TIME_SERIES)
    message["data"]["dataSets"][0]["action"] = "Upsert"

    with pytest.raises(SourceFormatError, match=r"dataSets\[0\]\.action: 'Upsert' is not"):
        _parse(message)


def test_csv_action_column_d_deletes_and_others_upsert() -> None:
    text = (
        "STRUCTURE,STRUCTURE_ID,ACTION,FREQ,CITY,TIME_PERIOD,OBS_VALUE\n"
        "dataflow,GSS:DF_CITY_SDG(1.0),I,A,GHACC,2021,48.1\n"
        "dataflow,GSS:DF_CITY_SDG(1.0),R,A,GHACC,2022,49.0\n"
        "dataflow,GSS:DF_CITY_SDG(1.0),D,A,GHACC,2020,\n"
    )

    observations = parse_sdmx_csv(text, "gss.csv")

    assert [(o.time_period, o.action, o.value) for o in observations] == [
        ("2021", "upsert", 48.1),
        ("2022", "upsert", 49.0),
        ("2020", "delete", None),
    ]


def test_csv_unknown_action_is_refused_at_its_line() -> None:
    text = "STRUCTURE,STRUCTURE_ID,ACTION,CITY,TIME_PERIOD,OBS_VALUE\n"
    text += "dataflow,GSS:DF_CITY_SDG(1.0),X,GHACC,2021,1\n"

    with pytest.raises(SourceFormatError, match=r"^gss\.csv:2: ACTION 'X' is not I, A, M, R or D"):
        parse_sdmx_csv(text, "gss.csv")


def test_plain_observations_stay_v1_and_annotated_or_deleted_ones_go_out_as_v2() -> None:
    config = SdmxConfig(inputs=[str(TIME_SERIES), str(DELETE_V2), str(FIXTURES / "csv_v1.csv")])

    records = [item for item in SOURCE.read(config, {}) if hasattr(item, "data")]

    by_type = {}
    for record in records:
        by_type.setdefault(record.stream.event_type, []).append(record)
    v2 = by_type["org.urbanflow.stats.observation.v2"]
    v1 = by_type["org.urbanflow.stats.observation.v1"]
    assert all(r.stream is OBSERVATIONS_V2 for r in v2)
    assert {r.stream.topic for r in records} == {"stats.sdmx.observation.v1"}
    assert sum(r.data.get("action") == "delete" for r in v2) == 1
    assert all("annotations" in r.data or "action" in r.data for r in v2)
    for record in v1:
        V1.validate(record.data)
    # csv_v1.csv (3 rows) and the un-annotated ECB observations stay v1
    assert len(v1) == 3 + sum(
        not o.annotations
        for o in _parse(_load(TIME_SERIES)) + _parse(_load(DELETE_V2))
        if o.action == "upsert"
    )


def test_deleting_after_upserting_sends_a_deletion_with_a_new_event_id(tmp_path: Path) -> None:
    first = list(SOURCE.read(SdmxConfig(inputs=[str(TIME_SERIES)]), {}))
    deleting = _load(TIME_SERIES)
    deleting["data"]["dataSets"][0]["action"] = "Delete"
    target = tmp_path / "delete.json"
    target.write_text(json.dumps(deleting), encoding="utf-8")

    second = list(SOURCE.read(SdmxConfig(inputs=[str(target)]), first[-1].state))

    sent = [r for r in first if hasattr(r, "data")]
    deletions = [r for r in second if hasattr(r, "data")]
    assert len(deletions) == len(sent) == 4
    assert all(r.data["action"] == "delete" for r in deletions)
    assert {r.key for r in deletions} == {r.key for r in sent}
    assert not {r.event_id for r in sent} & {r.event_id for r in deletions}
