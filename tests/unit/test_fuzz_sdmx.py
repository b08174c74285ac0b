"""No traceback, ever: thousands of malformed and mutated SDMX-JSON, SDMX-ML and SDMX-CSV messages.

A seeded mutator (so a failure reproduces from its case number) derives each input from a valid
specimen: truncations, byte flips, inserted and duplicated runs, wrong encodings, huge numbers,
values of the wrong JSON type, deep nesting, XML entity bombs and external entities. Whatever
comes in, `read_payload` must either return observations whose event data builds, or raise
`SourceFormatError` whose one-line message names the input and the problem; nothing else.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from fuzzing import mutate_json

from connectors.errors import SourceFormatError
from connectors.sources.sdmx import read_payload
from connectors.sources.sdmx.ml import read_structures

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sdmx"
CASES = 2_000
SEED = 20261201

JSON_SPECIMENS = [
    "ecb_exr_json2_time_series.json",
    "ecb_exr_json2_flat.json",
    "ecb_exr_json2_action_delete.json",
    "ecb_exr_json1_action_delete.json",
    "json_v2_series.json",
    "json_v1_series.json",
]
XML_SPECIMENS = [
    "ecb_exr_ml21_generic_ts.xml",
    "ecb_exr_ml21_ss_ts.xml",
    "ml30_two_measures_ss.xml",  # measures read with lxml beside sdmx1
    "rest/insee_cna_2010_conso_si_a17.xml",  # recorded answers of national statistics offices
    "rest/istat_22_289.xml",
]
#: The DSDs the structure-specific specimens need.
DSD_SPECIMENS = [
    "ecb_exr_ml21_structure.xml",
    "ml30_two_measures_structure.xml",
    "rest/istat_22_289_structure.xml",
]
CSV_SPECIMENS = ["csv_v1.csv", "csv_v2.csv", "csv_v2_labels.csv"]

HUGE = ["1e999", "-1e999", "9" * 400, "NaN", "Infinity", "1" * 5000, "-0", "0x1F"]
XML_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<message:GenericData xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message">
&lol9;</message:GenericData>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<message:GenericData xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message">
&x;</message:GenericData>"""


#: What an SDMX-JSON node may become: wrong types, and values shaped like SDMX ones.
SDMX_ODD_JSON = [
    None,
    True,
    -1,
    0,
    10**30,
    1e308,
    "",
    "x",
    "9" * 50,
    [],
    {},
    [None],
    {"id": None},
    "0:0",
]


def _mutate_bytes(data: bytes, rng: random.Random, kind: str) -> bytes:
    choice = rng.randrange(10)
    if choice == 0:
        return data[: rng.randrange(len(data) + 1)]
    if choice == 1:
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        return bytes(out)
    if choice == 2:
        at = rng.randrange(len(data))
        return data[:at] + rng.randbytes(rng.randint(1, 40)) + data[at:]
    if choice == 3:
        start = rng.randrange(len(data))
        end = min(len(data), start + rng.randint(1, 400))
        return data[:start] + data[start:end] * rng.randint(2, 5) + data[end:]
    if choice == 4:
        start = rng.randrange(len(data))
        return data[:start] + data[start + rng.randint(1, 200) :]
    if choice == 5:
        return data.decode("utf-8", "replace").encode(
            rng.choice(["utf-16", "utf-32", "cp1252", "latin-1"]), "replace"
        )
    if choice == 6:
        text = data.decode("utf-8", "replace")
        digits = [i for i, c in enumerate(text) if c.isdigit()]
        if digits:
            at = rng.choice(digits)
            text = text[:at] + rng.choice(HUGE) + text[at + 1 :]
        return text.encode()
    if choice == 7 and kind == "json":
        return mutate_json(rng, data, SDMX_ODD_JSON)
    if choice == 7 and kind == "xml":
        return rng.choice(
            [XML_BOMB, XXE, data.replace(b"<generic:Obs>", b"<generic:Obs><generic:Obs>", 1)]
        )
    if choice == 8:
        depth = rng.choice([50, 5_000, 100_000])
        opener, closer = {"json": (b"[", b"]"), "xml": (b"<a>", b"</a>"), "csv": (b'"', b'"')}[kind]
        return opener * depth + closer * depth
    return rng.choice(
        [b"", b"\x00" * 64, b"\xef\xbb\xbf", b"{}", b"<x/>", b"a,b\n1,2\n", data + data]
    )


def _check(payload: bytes, origin: str, hint: str, structures: dict) -> str:
    try:
        observations = read_payload(payload, origin, hint, structures)
    except SourceFormatError as exc:
        message = str(exc)
        assert message.startswith(f"{origin}"), message
        assert exc.reason.strip(), message
        assert "\n" not in message.split(": ", 1)[1] or len(message) < 2000, message
        return "refused"
    for observation in observations:
        orjson.dumps(observation.to_event_data())  # every loaded observation can become an event
    return "loaded"


def _fuzz(kind: str, specimens: list[str], hint_suffix: str, structures: dict) -> dict[str, int]:
    rng = random.Random(f"{SEED}-{kind}")
    seeds = [(FIXTURES / name).read_bytes() for name in specimens]
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(CASES):
        payload = _mutate_bytes(rng.choice(seeds), rng, kind)
        origin = f"fuzz/{kind}/{case}{hint_suffix}"
        try:
            outcomes[_check(payload, origin, origin, structures)] += 1
        except AssertionError:
            raise
        except BaseException as exc:
            pytest.fail(f"case {case} ({kind}, seed {SEED}) raised {type(exc).__name__}: {exc}")
    return outcomes


@pytest.mark.parametrize(
    ("kind", "specimens", "suffix"),
    [
        ("json", JSON_SPECIMENS, ".json"),
        ("xml", XML_SPECIMENS, ".xml"),
        ("csv", CSV_SPECIMENS, ".csv"),
    ],
)
def test_thousands_of_mutated_messages_are_loaded_or_refused_naming_input_and_problem(
    kind: str, specimens: list[str], suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    structures = {
        key: artefact
        for name in DSD_SPECIMENS
        for key, artefact in read_structures((FIXTURES / name).read_bytes(), name).items()
    }
    started = time.monotonic()

    outcomes = _fuzz(kind, specimens, suffix, structures)

    assert sum(outcomes.values()) == CASES
    assert outcomes["refused"] > CASES // 4  # the mutator really breaks things
    assert outcomes["loaded"] > 0  # and some mutations stay valid
    assert time.monotonic() - started < 300
    assert capsys.readouterr().out == ""  # the one refusal line is the CLI's; readers print nothing


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(XML_BOMB, "not a readable SDMX-ML message"), (XXE, "not a readable SDMX-ML message")],
)
def test_xml_bombs_and_external_entities_are_refused_without_expanding(
    payload: bytes, reason: str
) -> None:
    check: Callable[[], object] = lambda: read_payload(payload, "bomb.xml", "bomb.xml", {})  # noqa: E731

    with pytest.raises(SourceFormatError, match=reason) as caught:
        check()

    assert "root:" not in str(caught.value)
