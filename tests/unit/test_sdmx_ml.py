"""SDMX-ML 2.1 and 3.0 (generic and structure-specific) read through sdmx1 onto our observations.

Each specimen's observations are counted independently in the test (by counting its `Obs`
elements in the XML text), and compared with what the source reads.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from lxml import etree

from connectors.errors import SourceFormatError
from connectors.events import make_event
from connectors.sdk import Record
from connectors.sources.sdmx import OBSERVATION_V2, SOURCE, SdmxConfig, read_feeds, read_payload
from connectors.sources.sdmx.ml import data_set_actions, parse_sdmx_ml, read_structures

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "sdmx"
CONTRACT_V1 = REPO / "connectors" / "contracts" / "org.urbanflow.stats.observation.v1.json"

GENERIC_21 = FIXTURES / "ecb_exr_ml21_generic_ts.xml"
SS_21 = FIXTURES / "ecb_exr_ml21_ss_ts.xml"
DSD_21 = FIXTURES / "ecb_exr_ml21_structure.xml"
SS_30 = FIXTURES / "ecb_exr_ml30_ss.xml"
DSD_30 = FIXTURES / "ecb_exr_ml30_structure.xml"


def _count_obs(path: Path) -> int:
    return len(re.findall(rb"<(?:generic:)?Obs[\s>]", path.read_bytes()))


def _by_key(observations):
    return {(o.series_key, o.time_period): o for o in observations}


def test_generic_21_time_series_keeps_every_observation_dimension_and_attribute() -> None:
    observations = parse_sdmx_ml(GENERIC_21.read_bytes(), GENERIC_21.name)

    assert len(observations) == _count_obs(GENERIC_21) == 12
    chf = _by_key(observations)[("M.CHF.EUR.SP00.E", "2010-08")]
    assert chf.dataflow == "ECB:ECB_EXR_NG(1.0)"
    assert chf.dimensions == {
        "FREQ": "M",
        "CURRENCY": "CHF",
        "CURRENCY_DENOM": "EUR",
        "EXR_TYPE": "SP00",
        "EXR_VAR": "E",
    }
    assert chf.value == 1.3413
    assert chf.attributes == {
        "DECIMALS": "4",
        "UNIT_MEASURE": "CHF",
        "UNIT_MULT": "0",
        "COLL_METHOD": "Average of observations through period",
        "TITLE": "ECB reference exchange rate, Swiss franc/Euro",
        "OBS_STATUS": "A",
        "CONF_STATUS_OBS": "F",
    }
    assert chf.action == "upsert"


def test_structure_specific_21_with_its_dsd_reads_the_same_as_generic() -> None:
    structures = read_structures(DSD_21.read_bytes(), DSD_21.name)

    specific = parse_sdmx_ml(SS_21.read_bytes(), SS_21.name, structures)
    generic = parse_sdmx_ml(GENERIC_21.read_bytes(), GENERIC_21.name)

    assert len(specific) == _count_obs(SS_21)
    assert sorted(o.to_event_data().items().__repr__() for o in specific) == sorted(
        o.to_event_data().items().__repr__() for o in generic
    )


def test_structure_specific_without_its_dsd_is_refused_naming_the_dsd() -> None:
    with pytest.raises(SourceFormatError) as caught:
        parse_sdmx_ml(SS_21.read_bytes(), "feeds/ecb.xml")

    assert str(caught.value) == (
        "feeds/ecb.xml: structure-specific data needs its data structure definition "
        "ECB:ECB_EXR_NG(1.0): add the structure message (DSD) to the inputs"
    )


def test_structure_specific_30_with_complex_attributes_reads_every_observation() -> None:
    structures = read_structures(DSD_30.read_bytes(), DSD_30.name)

    observations = parse_sdmx_ml(SS_30.read_bytes(), SS_30.name, structures)

    assert len(observations) == _count_obs(SS_30) == 3
    first = _by_key(observations)[("A.CAD.EUR.SP00.A", "2017")]
    assert first.dataflow == "ECB:EXR(1.0)"
    assert first.value == pytest.approx(1.46472274509804)
    assert first.attributes["UNIT"] == "CAD"
    # a multi-valued, multilingual SDMX 3.0 attribute: English texts joined
    assert first.attributes["TITLE"] == (
        "Some English Text;Additional English Text where lang defaults to en"
    )


def test_a_folder_with_a_dsd_and_data_reads_the_data_with_that_dsd(tmp_path: Path) -> None:
    for path in (DSD_21, SS_21):
        (tmp_path / path.name).write_bytes(path.read_bytes())

    observations = read_feeds([tmp_path])

    assert len(observations) == 12
    assert "UNIT_MEASURE" not in observations[0].dimensions


def test_reading_21_structure_specific_then_30_in_one_process_works() -> None:
    """sdmx1 2.28 fails to import its 3.0 reader after a 2.1 structure-specific read; ml.py
    imports both first. Run in a fresh interpreter so nothing imported earlier hides the bug."""
    script = f"""
from pathlib import Path
from connectors.sources.sdmx.ml import parse_sdmx_ml, read_structures
s21 = read_structures(Path({str(DSD_21)!r}).read_bytes(), "dsd21")
parse_sdmx_ml(Path({str(SS_21)!r}).read_bytes(), "ss21", s21)
s30 = read_structures(Path({str(DSD_30)!r}).read_bytes(), "dsd30")
print(len(parse_sdmx_ml(Path({str(SS_30)!r}).read_bytes(), "ss30", s30)))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


def test_a_delete_data_set_in_sdmx_ml_becomes_deletions() -> None:
    payload = GENERIC_21.read_bytes().replace(
        b'<message:DataSet structureRef="STR1">',
        b'<message:DataSet structureRef="STR1" action="Delete">',
    )

    observations = parse_sdmx_ml(payload, "delete.xml")

    assert data_set_actions(payload) == ["delete"]
    assert len(observations) == 12
    assert {o.action for o in observations} == {"delete"}
    assert observations[0].to_event_data()["action"] == "delete"


def test_the_header_data_set_action_applies_to_data_sets_without_their_own() -> None:
    payload = GENERIC_21.read_bytes().replace(
        b"</message:Structure>\n\t</message:Header>",
        b"</message:Structure>\n\t\t<message:DataSetAction>Delete</message:DataSetAction>"
        b"\n\t</message:Header>",
    )

    assert data_set_actions(payload) == ["delete"]
    assert {o.action for o in parse_sdmx_ml(payload, "x.xml")} == {"delete"}


def test_plain_sdmx_ml_observations_are_valid_v1_payloads() -> None:
    validator = Draft202012Validator(json.loads(CONTRACT_V1.read_text(encoding="utf-8")))

    for observation in parse_sdmx_ml(GENERIC_21.read_bytes(), GENERIC_21.name):
        validator.validate(observation.to_event_data())


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", "file is empty"),
        (b"<notsdmx/>", "not a readable SDMX-ML message"),
        (b"<?xml version='1.0'?><message:GenericData", "not a readable SDMX-ML message"),
    ],
)
def test_unreadable_xml_is_refused_with_one_line_naming_the_input(
    payload: bytes, expected: str
) -> None:
    with pytest.raises(SourceFormatError) as caught:
        read_payload(payload, "feeds/bad.xml", "bad.xml", {})

    message = str(caught.value)
    assert message.startswith("feeds/bad.xml: ")
    assert expected in message
    assert "\n" not in message


def test_a_structure_message_given_as_data_is_refused() -> None:
    with pytest.raises(SourceFormatError, match="not an SDMX data message"):
        parse_sdmx_ml(DSD_21.read_bytes(), "dsd.xml")


SS_30_TWO_MEASURES = FIXTURES / "ml30_two_measures_ss.xml"
DSD_30_TWO_MEASURES = FIXTURES / "ml30_two_measures_structure.xml"
_SDMX30_STRUCTURE = "{http://www.sdmx.org/resources/sdmxml/schemas/v3_0/structure}"


def _measures_in_xml(data: Path, dsd: Path) -> dict[tuple[str, str, str], dict[str, float]]:
    """(city, sex, period) -> measures of each Obs, read with lxml alone: the Measure ids the
    DSD declares, then each Obs attribute so named (SDMX-ML 3.0 structure-specific data)."""
    measure_ids = [m.get("id") for m in etree.parse(dsd).iter(f"{_SDMX30_STRUCTURE}Measure")]
    found = {}
    for obs in etree.parse(data).iter("Obs"):
        series = obs.getparent()
        key = (series.get("CITY"), series.get("SEX"), obs.get("TIME_PERIOD"))
        found[key] = {m: float(obs.get(m)) for m in measure_ids if obs.get(m) is not None}
    return found


def test_structure_specific_30_with_two_measures_sends_both_in_v2_events() -> None:
    """sdmx1 2.28 alone refuses this message (KeyError on the second measure)."""
    expected = _measures_in_xml(SS_30_TWO_MEASURES, DSD_30_TWO_MEASURES)
    config = SdmxConfig(inputs=[str(DSD_30_TWO_MEASURES), str(SS_30_TWO_MEASURES)])
    records = [item for item in SOURCE.read(config, {}) if isinstance(item, Record)]

    sent = {
        (r.data["dimensions"]["CITY"], r.data["dimensions"]["SEX"], r.data["time_period"]): r
        for r in records
    }
    assert len(records) == len(sent) == len(expected) == _count_obs(SS_30_TWO_MEASURES) == 5
    assert {k: r.data["measures"] for k, r in sent.items()} == expected
    assert sum(len(m) for m in expected.values()) == 9  # one observation omits SLUM_POP
    assert {r.stream.event_type for r in records} == {OBSERVATION_V2}
    for r in records:  # each a valid v2 event (make_event validates against the contract)
        make_event(OBSERVATION_V2, r.source, r.data, event_id=r.event_id)
    assert all(r.data["value"] == r.data["measures"]["OBS_VALUE"] for r in records)
    assert sent[("KENBO", "_T", "2020")].data["measures"] == {
        "OBS_VALUE": 55.2,
        "SLUM_POP": 2530500.0,
    }
    assert sent[("KENBO", "_T", "2020")].data["attributes"] == {
        "UNIT_MEASURE": "PT",
        "OBS_STATUS": "A",
    }
