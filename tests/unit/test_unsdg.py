"""UN SDG API Series/Data pages: SDMX codes, missing values, rejects, paging over real HTTP."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from local_http import serve

from connectors.contracts import get_contract
from connectors.errors import SourceFormatError
from connectors.sdk import Checkpoint, Record, Refused, load_config
from connectors.sources import unsdg
from connectors.sources.unsdg.helpers import parse_sdg_page, parse_value

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "unsdg"
PAGES = [FIXTURES / "en_lnd_slum_page1.json", FIXTURES / "en_lnd_slum_page2.json"]
API_PATH = "/SDGAPI/v1/sdg/Series/Data"


def _page(number: int):
    return parse_sdg_page(PAGES[number - 1].read_bytes(), f"page{number}", "UNSD:DF_SDG_GLH(1.0)")


def _read(inputs: list[str], state: dict | None = None) -> list:
    config = load_config("unsdg", unsdg.UnSdgConfig, overrides={"inputs": inputs})
    return list(unsdg.SOURCE.read(config, state or {}))


def test_record_becomes_an_observation_with_sdmx_codes_labels_and_attributes():
    kenya_female = _page(1).observations[1]

    assert kenya_female.to_event_data() == {
        "dataflow": "UNSD:DF_SDG_GLH(1.0)",
        "series_key": "EN_LND_SLUM.404.G.F.U",
        "dimensions": {
            "SERIES": "EN_LND_SLUM",
            "REF_AREA": "404",
            "REPORTING_TYPE": "G",
            "SEX": "F",
            "URBANISATION": "U",
        },
        "attributes": {
            "UNIT_MEASURE": "PT",
            "NATURE": "M",
            "SDG_INDICATOR": "11.1.1",
            "SOURCE_DETAIL": "UN-Habitat Urban Indicators Database (2024 round), "
            "based on national census and household survey data",
        },
        "labels": {
            "SERIES": "Proportion of urban population living in slums (%)",
            "REF_AREA": "Kenya",
            "REPORTING_TYPE": "Global",
            "SEX": "Female",
            "URBANISATION": "Urban",
        },
        "time_period": "2018",
        "value": 47.0,
    }


def test_sex_codes_map_to_sdmx_total_female_and_male():
    kenya_2018 = [o for o in _page(1).observations if o.dimensions["REF_AREA"] == "404"][:3]

    assert [(o.dimensions["SEX"], o.value) for o in kenya_2018] == [
        ("_T", 46.1),
        ("F", 47.0),
        ("M", 45.2),
    ]


def test_nan_value_is_a_missing_observation_with_its_footnote():
    nigeria_2020 = _page(2).observations[-1]

    assert (nigeria_2020.time_period, nigeria_2020.value) == ("2020", None)
    assert nigeria_2020.attributes["COMMENT_OBS"] == (
        "Estimate withheld pending the 2023 census results."
    )


@pytest.mark.parametrize(("raw", "value"), [("NaN", None), ("", None), ("N", None), ("7", 7.0)])
def test_api_missing_markers_and_numbers(raw, value):
    assert parse_value(raw) == value


def test_bounded_value_goes_to_the_dlq_naming_page_and_index_and_the_rest_loads(tmp_path):
    message = orjson.loads(PAGES[0].read_bytes())
    message["data"][4]["value"] = ">95"
    broken = tmp_path / "page1.json"
    broken.write_bytes(orjson.dumps(message))

    out = _read([str(broken)])

    rejects = [i for i in out if isinstance(i, Refused)]
    assert [(r.key, r.reason) for r in rejects] == [
        ("EN_LND_SLUM.800", f"{broken}: data[4]: value '>95' is not a number")
    ]
    assert orjson.loads(rejects[0].payload)["geoAreaName"] == "Uganda"
    assert len([i for i in out if isinstance(i, Record)]) == 5


def test_response_without_data_array_is_refused_naming_the_file(tmp_path):
    wrong = tmp_path / "error.json"
    wrong.write_text('{"statusCode": 500, "message": "Series not found"}')

    with pytest.raises(SourceFormatError) as raised:
        _read([str(wrong)])

    assert str(raised.value) == f"{wrong}: expected a Series/Data object with a 'data' array"


def test_two_saved_pages_send_ten_observations_valid_under_the_contract_then_nothing():
    out = _read([str(p) for p in PAGES])
    again = _read([str(p) for p in PAGES], out[-1].state)

    records = [i for i in out if isinstance(i, Record)]
    assert len(records) == 10
    assert {r.source for r in records} == {"urn:nso:unsd"}
    assert {r.subject for r in records} == {"404", "800", "566"}
    contract = get_contract("org.urbanflow.stats.observation.v1")
    for record in records:
        contract.validate_data(record.data)
    assert isinstance(out[-1], Checkpoint)
    assert [i for i in again if isinstance(i, Record)] == []


def test_series_data_url_is_followed_by_page_number_to_total_pages_over_http():
    def api(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        if path != API_PATH or query.get("seriesCode") != "EN_LND_SLUM":
            return 404, "text/plain", b"not found"
        return 200, "application/json", PAGES[int(query.get("page", "1")) - 1].read_bytes()

    with serve(api) as (base, requests):
        out = _read([f"{base}{API_PATH}?seriesCode=EN_LND_SLUM&pageSize=6"])

    assert requests == [
        f"{API_PATH}?seriesCode=EN_LND_SLUM&pageSize=6",
        f"{API_PATH}?seriesCode=EN_LND_SLUM&pageSize=6&page=2",
    ]
    assert len([i for i in out if isinstance(i, Record)]) == 10
