"""The sdmx source: agencies named from sdmx1's list, incremental pulls with `updatedAfter`,
REST URLs and refusals, against recorded responses served on 127.0.0.1 (no network)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sdmx
from local_http import serve

from connectors.errors import ConfigError, SourceFormatError
from connectors.sdk import Checkpoint, Record, load_config
from connectors.sources.sdmx import SOURCE, SdmxConfig, SdmxSource
from connectors.sources.sdmx.settings import agency_data_url, known_agencies

REST = Path(__file__).resolve().parents[1] / "fixtures" / "sdmx" / "rest"
XML = "application/vnd.sdmx.genericdata+xml;version=2.1"
#: agency -> (dataflow, key, recorded full answer, recorded answer to updatedAfter or None)
RECORDED = {
    "UNICEF": (
        "GLOBAL_DATAFLOW",
        "KEN+UGA.WS_PPL_W-SM._T",
        "unicef_global_dataflow.xml",
        "unicef_global_dataflow_changes.xml",
    ),
    "ECB": ("EXR", "M..EUR.SP00.E", "ecb_exr.xml", None),
}


@pytest.fixture
def agency_server(monkeypatch: pytest.MonkeyPatch):
    """Every agency in RECORDED answered by a local server, at the path sdmx1 would query."""

    def route(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        for agency, (flow, _key, full, changes) in RECORDED.items():
            if path.startswith(f"/{agency}/data/{flow}"):
                if "updatedAfter" in query:
                    if changes is None:
                        return 404, "text/plain", b"NoResultsFound"
                    return 200, XML, (REST / changes).read_bytes()
                return 200, XML, (REST / full).read_bytes()
        return 404, "text/plain", b"no such resource"

    with serve(route) as (base, requests):
        for agency in RECORDED:
            monkeypatch.setattr(sdmx.source.sources[agency], "url", f"{base}/{agency}")
        yield requests


def _clock(*moments: str):
    times = iter(datetime.fromisoformat(m).replace(tzinfo=UTC) for m in moments)
    return lambda: next(times)


def _run(source: SdmxSource, config: SdmxConfig, state: dict) -> tuple[list[Record], dict]:
    records, new_state = [], state
    for item in source.read(config, state):
        if isinstance(item, Record):
            records.append(item)
        elif isinstance(item, Checkpoint):
            new_state = item.state
    return records, new_state


def test_known_agencies_come_from_sdmx1() -> None:
    assert {"UNICEF", "ECB", "ESTAT", "IMF", "OECD"} <= set(known_agencies())
    assert agency_data_url("UNICEF", "GLOBAL_DATAFLOW", "KEN..").startswith(
        "https://sdmx.data.unicef.org/ws/public/sdmxapi/rest/data/GLOBAL_DATAFLOW/KEN.."
    )


def test_agency_and_flow_are_set_with_set_options() -> None:
    config = load_config("sdmx", SdmxConfig, assignments=["agency=UNICEF", "flow=GLOBAL_DATAFLOW"])

    assert (config.agency, config.flow, config.inputs) == ("UNICEF", "GLOBAL_DATAFLOW", [])


@pytest.mark.parametrize("agency", sorted(RECORDED))
def test_an_agency_by_name_is_pulled_from_its_recorded_response(agency_server, agency) -> None:
    flow, key, full, _ = RECORDED[agency]
    source = SdmxSource()
    source.clock = _clock("2026-11-30T06:00:00")

    records, state = _run(source, SdmxConfig(agency=agency, flow=flow, key=key), {})

    expected = (REST / full).read_bytes().count(b"<generic:Obs>")
    assert len(records) == expected > 0
    assert agency_server == [f"/{agency}/data/{flow}/{key}"]
    assert state["pulled"] == {f"{agency}/{flow}/{key}": "2026-11-30T06:00:00Z"}
    assert {r.source for r in records} == {f"urn:nso:{agency.lower()}"}


def test_the_next_pull_asks_for_changes_since_the_last_one_and_sends_only_the_revision(
    agency_server,
) -> None:
    flow, key, _, _ = RECORDED["UNICEF"]
    source = SdmxSource()
    source.clock = _clock("2026-11-20T06:00:00", "2026-11-27T06:00:00")
    config = SdmxConfig(agency="UNICEF", flow=flow, key=key)

    first, state = _run(source, config, {})
    second, state = _run(source, config, state)

    assert agency_server[1] == (f"/UNICEF/data/{flow}/{key}?updatedAfter=2026-11-20T06%3A00%3A00Z")
    assert len(first) == 6
    assert [(r.data["series_key"], r.data["time_period"], r.data["value"]) for r in second] == [
        ("KEN.WS_PPL_W-SM._T", "2022", 64.2)
    ]
    assert state["pulled"][f"UNICEF/{flow}/{key}"] == "2026-11-27T06:00:00Z"


def test_no_results_to_an_incremental_pull_is_nothing_new_not_an_error(agency_server) -> None:
    flow, key, _, _ = RECORDED["ECB"]
    source = SdmxSource()
    source.clock = _clock("2026-11-20T06:00:00", "2026-11-27T06:00:00")
    config = SdmxConfig(agency="ECB", flow=flow, key=key)
    _, state = _run(source, config, {})

    again, state = _run(source, config, state)

    assert again == []
    assert "updatedAfter=" in agency_server[-1]
    assert state["pulled"][f"ECB/{flow}/{key}"] == "2026-11-27T06:00:00Z"


def test_incremental_false_always_pulls_everything_and_sends_nothing_unchanged(
    agency_server,
) -> None:
    flow, key, _, _ = RECORDED["UNICEF"]
    source = SdmxSource()
    source.clock = _clock("2026-11-20T06:00:00", "2026-11-27T06:00:00")
    config = SdmxConfig(agency="UNICEF", flow=flow, key=key, incremental=False)

    _, state = _run(source, config, {})
    again, _ = _run(source, config, state)

    assert "updatedAfter" not in agency_server[-1]
    assert again == []


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"agency": "NOPE", "flow": "X"}, "agency 'NOPE' is not in sdmx1's list; known: ABS,"),
        ({"agency": "UNICEF"}, "agency UNICEF needs a dataflow: --set flow=<ID>"),
        ({"flow": "X"}, "flow is set without agency"),
        ({}, "no inputs"),
    ],
)
def test_bad_agency_settings_are_refused_in_one_line(settings: dict, expected: str) -> None:
    config = SdmxConfig(**settings)

    with pytest.raises(ConfigError) as caught:
        list(SOURCE.read(config, {}))

    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
    assert any(expected in problem for problem in SOURCE.check(config))


def test_a_rest_url_answering_an_error_is_refused_naming_the_url() -> None:
    with serve(lambda path, query: (500, "text/plain", b"boom")) as (base, _):
        url = f"{base}/data/X"
        with pytest.raises(SourceFormatError) as caught:
            list(SOURCE.read(SdmxConfig(inputs=[url]), {}))

    assert str(caught.value) == f"{url}: could not fetch: HTTP 500 Internal Server Error"


def test_a_rest_url_answering_sdmx_ml_is_read_by_content() -> None:
    body = (REST / "ecb_exr.xml").read_bytes()
    with serve(lambda path, query: (200, "application/xml", body)) as (base, _):
        records, _ = _run(SOURCE, SdmxConfig(inputs=[f"{base}/data/EXR"]), {})

    assert len(records) == 12
