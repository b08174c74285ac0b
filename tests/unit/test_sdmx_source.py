"""The sdmx source: agencies named from sdmx1's list, incremental pulls with `updatedAfter`,
REST URLs and refusals, DSDs fetched for structure-specific data, and the event ids of
re-published observations, against recorded responses served on 127.0.0.1 (no network)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest
import sdmx
from local_http import serve

from connectors.errors import ConfigError, SourceFormatError
from connectors.sdk import Checkpoint, Record, load_config
from connectors.sources.sdmx import SOURCE, SdmxConfig, SdmxSource, read_feeds
from connectors.sources.sdmx.settings import agency_data_url, known_agencies

REST = Path(__file__).resolve().parents[1] / "fixtures" / "sdmx" / "rest"
XML = "application/vnd.sdmx.genericdata+xml;version=2.1"
SS = "application/vnd.sdmx.structurespecificdata+xml;version=2.1"
STRUCTURE = "application/vnd.sdmx.structure+xml;version=2.1"
#: An observation element, generic (`<generic:Obs>`) or structure-specific (`<Obs .../>`)
OBS = re.compile(rb"<(?:generic:)?Obs[\s>]")


class Recorded(NamedTuple):
    """How an agency answers here: recorded responses (tests/fixtures/sdmx/README.md)."""

    flow: str
    key: str
    #: the answer to data/<flow>/<key>, and its media type
    data: str
    media_type: str
    #: the agency id the answer's references carry: its events come from urn:nso:<maintainer>
    maintainer: str
    #: the answer to the same query with updatedAfter; None: SDMX's NoResultsFound (HTTP 404)
    changes: str | None = None
    #: the structure query the data needs (structure-specific data) and the answer to it
    structure: tuple[str, str] | None = None


RECORDED = {
    # INSEE (France), SDMX-ML 2.1 generic; the changes answer is derived from it (README)
    "INSEE": Recorded(
        "CNA-2010-CONSO-SI-A17",
        "S13.P3.A10-BE.IPCH",
        "insee_cna_2010_conso_si_a17.xml",
        XML,
        "FR1",
        changes="insee_cna_2010_conso_si_a17_changes.xml",
    ),
    # ISTAT (Italy), SDMX-ML 2.1 structure-specific: its DSD is asked for from the same service
    "ISTAT": Recorded(
        "22_289",
        ".IT..1+2.TOTAL.99",
        "istat_22_289.xml",
        SS,
        "IT1",
        structure=(
            "/ISTAT/dataflow/IT1/22_289/1.0?references=datastructure",
            "istat_22_289_structure.xml",
        ),
    ),
    "ECB": Recorded("EXR", "M..EUR.SP00.E", "ecb_exr.xml", XML, "ECB"),
}


@pytest.fixture
def agency_server(monkeypatch: pytest.MonkeyPatch):
    """Every agency in RECORDED answered by a local server, at the paths sdmx1 would query."""

    def route(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        for agency, recorded in RECORDED.items():
            if path.startswith(f"/{agency}/data/{recorded.flow}"):
                if "updatedAfter" in query:
                    if recorded.changes is None:
                        return 404, "text/plain", b"NoResultsFound"
                    return 200, recorded.media_type, (REST / recorded.changes).read_bytes()
                return 200, recorded.media_type, (REST / recorded.data).read_bytes()
            if recorded.structure and path == recorded.structure[0].split("?")[0]:
                return 200, STRUCTURE, (REST / recorded.structure[1]).read_bytes()
        return 404, "text/plain", b"no such resource"

    with serve(route) as (base, requests):
        for agency in RECORDED:
            monkeypatch.setattr(sdmx.source.sources[agency], "url", f"{base}/{agency}")
        yield requests


def _agency_config(agency: str, tmp_path: Path, **settings: object) -> SdmxConfig:
    """`--set agency=<agency> --set flow=... --set key=...` as RECORDED has them; DSDs fetched
    are kept under tmp_path."""
    recorded = RECORDED[agency]
    return SdmxConfig(
        agency=agency,
        flow=recorded.flow,
        key=recorded.key,
        structures_dir=str(tmp_path / "structures"),
        **settings,
    )


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
def test_an_agency_by_name_is_pulled_from_its_recorded_response(
    agency_server, agency, tmp_path
) -> None:
    recorded = RECORDED[agency]
    source = SdmxSource()
    source.clock = _clock("2026-11-30T06:00:00")

    records, state = _run(source, _agency_config(agency, tmp_path), {})

    assert len(records) == len(OBS.findall((REST / recorded.data).read_bytes())) > 0
    data_query = f"/{agency}/data/{recorded.flow}/{recorded.key}"
    assert agency_server == [data_query, *(recorded.structure or ())[:1]]
    assert state["pulled"] == {f"{agency}/{recorded.flow}/{recorded.key}": "2026-11-30T06:00:00Z"}
    assert {r.source for r in records} == {f"urn:nso:{recorded.maintainer.lower()}"}


def test_the_next_pull_asks_for_changes_since_the_last_one_and_sends_only_the_revision(
    agency_server, tmp_path
) -> None:
    recorded = RECORDED["INSEE"]
    source = SdmxSource()
    source.clock = _clock("2026-11-20T06:00:00", "2026-11-27T06:00:00")
    config = _agency_config("INSEE", tmp_path)

    first, state = _run(source, config, {})
    second, state = _run(source, config, state)

    assert agency_server[1] == (
        f"/INSEE/data/{recorded.flow}/{recorded.key}?updatedAfter=2026-11-20T06%3A00%3A00Z"
    )
    assert len(first) == len(OBS.findall((REST / recorded.data).read_bytes())) == 2
    assert [(r.data["series_key"], r.data["time_period"], r.data["value"]) for r in first] == [
        ("S13.P3.A10-BE.IPCH", "2014", 89.9),
        ("S13.P3.A10-BE.IPCH", "2013", 92.7),
    ]
    # the changes answer holds 2014 revised to 90.3 (and 2013 unchanged, so left out)
    assert [(r.data["series_key"], r.data["time_period"], r.data["value"]) for r in second] == [
        ("S13.P3.A10-BE.IPCH", "2014", 90.3)
    ]
    assert state["pulled"][f"INSEE/{recorded.flow}/{recorded.key}"] == "2026-11-27T06:00:00Z"


def test_no_results_to_an_incremental_pull_is_nothing_new_not_an_error(
    agency_server, tmp_path
) -> None:
    recorded = RECORDED["ECB"]
    source = SdmxSource()
    source.clock = _clock("2026-11-20T06:00:00", "2026-11-27T06:00:00")
    config = _agency_config("ECB", tmp_path)
    _, state = _run(source, config, {})

    again, state = _run(source, config, state)

    assert again == []
    assert "updatedAfter=" in agency_server[-1]
    assert state["pulled"][f"ECB/{recorded.flow}/{recorded.key}"] == "2026-11-27T06:00:00Z"


def test_incremental_false_always_pulls_everything_and_sends_nothing_unchanged(
    agency_server, tmp_path
) -> None:
    recorded = RECORDED["ISTAT"]
    assert recorded.structure is not None
    source = SdmxSource()
    source.clock = _clock("2026-11-20T06:00:00", "2026-11-27T06:00:00")
    config = _agency_config("ISTAT", tmp_path, incremental=False)

    first, state = _run(source, config, {})
    again, _ = _run(source, config, state)

    data_query = f"/ISTAT/data/{recorded.flow}/{recorded.key}"
    assert agency_server == [data_query, recorded.structure[0], data_query]  # the DSD kept
    assert len(first) == len(OBS.findall((REST / recorded.data).read_bytes())) == 8
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
#: data query -> (its structure-specific answer, the structure query it needs, the answer to it)
SERVED_WITHOUT_DSD = {
    # recorded ECB specimens: SDMX-ML 2.1 data naming its DSD ECB:ECB_EXR_NG(1.0)
    "/ws/data/EXR/M..EUR.SP00.E": (
        "ecb_exr_ml21_ss_ts.xml",
        "/ws/datastructure/ECB/ECB_EXR_NG/1.0?references=all",
        "ecb_exr_ml21_structure.xml",
    ),
    # recorded ISTAT answer whose data set's structureRef is not its header's structureID: the
    # dataflow its header names is asked for with its DSD
    "/ws/data/22_289/.IT..1+2.TOTAL.99": (
        "rest/istat_22_289.xml",
        "/ws/dataflow/IT1/22_289/1.0?references=datastructure",
        "rest/istat_22_289_structure.xml",
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


def test_structure_specific_data_naming_another_structure_id_is_read_with_the_dsd_it_names() -> (
    None
):
    """ISTAT's data set says structureRef="IT1_DCIS_POPRES1_1_0", its header structureID
    "IT1_22_289_1_0": sdmx1 then reads it only when given the DSD, so the DSD is found from
    what the header names (its dataflow IT1:22_289(1.0), the DSD in its namespace URN)."""
    data = REST / "istat_22_289.xml"
    dsd = REST / "istat_22_289_structure.xml"
    others = [FIXTURES / "ecb_exr_ml21_structure.xml", FIXTURES / "ml30_two_measures_structure.xml"]
    with pytest.raises(sdmx.exceptions.XMLParseError, match="No DSD when creating DataSet"):
        sdmx.read_sdmx(data)  # sdmx1 alone

    observations = read_feeds([*others, dsd, data])  # found by the DSD its namespace names

    assert len(observations) == len(OBS.findall(data.read_bytes())) == 8
    assert {o.dataflow for o in observations} == {"IT1:DCIS_POPRES1(1.0)"}
    assert [(o.series_key, o.time_period, o.value) for o in observations[3:5]] == [
        ("A.IT.JAN.1.TOTAL.99", "2022", 28747417),
        ("A.IT.JAN.2.TOTAL.99", "2019", 30685478),
    ]
    assert observations[3].attributes == {"OBS_STATUS": "e"}
    with pytest.raises(SourceFormatError) as caught:
        read_feeds([*others, data])
    assert str(caught.value) == (
        f"{data}: structure-specific data needs its data structure definition "
        "IT1:DCIS_POPRES1(1.0): add the structure message (DSD) to the inputs"
    )
