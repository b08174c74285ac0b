"""The sdmx source: agencies named from sdmx1's list, incremental pulls with `updatedAfter`,
REST URLs and refusals, DSDs fetched for structure-specific data, and the event ids of
re-published observations, against recorded responses served on 127.0.0.1 (no network)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sdmx
from local_http import serve

from connectors.errors import ConfigError, SourceFormatError
from connectors.sdk import Checkpoint, Record, load_config
from connectors.sources.sdmx import SOURCE, SdmxConfig, SdmxSource, read_feeds
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


def _csv_message(tmp_path: Path, name: str, action: str, value: str = "83.2") -> Path:
    path = tmp_path / name
    path.write_text(
        "STRUCTURE,STRUCTURE_ID,ACTION,FREQ,REF_AREA,CITY,SERIES,SEX,TIME_PERIOD,OBS_VALUE\n"
        f"dataflow,ZAMSTAT:DF_CITY_SDG(1.0),{action},A,ZMB,ZMLUN,EG_ELC_ACCS,F,2020,{value}\n",
        encoding="utf-8",
    )
    return path


def test_an_observation_published_again_after_a_delete_is_a_new_event(tmp_path) -> None:
    upsert = _csv_message(tmp_path, "upsert.csv", "I")
    delete = _csv_message(tmp_path, "delete.csv", "D", "")
    replace = _csv_message(tmp_path, "replace.csv", "R")
    sent, state = [], {}
    for message in (upsert, delete, replace):
        records, state = _run(SOURCE, SdmxConfig(inputs=[str(message)]), state)
        sent += records

    assert [r.data.get("action", "upsert") for r in sent] == ["upsert", "delete", "upsert"]
    assert sent[2].data == sent[0].data  # the same content ...
    assert len({r.event_id for r in sent}) == 3  # ... but a new event, not a copy to drop
    assert state["published"] == {"ZAMSTAT:DF_CITY_SDG(1.0)|A.ZMB.ZMLUN.EG_ELC_ACCS.F|2020": 3}


def test_a_rerun_from_the_same_state_resends_the_same_event_ids(tmp_path) -> None:
    """A run that crashed after Kafka confirmed but before its checkpoint was saved sends again:
    the ids must repeat so the warehouse drops the copies."""
    _, state = _run(SOURCE, SdmxConfig(inputs=[str(_csv_message(tmp_path, "a.csv", "I"))]), {})
    revised = SdmxConfig(inputs=[str(_csv_message(tmp_path, "b.csv", "R", "90.1"))])

    first, _ = _run(SOURCE, revised, state)
    again, _ = _run(SOURCE, revised, state)

    assert [r.event_id for r in again] == [r.event_id for r in first]
    assert [r.data["value"] for r in first] == [90.1]
    assert "published" not in state  # sent once: implied by state["sent"], nothing stored


FIXTURES = REST.parent
SS = "application/vnd.sdmx.structurespecificdata+xml;version=2.1"
STRUCTURE = "application/vnd.sdmx.structure+xml;version=2.1"
#: data query -> (its structure-specific answer, the structure query it needs, the answer to it)
SERVED_WITHOUT_DSD = {
    # recorded ECB specimens: SDMX-ML 2.1 data naming its DSD ECB:ECB_EXR_NG(1.0)
    "/ws/data/EXR/M..EUR.SP00.E": (
        "ecb_exr_ml21_ss_ts.xml",
        "/ws/datastructure/ECB/ECB_EXR_NG/1.0?references=all",
        "ecb_exr_ml21_structure.xml",
    ),
    # SDMX-ML 3.0 data naming only its dataflow: the dataflow is asked for with its DSD
    "/ws/data/DF_CITY_SDG_2M/A.KEN..EN_LND_SLUM._T": (
        "ml30_two_measures_ss.xml",
        "/ws/dataflow/KNBS/DF_CITY_SDG_2M/1.0?references=datastructure",
        "ml30_two_measures_structure.xml",
    ),
}


def _service(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
    """A REST service answering the data and structure queries of SERVED_WITHOUT_DSD."""
    for data_path, (data, structure_query, structure) in SERVED_WITHOUT_DSD.items():
        if path == data_path:
            return 200, SS, (FIXTURES / data).read_bytes()
        if path == structure_query.split("?")[0]:
            return 200, STRUCTURE, (FIXTURES / structure).read_bytes()
    return 404, "text/plain", b"no such resource"


@pytest.mark.parametrize("data_path", sorted(SERVED_WITHOUT_DSD))
def test_structure_specific_data_from_a_url_fetches_its_dsd_from_the_service_once(
    tmp_path, data_path
) -> None:
    data, structure_query, structure = SERVED_WITHOUT_DSD[data_path]
    with_dsd_given = read_feeds([FIXTURES / structure, FIXTURES / data])
    cache = tmp_path / "structures"
    with serve(_service) as (base, requests):
        config = SdmxConfig(inputs=[base + data_path], structures_dir=str(cache))
        first, _ = _run(SdmxSource(), config, {})
        again, _ = _run(SdmxSource(), config, {})  # a fresh state: everything sent again

    assert requests == [data_path, structure_query, data_path]  # the DSD asked for once
    assert [r.data for r in first] == [r.data for r in again]
    assert [r.data for r in first] == [o.to_event_data() for o in with_dsd_given]
    assert len(first) == (FIXTURES / data).read_bytes().count(b"<Obs ") > 0
    # kept as the service sent it, under the source's state
    assert [p.read_bytes() for p in cache.iterdir()] == [(FIXTURES / structure).read_bytes()]


def test_a_dsd_the_service_cannot_give_refuses_the_run_naming_its_url(tmp_path) -> None:
    data = (FIXTURES / "ecb_exr_ml21_ss_ts.xml").read_bytes()
    route = {"/ws/data/EXR/M": (200, SS, data)}
    with serve(lambda path, query: route.get(path, (404, "text/plain", b"no"))) as (base, _):
        config = SdmxConfig(inputs=[f"{base}/ws/data/EXR/M"], structures_dir=str(tmp_path))
        with pytest.raises(SourceFormatError) as caught:
            list(SOURCE.read(config, {}))

    assert str(caught.value) == (
        f"{base}/ws/datastructure/ECB/ECB_EXR_NG/1.0?references=all: "
        "could not fetch: HTTP 404 Not Found"
    )
    assert list(tmp_path.iterdir()) == []
