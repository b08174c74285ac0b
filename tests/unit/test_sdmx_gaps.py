"""Where sdmx1 2.28 falls short, shown on specimens, and what our code does instead.

DESIGN.md §8: a hand-written reader stays only where it covers a gap. Each test here pins one gap
of the pinned sdmx1 (and our answer), so when an upgrade closes a gap the test fails and tells us
which of our code can go.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import pytest
import sdmx

from connectors.sources.sdmx import read_payload
from connectors.sources.sdmx.helpers import parse_sdmx_csv, parse_sdmx_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sdmx"


def _sdmx1(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sdmx.read_sdmx(path)


def test_gap_sdmx1_cannot_read_sdmx_json_2_0_which_our_reader_reads() -> None:
    path = FIXTURES / "ecb_exr_json2_time_series.json"

    with pytest.raises(TypeError):  # sdmx1 2.28 reads 2.0 with its 1.0 reader
        _sdmx1(path)

    assert len(parse_sdmx_json(path.read_bytes(), path.name)) == 4


def test_gap_sdmx1_reads_sdmx_json_annotation_indexes_as_attributes() -> None:
    """SDMX-JSON 1.0 in the field guide's layout: value, OBS_STATUS, then an annotation index.
    sdmx1 pairs the array's tail with attributes by position; our reader keeps the annotation."""
    message = json.loads((FIXTURES / "ecb_exr_json1_action_delete.json").read_bytes())
    structure = message["structure"]
    structure["annotations"] = [{"id": "NOTE", "title": "Provisional", "type": "remark"}]
    structure["attributes"]["observation"] = [
        a for a in structure["attributes"]["observation"] if a["id"] == "OBS_STATUS"
    ]
    replace = message["dataSets"][0]
    for series in replace["series"].values():
        for key, entry in series["observations"].items():
            series["observations"][key] = [entry[0], 0, 0]  # value, OBS_STATUS, annotation 0
    payload = json.dumps(message).encode()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sdmx.read_sdmx(io.BytesIO(payload), format="JSON")
    ours = [o for o in parse_sdmx_json(payload, "x.json") if o.action == "upsert"]

    their_obs = [o for ds in theirs.data for o in ds.obs if o.value is not None]
    assert their_obs and not any(getattr(o, "annotations", None) for o in their_obs)
    assert all(
        o.annotations == ({"id": "NOTE", "title": "Provisional", "type": "remark"},) for o in ours
    )
    assert all(o.attributes["OBS_STATUS"] == "A" for o in ours)


@pytest.mark.parametrize(
    ("name", "their_error"),
    [("csv_v1.csv", "Invalid SDMX-CSV 2.0.0: .DATAFLOW."), ("csv_v2.csv", None)],
)
def test_gap_sdmx1_reads_sdmx_csv_2_only_and_only_with_a_dsd(
    name: str, their_error: str | None
) -> None:
    text = (FIXTURES / name).read_text(encoding="utf-8")

    with warnings.catch_warnings(), pytest.raises((ValueError, AttributeError), match=their_error):
        warnings.simplefilter("ignore")
        sdmx.read_sdmx(io.BytesIO(text.encode()), format="CSV")

    assert len(parse_sdmx_csv(text, name)) == 3


def test_gap_sdmx1_drops_the_data_set_action_of_sdmx_ml() -> None:
    payload = (
        (FIXTURES / "ecb_exr_ml21_generic_ts.xml")
        .read_bytes()
        .replace(
            b'<message:DataSet structureRef="STR1">',
            b'<message:DataSet structureRef="STR1" action="Delete">',
        )
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sdmx.read_sdmx(io.BytesIO(payload), format="XML")

    assert [ds.action for ds in theirs.data] == [None]
    assert {o.action for o in read_payload(payload, "x.xml", "x.xml", {})} == {"delete"}


def _comparable(dimensions: dict, period: str, value: object, attributes: dict) -> tuple:
    return (tuple(sorted(dimensions.items())), period, value, tuple(sorted(attributes.items())))


def test_where_sdmx1_reads_sdmx_json_our_reader_gives_the_same_observations() -> None:
    """Conformance (DESIGN.md §8): our reader is measured ~3x faster than sdmx1 on SDMX-JSON 1.0
    (README, Benchmarks), so it must give the same observations where sdmx1 reads at all."""
    path = FIXTURES / "ecb_exr_json1_action_delete.json"
    theirs = set()
    for data_set in _sdmx1(path).data:
        for obs in data_set.obs:
            key = {k: str(v.value) for k, v in obs.key.values.items()}
            period = key.pop("TIME_PERIOD")
            attributes = {k: str(v.value) for k, v in obs.attrib.items()}
            theirs.add(_comparable(key, period, obs.value, attributes))

    ours = {
        _comparable(
            o.dimensions, o.time_period, o.value, {k: str(v) for k, v in o.attributes.items()}
        )
        for o in parse_sdmx_json(path.read_bytes(), path.name)
    }

    assert len(theirs) == 3
    assert ours == theirs
