"""World Bank API v2 pages: parsing, aggregates, paging over real HTTP, incremental re-runs."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from local_http import serve

from connectors.contracts import get_contract
from connectors.errors import ConfigError, SourceFormatError
from connectors.sdk import Checkpoint, Record, Refused, load_config
from connectors.sources import worldbank
from connectors.sources.worldbank.helpers import parse_worldbank_page, time_period

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "worldbank"
PAGES = [FIXTURES / "en_pop_slum_ur_zs_page1.json", FIXTURES / "en_pop_slum_ur_zs_page2.json"]
API_PATH = "/v2/country/KEN;NGA;UGA;XM/indicator/EN.POP.SLUM.UR.ZS"


def _page(number: int):
    return parse_worldbank_page(PAGES[number - 1].read_bytes(), f"page{number}", "WB:WDI(1.0)")


def _read(inputs: list[str], state: dict | None = None) -> list:
    config = load_config("worldbank", worldbank.WorldBankConfig, overrides={"inputs": inputs})
    return list(worldbank.SOURCE.read(config, state or {}))


def test_first_page_yields_its_eight_country_observations_with_labels_and_attributes():
    page = _page(1)

    assert (page.number, page.count, len(page.observations), page.skipped) == (1, 2, 8, 0)
    kenya_2018 = next(
        o for o in page.observations if o.series_key.endswith("KEN") and o.time_period == "2018"
    )
    assert kenya_2018.to_event_data() == {
        "dataflow": "WB:WDI(1.0)",
        "series_key": "EN.POP.SLUM.UR.ZS.KEN",
        "dimensions": {"INDICATOR": "EN.POP.SLUM.UR.ZS", "REF_AREA": "KEN"},
        "attributes": {"DECIMALS": 1},
        "labels": {
            "INDICATOR": "Population living in slums (% of urban population)",
            "REF_AREA": "Kenya",
        },
        "time_period": "2018",
        "value": 46.1,
    }


def test_aggregate_rows_without_iso3_code_are_skipped_and_counted_not_rejected():
    page = _page(2)

    assert page.skipped == 2
    assert page.refused == []
    assert {o.dimensions["REF_AREA"] for o in page.observations} == {"UGA"}


def test_skipped_aggregates_are_counted_in_the_log(caplog):
    with caplog.at_level("INFO", logger="connectors.sources.observations"):
        _read([str(p) for p in PAGES])

    assert "worldbank: 2 aggregate rows (regions, income groups: no ISO3 code) skipped" in (
        caplog.text
    )


def test_null_value_is_kept_as_a_missing_observation():
    uganda_2014 = next(o for o in _page(2).observations if o.time_period == "2014")

    assert uganda_2014.value is None


@pytest.mark.parametrize(
    ("date", "period"),
    [("2020", "2020"), ("2020M03", "2020-03"), ("2020Q2", "2020-Q2"), ("2020M13", None)],
)
def test_api_dates_become_sdmx_periods(date, period):
    assert time_period(date) == period


def test_item_with_unreadable_date_goes_to_the_dlq_and_the_rest_of_the_page_loads(tmp_path):
    meta, items = orjson.loads(PAGES[0].read_bytes())
    items[2]["date"] = "2016-2017"
    broken = tmp_path / "page.json"
    broken.write_bytes(orjson.dumps([meta, items]))

    out = _read([str(broken)])

    rejects = [i for i in out if isinstance(i, Refused)]
    assert [r.reason for r in rejects] == [
        f"{broken}: [1][2]: date '2016-2017' is not a year, YYYYQn or YYYYMmm"
    ]
    assert rejects[0].key == "EN.POP.SLUM.UR.ZS.KEN"
    assert len([i for i in out if isinstance(i, Record)]) == 7


def test_api_error_response_is_refused_with_its_message():
    error = b'[{"message":[{"id":"120","key":"Invalid value","value":"The provided parameter value is not valid"}]}]'  # noqa: E501

    with pytest.raises(SourceFormatError) as raised:
        parse_worldbank_page(error, "https://api.worldbank.org/v2/x", "WB:WDI(1.0)")

    assert str(raised.value) == (
        "https://api.worldbank.org/v2/x: World Bank API error: "
        "Invalid value (120): The provided parameter value is not valid"
    )


def test_two_saved_pages_send_twelve_country_observations_valid_under_the_contract():
    out = _read([str(p) for p in PAGES])

    records = [i for i in out if isinstance(i, Record)]
    assert len(records) == 12
    assert {r.source for r in records} == {"urn:nso:worldbank"}
    assert {r.stream.topic for r in records} == {"stats.worldbank.observation.v1"}
    contract = get_contract("org.urbanflow.stats.observation.v1")
    for record in records:
        contract.validate_data(record.data)
    assert isinstance(out[-1], Checkpoint) and len(out[-1].state["sent"]) == 12


def test_rerun_with_saved_state_sends_nothing_and_a_revised_value_is_sent_again(tmp_path):
    state = _read([str(p) for p in PAGES])[-1].state
    meta, items = orjson.loads(PAGES[1].read_bytes())
    items[0]["value"] = 47.5  # Uganda 2020 revised
    revised = tmp_path / "page2.json"
    revised.write_bytes(orjson.dumps([meta, items]))

    again = _read([str(PAGES[0]), str(PAGES[1])], state)
    after_revision = _read([str(PAGES[0]), str(revised)], state)

    assert [i for i in again if isinstance(i, Record)] == []
    sent = [i for i in after_revision if isinstance(i, Record)]
    assert [(r.data["series_key"], r.data["time_period"], r.data["value"]) for r in sent] == [
        ("EN.POP.SLUM.UR.ZS.UGA", "2020", 47.5)
    ]


def _api(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
    if path != API_PATH or query.get("format") != "json":
        return 400, "text/xml", b"<error/>"
    number = int(query.get("page", "1"))
    return 200, "application/json;charset=utf-8", PAGES[number - 1].read_bytes()


def test_api_url_is_followed_to_the_last_page_over_http_asking_for_json():
    with serve(_api) as (base, requests):
        out = _read([f"{base}{API_PATH}?per_page=8"])

    assert requests == [
        f"{API_PATH}?per_page=8&format=json",
        f"{API_PATH}?per_page=8&format=json&page=2",
    ]
    assert len([i for i in out if isinstance(i, Record)]) == 12


def test_server_answering_the_wrong_page_is_refused_naming_the_page_url():
    def stuck(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        return 200, "application/json", PAGES[0].read_bytes()  # always page 1

    with serve(stuck) as (base, _), pytest.raises(SourceFormatError) as raised:
        _read([f"{base}{API_PATH}"])

    assert str(raised.value) == (
        f"{base}{API_PATH}?format=json&page=2: asked for page 2, got page 1"
    )


def test_http_error_is_refused_naming_the_url_and_status():
    not_found = serve(lambda p, q: (404, "text/plain", b"no"))
    with not_found as (base, _), pytest.raises(SourceFormatError) as raised:
        _read([f"{base}/v2/nothing"])

    assert "HTTP Error 404" in str(raised.value)
    assert str(raised.value).startswith(f"{base}/v2/nothing?format=json: could not fetch")


def test_invalid_dataflow_setting_is_refused_at_load():
    with pytest.raises(ConfigError, match="dataflow"):
        load_config(
            "worldbank",
            worldbank.WorldBankConfig,
            overrides={"inputs": ["x.json"], "dataflow": "WDI"},
        )
