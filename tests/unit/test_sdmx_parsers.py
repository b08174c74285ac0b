"""SDMX-JSON / SDMX-CSV parsers, format detection, and the bundled sample feeds."""

from __future__ import annotations

import copy
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from connectors.errors import SourceFormatError
from connectors.samples import sdmx_feeds
from connectors.sources.observations import Observation
from connectors.sources.sdmx.helpers import parse_sdmx_csv, parse_sdmx_json
from connectors.sources.sdmx.settings import ACCEPT_HEADERS, detect_format

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "sdmx"
SAMPLES = REPO / "sample_data" / "sdmx"
CONTRACT = REPO / "connectors" / "contracts" / "org.urbanflow.stats.observation.v1.json"


def _json_fixture(name: str) -> list[Observation]:
    return parse_sdmx_json((FIXTURES / name).read_bytes(), name)


def _csv_fixture(name: str) -> list[Observation]:
    return parse_sdmx_csv((FIXTURES / name).read_text(encoding="utf-8"), name)


def _by_key(observations: list[Observation]) -> dict[tuple[str, str], Observation]:
    return {(o.series_key, o.time_period): o for o in observations}


def _parse_sample(path: Path) -> list[Observation]:
    if path.suffix == ".json":
        return parse_sdmx_json(path.read_bytes(), str(path))
    return parse_sdmx_csv(path.read_text(encoding="utf-8"), str(path))


def _sample_files() -> list[Path]:
    return sorted(p for p in SAMPLES.iterdir() if p.suffix in {".json", ".csv"})


def _sample_grid_size() -> int:
    """City x series x sex x year: what the generator declares, one observation each."""
    return sum(
        len(sdmx_feeds.series_values(city, indicator)) * len(sdmx_feeds.YEARS)
        for city in sdmx_feeds.load_cities()
        for indicator in sdmx_feeds.INDICATORS
    )


# ------------------------------------------------------------------------------ SDMX-JSON


def test_json_series_keyed_yields_one_observation_per_series_observation() -> None:
    observations = _json_fixture("json_v2_series.json")

    assert len(observations) == 4
    nairobi = _by_key(observations)[("A.KEN.KENBO.EN_LND_SLUM._T", "2021")]
    assert nairobi.dataflow == "KNBS:DF_CITY_SDG(1.0)"
    assert nairobi.dimensions == {
        "FREQ": "A",
        "REF_AREA": "KEN",
        "CITY": "KENBO",
        "SERIES": "EN_LND_SLUM",
        "SEX": "_T",
    }
    assert nairobi.value == 54.5
    assert nairobi.line is None


def test_json_labels_come_from_structure_names_preferring_english() -> None:
    mombasa = _by_key(_json_fixture("json_v2_series.json"))[("A.KEN.KEMBA.EN_LND_SLUM._T", "2022")]

    assert mombasa.labels["CITY"] == "Mombasa"
    assert mombasa.labels["REF_AREA"] == "Kenya"
    assert mombasa.labels["SERIES"] == "Urban population living in slums"
    assert "TIME_PERIOD" not in mombasa.labels


def test_json_attributes_merge_dataset_group_series_and_observation_levels() -> None:
    nairobi = _by_key(_json_fixture("json_v2_series.json"))[("A.KEN.KENBO.EN_LND_SLUM._T", "2022")]

    assert nairobi.attributes == {
        "UNIT_MEASURE": "PT",
        "UNIT_MULT": "0",
        "SOURCE_DETAIL": "KNBS census 2019, slum household definition",
        "OBS_STATUS": "E",
    }


def test_json_null_attribute_index_leaves_the_attribute_out() -> None:
    mombasa = _by_key(_json_fixture("json_v2_series.json"))[("A.KEN.KEMBA.EN_LND_SLUM._T", "2022")]

    assert "SOURCE_DETAIL" not in mombasa.attributes
    assert mombasa.attributes["COMMENT"] == "REVISED"


def test_json_omitted_observation_attribute_takes_the_structure_default() -> None:
    mombasa = _by_key(_json_fixture("json_v2_series.json"))[("A.KEN.KEMBA.EN_LND_SLUM._T", "2021")]

    assert mombasa.attributes["OBS_STATUS"] == "A"


def test_json_null_value_is_a_missing_observation() -> None:
    mombasa = _by_key(_json_fixture("json_v2_series.json"))[("A.KEN.KEMBA.EN_LND_SLUM._T", "2021")]

    assert mombasa.value is None
    assert mombasa.to_event_data()["value"] is None


def test_json_numeric_string_value_becomes_a_float() -> None:
    nairobi = _by_key(_json_fixture("json_v2_series.json"))[("A.KEN.KENBO.EN_LND_SLUM._T", "2022")]

    assert nairobi.value == 53.9


def test_json_time_value_given_as_value_instead_of_id_is_read() -> None:
    periods = {o.time_period for o in _json_fixture("json_v2_series.json")}

    assert periods == {"2021", "2022"}


def test_json_flat_observation_keys_cover_every_non_dataset_dimension() -> None:
    observations = _by_key(_json_fixture("json_v2_flat.json"))

    assert len(observations) == 3
    arua = observations[("A.UGA.UGRUA.EG_ELC_ACCS.F", "2020")]
    assert arua.value == 72.8
    assert arua.attributes == {"UNIT_MEASURE": "PT", "OBS_STATUS": "E"}
    assert arua.labels["CITY"] == "Arua"


def test_json_flat_observation_without_attribute_values_has_only_dataset_attributes() -> None:
    arua_total = _by_key(_json_fixture("json_v2_flat.json"))[("A.UGA.UGRUA.EG_ELC_ACCS._T", "2020")]

    assert arua_total.attributes == {"UNIT_MEASURE": "PT"}


def test_json_dataflow_is_read_from_a_rest_href_with_rel_dataflow() -> None:
    assert {o.dataflow for o in _json_fixture("json_v2_flat.json")} == {"UBOS:DF_CITY_SDG(1.0)"}


def test_json_v1_layout_with_data_structure_is_accepted() -> None:
    (accra,) = _json_fixture("json_v1_series.json")

    assert accra.dataflow == "GSS:DF_CITY_SDG(1.0)"
    assert accra.series_key == "A.GHA.GHACC.SH_SAN_SAFE._T"
    assert accra.time_period == "2020-Q4"
    assert accra.value == 23.7
    assert accra.attributes == {"UNIT_MULT": "0"}


def test_json_draft_layout_with_top_level_structure_and_datasets_is_accepted() -> None:
    message = json.loads((FIXTURES / "json_v1_series.json").read_bytes())
    draft = {"header": message["meta"], **message["data"]}

    (accra,) = parse_sdmx_json(json.dumps(draft).encode(), "draft.json")

    assert accra.dimensions["CITY"] == "GHACC"
    assert accra.value == 23.7


def test_event_data_omits_labels_when_the_message_has_no_names() -> None:
    message = json.loads((FIXTURES / "json_v1_series.json").read_bytes())
    for level in message["data"]["structure"]["dimensions"].values():
        for dimension in level:
            for value in dimension["values"]:
                value.pop("name")

    (accra,) = parse_sdmx_json(json.dumps(message).encode(), "no-names.json")

    assert accra.labels == {}
    assert list(accra.to_event_data()) == [
        "dataflow",
        "series_key",
        "dimensions",
        "attributes",
        "time_period",
        "value",
    ]


def test_event_data_of_every_fixture_observation_satisfies_the_contract() -> None:
    validator = Draft202012Validator(json.loads(CONTRACT.read_text(encoding="utf-8")))
    observations = [
        *_json_fixture("json_v2_series.json"),
        *_json_fixture("json_v2_flat.json"),
        *_json_fixture("json_v1_series.json"),
        *_csv_fixture("csv_v1.csv"),
        *_csv_fixture("csv_v2.csv"),
        *_csv_fixture("csv_v2_labels.csv"),
    ]

    for observation in observations:
        validator.validate(observation.to_event_data())


# ----------------------------------------------------------------------- malformed SDMX-JSON


def _series_message() -> dict[str, Any]:
    return json.loads((FIXTURES / "json_v2_series.json").read_bytes())


def _data_set(message: dict[str, Any]) -> dict[str, Any]:
    return message["data"]["dataSets"][0]


def _rekey_series(message: dict[str, Any], new_key: str) -> None:
    series = _data_set(message)["series"]
    series[new_key] = series.pop("0:0:0")


def _drop_dataflow_links(message: dict[str, Any]) -> None:
    message["data"]["structures"][0]["links"] = []
    _data_set(message)["links"] = []


def _set_first_value(message: dict[str, Any], value: object) -> None:
    _data_set(message)["series"]["0:0:0"]["observations"]["0"][0] = value


def _rename_time_dimension(message: dict[str, Any]) -> None:
    time_dimension = message["data"]["structures"][0]["dimensions"]["observation"][0]
    time_dimension.update(id="YEAR", roles=[])


def _set_time_value(message: dict[str, Any]) -> None:
    message["data"]["structures"][0]["dimensions"]["observation"][0]["values"][0] = {
        "id": "2021-13"
    }


MALFORMED_JSON: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "no structure": (lambda m: m["data"].pop("structures"), "no structure"),
    "no dataSets": (lambda m: m["data"].pop("dataSets"), "no dataSets"),
    "series index out of range": (
        lambda m: _rekey_series(m, "0:5:0"),
        'data.dataSets[0].series["0:5:0"]: index 5 is out of range for dimension SERIES',
    ),
    "series key too short": (
        lambda m: _rekey_series(m, "0:0"),
        'data.dataSets[0].series["0:0"]: key has 2 indexes, expected 3',
    ),
    "observation index out of range": (
        lambda m: _data_set(m)["series"]["0:0:0"]["observations"].update({"7": [1.0]}),
        'series["0:0:0"].observations["7"]: index 7 is out of range for dimension TIME_PERIOD',
    ),
    "attribute index out of range": (
        lambda m: _data_set(m).update(attributes=[3]),
        "data.dataSets[0].attributes[0]: index 3 is out of range for UNIT_MEASURE",
    ),
    "non-numeric value": (
        lambda m: _set_first_value(m, "n/a"),
        'observation value "n/a" is not a number',
    ),
    "boolean value": (
        lambda m: _set_first_value(m, True),
        "observation value true is not a number",
    ),
    "bad time period": (_set_time_value, "time period '2021-13' is not YYYY"),
    "no time dimension": (_rename_time_dimension, "no TIME_PERIOD dimension"),
    "no dataflow reference": (_drop_dataflow_links, "no dataflow reference"),
    "series and observations together": (
        lambda m: _data_set(m).update(observations={}),
        "data.dataSets[0]: has both series and observations",
    ),
}


@pytest.mark.parametrize("case", MALFORMED_JSON)
def test_malformed_json_is_refused_with_origin_and_path(case: str) -> None:
    mutate, expected = MALFORMED_JSON[case]
    message = copy.deepcopy(_series_message())
    mutate(message)

    with pytest.raises(SourceFormatError) as caught:
        parse_sdmx_json(json.dumps(message).encode(), "feeds/knbs.json")

    assert caught.value.origin == "feeds/knbs.json"
    assert str(caught.value).startswith("feeds/knbs.json: ")
    assert expected in str(caught.value)


def test_invalid_json_syntax_is_refused_with_the_line_of_the_error() -> None:
    with pytest.raises(SourceFormatError) as caught:
        parse_sdmx_json((FIXTURES / "bad_syntax.json").read_bytes(), "bad_syntax.json")

    assert caught.value.line == 6
    assert str(caught.value).startswith("bad_syntax.json:6: invalid JSON: Expecting ','")


@pytest.mark.parametrize("payload", [b"", b"  \n"])
def test_empty_json_file_is_refused(payload: bytes) -> None:
    with pytest.raises(SourceFormatError, match=r"^empty\.json: file is empty$"):
        parse_sdmx_json(payload, "empty.json")


def test_json_error_in_the_last_series_refuses_the_whole_file() -> None:
    message = _series_message()
    _data_set(message)["series"]["1:0:0"]["observations"]["1"] = ["forty"]

    with pytest.raises(SourceFormatError, match=r'series\["1:0:0"\]\.observations\["1"\]'):
        parse_sdmx_json(json.dumps(message).encode(), "knbs.json")


# ------------------------------------------------------------------------------- SDMX-CSV


def test_csv_v1_reads_the_dataflow_column_and_line_numbers() -> None:
    observations = _csv_fixture("csv_v1.csv")

    assert [o.line for o in observations] == [2, 3, 4]
    first = observations[0]
    assert first.dataflow == "NBS_TZ:DF_CITY_SDG(1.0)"
    assert first.series_key == "A.TZA.TZDAR.SH_SAN_SAFE._T"
    assert first.time_period == "2021"
    assert first.value == 31.4
    assert first.attributes == {"UNIT_MEASURE": "PT", "OBS_STATUS": "A"}
    assert first.labels == {}


def test_csv_empty_obs_value_is_a_missing_observation() -> None:
    missing = _csv_fixture("csv_v1.csv")[1]

    assert missing.value is None
    assert missing.attributes["OBS_STATUS"] == "M"


def test_csv_empty_attribute_cell_leaves_the_attribute_out() -> None:
    mwanza = _csv_fixture("csv_v1.csv")[2]

    assert mwanza.attributes == {"UNIT_MEASURE": "PT"}


def test_csv_v2_skips_structure_and_action_columns() -> None:
    lusaka_female = _csv_fixture("csv_v2.csv")[0]

    assert lusaka_female.dataflow == "ZAMSTAT:DF_CITY_SDG(1.0)"
    assert lusaka_female.dimensions == {
        "FREQ": "A",
        "REF_AREA": "ZMB",
        "CITY": "ZMLUN",
        "SERIES": "EG_ELC_ACCS",
        "SEX": "F",
    }
    assert lusaka_female.value == 83.2
    assert lusaka_female.attributes == {
        "UNIT_MEASURE": "PT",
        "UNIT_MULT": "0",
        "OBS_STATUS": "A",
        "SOURCE_DETAIL": "LCMS 2015, electricity module",
    }


def test_csv_line_numbers_count_quoted_cells_that_span_lines() -> None:
    observations = _csv_fixture("csv_v2.csv")

    assert [o.line for o in observations] == [2, 3, 5]
    assert observations[1].attributes["SOURCE_DETAIL"] == "Two-line\nnote"


def test_csv_nan_obs_value_is_a_missing_observation() -> None:
    ndola = _csv_fixture("csv_v2.csv")[2]

    assert ndola.dimensions["CITY"] == "ZMNLA"
    assert ndola.value is None


def test_csv_label_mode_splits_codes_from_names() -> None:
    davao, manila = _csv_fixture("csv_v2_labels.csv")

    assert davao.dataflow == "PSA:DF_CITY_SDG(1.0)"
    assert davao.series_key == "A.PHL.PHDVO.EN_LND_SLUM.F"
    assert davao.labels == {
        "FREQ": "Annual",
        "REF_AREA": "Philippines",
        "CITY": "Davao City",
        "SERIES": "Proportion of urban population living in slums",
        "SEX": "Female",
    }
    assert davao.attributes == {"UNIT_MEASURE": "PT", "OBS_STATUS": "E"}
    assert davao.value == 38.6
    assert manila.attributes == {"UNIT_MEASURE": "PT"}


def test_csv_with_bom_and_crlf_parses_like_plain_text() -> None:
    text = (FIXTURES / "csv_v1.csv").read_text(encoding="utf-8")

    observations = parse_sdmx_csv("\ufeff" + text.replace("\n", "\r\n"), "bom.csv")

    assert [(o.line, o.value) for o in observations] == [(2, 31.4), (3, None), (4, 22.9)]


# ------------------------------------------------------------------------ malformed SDMX-CSV

HEADER_V1 = "DATAFLOW,FREQ,REF_AREA,CITY,SERIES,SEX,TIME_PERIOD,OBS_VALUE,OBS_STATUS"
ROW_V1 = "GSS:DF_CITY_SDG(1.0),A,GHA,GHACC,SH_H2O_SAFE,_T,2021,48.1,A"

MALFORMED_CSV: dict[str, tuple[str, int | None, str]] = {
    "empty file": ("", None, "file is empty"),
    "blank file": ("\n\n", None, "file is empty"),
    "unknown first column": ("FREQ,TIME_PERIOD,OBS_VALUE\nA,2021,1\n", 1, "must start with"),
    "no TIME_PERIOD column": (
        "DATAFLOW,FREQ,CITY,OBS_VALUE\nGSS:DF_CITY_SDG(1.0),A,GHACC,1\n",
        1,
        "no TIME_PERIOD column",
    ),
    "no OBS_VALUE column": (
        "DATAFLOW,FREQ,CITY,TIME_PERIOD,VALUE\nGSS:DF_CITY_SDG(1.0),A,GHACC,2021,1\n",
        1,
        "no OBS_VALUE column",
    ),
    "no dimension columns": (
        "DATAFLOW,TIME_PERIOD,OBS_VALUE\nGSS:DF_CITY_SDG(1.0),2021,1\n",
        1,
        "no dimension columns",
    ),
    "duplicate column": (
        "DATAFLOW,CITY,CITY,TIME_PERIOD,OBS_VALUE\n",
        1,
        "duplicate column(s) CITY",
    ),
    "missing cell": (
        f"{HEADER_V1}\n{ROW_V1}\n{ROW_V1.rsplit(',', 1)[0]}\n",
        3,
        "row has 8 cells, the header has 9",
    ),
    "text value": (
        f"{HEADER_V1}\n{ROW_V1}\n{ROW_V1}\n{ROW_V1.replace('48.1', 'about 48')}\n",
        4,
        "OBS_VALUE 'about 48' is not a number",
    ),
    "infinite value": (
        f"{HEADER_V1}\n{ROW_V1.replace('48.1', '1e999')}\n",
        2,
        "OBS_VALUE '1e999' is not a number",
    ),
    "bad time period": (
        f"{HEADER_V1}\n{ROW_V1.replace('2021', '2021-W07')}\n",
        2,
        "TIME_PERIOD '2021-W07' is not YYYY",
    ),
    "impossible date": (
        f"{HEADER_V1}\n{ROW_V1.replace('2021', '2021-02-30')}\n",
        2,
        "TIME_PERIOD '2021-02-30'",
    ),
    "empty dimension code": (
        f"{HEADER_V1}\n{ROW_V1.replace('GHACC', '')}\n",
        2,
        "empty code in dimension column CITY",
    ),
    "bad dataflow reference": (
        f"{HEADER_V1}\n{ROW_V1.replace('GSS:DF_CITY_SDG(1.0)', 'DF_CITY_SDG')}\n",
        2,
        "DATAFLOW 'DF_CITY_SDG' is not a reference AGENCY:ID(VERSION)",
    ),
    "unknown structure type": (
        "STRUCTURE,STRUCTURE_ID,ACTION,CITY,TIME_PERIOD,OBS_VALUE\n"
        "table,GSS:DF_CITY_SDG(1.0),I,GHACC,2021,1\n",
        2,
        "STRUCTURE 'table' is not dataflow",
    ),
}


@pytest.mark.parametrize("case", MALFORMED_CSV)
def test_malformed_csv_is_refused_with_origin_and_line(case: str) -> None:
    text, line, expected = MALFORMED_CSV[case]

    with pytest.raises(SourceFormatError) as caught:
        parse_sdmx_csv(text, "feeds/gss.csv")

    assert caught.value.origin == "feeds/gss.csv"
    assert caught.value.line == line
    location = "feeds/gss.csv" if line is None else f"feeds/gss.csv:{line}"
    assert str(caught.value).startswith(f"{location}: ")
    assert expected in caught.value.reason


def test_csv_row_with_extra_cell_is_refused_at_its_line() -> None:
    with pytest.raises(SourceFormatError) as caught:
        _csv_fixture("bad_row_length.csv")

    assert str(caught.value) == "bad_row_length.csv:3: row has 10 cells, the header has 9"


# -------------------------------------------------------------------------- format detection


@pytest.mark.parametrize(
    ("hint", "head", "expected"),
    [
        ("application/vnd.sdmx.data+json;version=2.0.0; charset=utf-8", b"", "json"),
        ("application/vnd.sdmx.data+csv;version=2.0.0;labels=both", b"{", "csv"),
        ("text/csv", b"", "csv"),
        ("application/json", b"", "json"),
        ("sample_data/sdmx/ken_knbs.csv", b"{", "csv"),
        ("https://stats.example.org/feeds/knbs.JSON?lang=en", b"", "json"),
        ("application/octet-stream", b'\xef\xbb\xbf \n {"data": {}}', "json"),
        ("download", b"STRUCTURE,STRUCTURE_ID", "csv"),
        ("application/vnd.sdmx.genericdata+xml;version=2.1", b"", "xml"),
        ("ecb/exr.XML", b"", "xml"),
        ("download", b'\xef\xbb\xbf<?xml version="1.0"?>', "xml"),
    ],
)
def test_detect_format_uses_type_then_extension_then_first_byte(
    hint: str, head: bytes, expected: str
) -> None:
    assert detect_format(hint, head) == expected


def test_accept_headers_ask_for_sdmx_3_0_rest_media_types() -> None:
    assert ACCEPT_HEADERS == {
        "json": "application/vnd.sdmx.data+json;version=2.0.0",
        "csv": "application/vnd.sdmx.data+csv;version=2.0.0",
        "xml": "application/vnd.sdmx.data+xml;version=3.0.0",
    }


# ---------------------------------------------------------------------- bundled sample feeds


@pytest.mark.parametrize("path", _sample_files(), ids=lambda p: p.name)
def test_bundled_feed_parses_and_every_event_satisfies_the_contract(path: Path) -> None:
    validator = Draft202012Validator(json.loads(CONTRACT.read_text(encoding="utf-8")))

    observations = _parse_sample(path)

    assert len(observations) >= 48
    assert len({o.dataflow for o in observations}) == 1
    assert len({o.dimensions["REF_AREA"] for o in observations}) == 1
    for observation in observations:
        validator.validate(observation.to_event_data())
        assert observation.attributes["UNIT_MEASURE"] == "PT"
        assert observation.attributes["UNIT_MULT"] == "0"
        assert observation.attributes["OBS_STATUS"] in {"A", "E", "M"}


def test_bundled_feeds_are_one_file_per_statistics_office() -> None:
    agencies = [_parse_sample(path)[0].dataflow.split(":")[0] for path in _sample_files()]

    assert len(agencies) == len(set(agencies)) == 17
    assert {"KNBS", "UBOS", "NBS_TZ", "ESS_ET", "NBS_NG", "GSS", "BBS", "PSA"} <= set(agencies)


def test_bundled_feeds_mix_json_csv_and_label_mode() -> None:
    suffixes = [path.suffix for path in _sample_files()]
    csv_headers = [p.read_text(encoding="utf-8").split("\n", 1)[0] for p in SAMPLES.glob("*.csv")]

    assert suffixes.count(".json") == 9
    assert suffixes.count(".csv") == 8
    assert sum("FREQ: Frequency" in header for header in csv_headers) == 4
    assert all(header.startswith("STRUCTURE,STRUCTURE_ID,ACTION,") for header in csv_headers)


def test_bundled_feeds_cover_cities_countries_series_and_years() -> None:
    observations = [o for path in _sample_files() for o in _parse_sample(path)]

    assert len(observations) == _sample_grid_size()
    assert len({o.dimensions["CITY"] for o in observations}) >= 24
    assert len({o.dimensions["REF_AREA"] for o in observations}) >= 10
    assert {o.dimensions["SERIES"] for o in observations} == {
        "EN_LND_SLUM",
        "SH_H2O_SAFE",
        "SH_SAN_SAFE",
        "EG_ELC_ACCS",
        "SP_LGL_LNDDOC",
        "SP_LGL_LNDSTR",
        "EN_REF_WASCOL",
    }
    assert {o.time_period for o in observations} == {str(y) for y in range(2018, 2024)}
    assert {o.dimensions["SEX"] for o in observations} == {"_T", "F", "M"}
    assert sum(o.value is None for o in observations) == 17


def test_bundled_values_stay_within_plausible_ranges() -> None:
    bounds = {i.code: i.bounds for i in sdmx_feeds.INDICATORS}

    for path in _sample_files():
        for o in _parse_sample(path):
            low, high = bounds[o.dimensions["SERIES"]]
            assert o.value is None or low <= o.value <= high, (path.name, o)


def test_bundled_tenure_and_waste_follow_the_city_slum_and_service_levels() -> None:
    """Across cities: documented tenure falls as slums grow, people perceive their tenure as secure
    more often than they hold documents, and waste collection rises with the other services."""
    cities = sdmx_feeds.load_cities()

    def latest(code: str) -> list[float]:
        indicator = sdmx_feeds.INDICATORS_BY_CODE[code]
        return [sdmx_feeds.series_values(city, indicator)["_T"][-1] for city in cities]

    documented, perceived = latest("SP_LGL_LNDDOC"), latest("SP_LGL_LNDSTR")
    water, sanitation, electricity = (
        latest(code) for code in ("SH_H2O_SAFE", "SH_SAN_SAFE", "EG_ELC_ACCS")
    )
    services = [statistics.mean(v) for v in zip(water, sanitation, electricity, strict=True)]

    assert statistics.correlation(documented, latest("EN_LND_SLUM")) < -0.5
    assert all(p > d for p, d in zip(perceived, documented, strict=True))
    assert statistics.correlation(latest("EN_REF_WASCOL"), services) > 0.5


def test_bundled_json_feeds_carry_city_labels() -> None:
    cities = {c.code: c.name for c in sdmx_feeds.load_cities()}

    for path in SAMPLES.glob("*.json"):
        for o in _parse_sample(path):
            assert o.labels["CITY"] == cities[o.dimensions["CITY"]]


def test_generator_is_deterministic_and_matches_the_committed_files(tmp_path: Path) -> None:
    first = sdmx_feeds.write_feeds(tmp_path / "first")
    second = sdmx_feeds.write_feeds(tmp_path / "second")

    assert [p.name for p in first] == [p.name for p in second]
    for path in first:
        assert path.read_bytes() == (tmp_path / "second" / path.name).read_bytes()
        assert path.read_bytes() == (SAMPLES / path.name).read_bytes(), (
            f"{path.name} is stale: run python -m connectors.samples.sdmx_feeds"
        )
    assert sorted(p.name for p in first) == [p.name for p in _sample_files()]


def test_generator_cli_reports_what_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sdmx_feeds.main(["--out", str(tmp_path)]) == 0

    summary = capsys.readouterr().out
    assert summary.startswith(
        f"wrote 17 SDMX feeds ({_sample_grid_size()} observations) to {tmp_path} in "
    )
