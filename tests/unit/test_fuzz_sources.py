"""IATI XML, GDACS GeoJSON and utility KPI CSV fuzzed: each input loads or is refused in one line.

Seeded, so a failure names the case that broke and replays it. Each case is one file put through
the source's own `read` (which hands its bytes to the pure parser: `parse_iati_activities`,
`parse_feed`, `parse_kpi_csv` after the UTF-8 check), with no broker. The only exception allowed
out is `SourceFormatError`, one line naming the file and the problem, and a refused input yields
nothing before the refusal; a bad item comes back as a one-line `Refused` naming the file, and
every record builds into an event (or fails its contract, which `run_source` dead-letters).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import fuzzing
import pytest
from fuzzing import HUGE, mutate_bytes, mutate_json

from connectors.errors import ContractError, SourceFormatError
from connectors.events import make_event
from connectors.sdk import Checkpoint, Record, Refused, load_config
from connectors.sources import gdacs, iati, utilities

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CASES = 2_000
SEED = 20261201
#: Wall-clock budget per source: a case that hangs (an entity expanding, a regex backtracking)
#: fails the test instead of stalling the suite.
BUDGET_S = 60.0

#: The shared odd values, and codes and names these three formats use.
ODD_TEXT = [
    *fuzzing.ODD_TEXT,
    "0001-01-01",
    "USD",
    "usd",
    "KENBO",
    "XXABC",
    "water",
    "electricity",
]
XML_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']><iati-activities version="2.03"><iati-activity><iati-identifier>&lol9;'
    b"</iati-identifier></iati-activity></iati-activities>"
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<iati-activities version="2.03"><iati-activity><iati-identifier>&x;</iati-identifier>'
    b"</iati-activity></iati-activities>"
)


# ------------------------------------------------------------------------------- mutations


def _common(rng: random.Random, base: bytes, kind: int) -> bytes | None:
    """The mutations every format gets; None leaves the case to the format's own mutations."""
    if kind == 0:
        return base[: rng.randrange(len(base) + 1)]  # truncated
    if kind == 1:
        return mutate_bytes(rng, base)
    if kind == 2:  # wrong encodings
        encoding = rng.choice(["utf-16", "utf-16-le", "utf-32", "cp1252", "latin-1", "utf-8-sig"])
        return base.decode("utf-8", "replace").encode(encoding, "replace")
    if kind == 3:  # a huge or odd number where a digit was
        text = base.decode("utf-8", "replace")
        digits = [i for i, c in enumerate(text) if c.isdigit()]
        for at in sorted(rng.sample(digits, min(len(digits), rng.randint(1, 3))), reverse=True):
            text = text[:at] + rng.choice(HUGE) + text[at + 1 :]
        return text.encode()
    if kind == 4:  # not this format at all
        return rng.choice(
            [
                b"",
                b"\x00" * 64,
                b"\xef\xbb\xbf",
                b"\xff\xfe",
                b"PK\x03\x04" + base,
                b"<!DOCTYPE html><html></html>",
                b"{}",
                b"[]",
                b"null",
                b"<x/>",
                b"a,b\n1,2\n",
                rng.randbytes(rng.randint(1, 600)),
                base + base,
            ]
        )
    return None


def _escaped(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def _nested(text: str, depth: int) -> bytes:
    return text.replace(
        "</iati-activity>", "<a>" * depth + "</a>" * depth + "</iati-activity>", 1
    ).encode()


def _mutate_xml(rng: random.Random, data: bytes) -> bytes:
    """Structure-aware IATI mutations: odd attribute and text values, repeated or lost
    elements, DOCTYPEs, entity bombs, deep nesting, another root or version."""
    text = data.decode("utf-8")
    choice = rng.randrange(9)
    if choice == 7:  # odd identifiers and versions (they name and date activities), and more
        for pattern in (r"(<iati-identifier>)[^<]*", r'(last-updated-datetime=")[^"]*'):
            text = re.sub(pattern, lambda m: m[1] + _escaped(rng.choice(ODD_TEXT)), text)
        return _mutate_xml(rng, text.encode())
    if choice == 0:  # attribute values
        spots = list(re.finditer(r'="([^"]*)"', text))
        for match in sorted(
            rng.sample(spots, min(len(spots), rng.randint(1, 6))), key=lambda m: -m.start()
        ):
            value = _escaped(rng.choice(ODD_TEXT))
            text = text[: match.start(1)] + value + text[match.end(1) :]
        return text.encode()
    if choice == 1:  # element text
        spots = list(re.finditer(r">([^<>]+)<", text))
        for match in sorted(
            rng.sample(spots, min(len(spots), rng.randint(1, 6))), key=lambda m: -m.start()
        ):
            value = _escaped(rng.choice(ODD_TEXT))
            text = text[: match.start(1)] + value + text[match.end(1) :]
        return text.encode()
    if choice == 2:  # an element repeated or dropped
        spots = list(re.finditer(r"<([a-z-]+)\b[^>]*?(?:/>|>.*?</\1>)", text, re.S))
        match = rng.choice(spots)
        repeat = match[0] * rng.randint(2, 3) if rng.random() < 0.5 else ""
        return (text[: match.start()] + repeat + text[match.end() :]).encode()
    if choice == 3:
        return rng.choice([XML_BOMB, XXE])
    if choice == 4:  # a DOCTYPE in front of a good file
        body = text.split("?>", 1)[-1]
        return ('<?xml version="1.0"?><!DOCTYPE iati-activities SYSTEM "x.dtd">' + body).encode()
    if choice == 5:  # deep nesting inside an activity (100,000 deep: its own test below)
        return _nested(text, rng.choice([50, 1_000, 5_000]))
    if choice == 6:  # another version or root
        swap = rng.choice(
            [
                ('version="2.03"', 'version="1.05"'),
                ('version="2.03"', 'version=""'),
                ("iati-activities", "iati-organisations"),
                (
                    '<?xml version="1.0" encoding="UTF-8"?>',
                    '<?xml version="1.0" encoding="bogus"?>',
                ),
                (
                    '<?xml version="1.0" encoding="UTF-8"?>',
                    '<?xml version="1.0" encoding="UTF-16"?>',
                ),
            ]
        )
        return text.replace(*swap).encode()
    return mutate_bytes(rng, data)


#: What a GeoJSON node may become: any odd value, or coordinates out of range.
ODD_GEOJSON = [*fuzzing.ODD_JSON, [200, 100], *ODD_TEXT]


def _mutate_json(rng: random.Random, data: bytes) -> bytes:
    """Replace, delete or retype nodes of the decoded feed; now and then nest it absurdly deep."""
    if rng.random() < 0.1:
        depth = rng.choice([50, 2_000, 100_000])
        return b'{"type":"FeatureCollection","features":[' + b"[" * depth + b"]" * depth + b"]}"
    return mutate_json(rng, data, ODD_GEOJSON)


def _mutate_csv(rng: random.Random, data: bytes) -> bytes:
    """Cells replaced, rows and columns lost or repeated, other delimiters, stray quotes."""
    rows = [line.split(",") for line in data.decode("utf-8").splitlines()]
    for _ in range(rng.randint(1, 6)):
        row = rng.choice(rows) if rows else []
        kind = rng.randrange(8)
        if kind == 0 and row:
            row[rng.randrange(len(row))] = rng.choice(ODD_TEXT)
        elif kind == 1 and rows:
            rows.pop(rng.randrange(len(rows)))
        elif kind == 2 and rows:
            rows.insert(rng.randrange(len(rows) + 1), list(rng.choice(rows)))
        elif kind == 3:
            row.append(rng.choice(ODD_TEXT))
        elif kind == 4 and row:
            del row[rng.randrange(len(row))]  # a missing column (in the header: refused whole)
        elif kind == 5 and row:
            row[rng.randrange(len(row))] = rng.choice(
                ['"', '"a"b', '"\n"', '"x' + "9" * 200_000 + '"']
            )
        elif kind == 6 and rows and rows[0]:  # a header cell misspelt, or an extra one
            odd = rng.choice(["CITY_CODE ", "city code", "", "connections", '"a\nb"', '"\x00"'])
            if rng.random() < 0.5:
                rows[0][rng.randrange(len(rows[0]))] = odd
            else:
                rows[0].append(odd)
        else:
            rng.shuffle(rows)
    delimiter = rng.choice([",", ",", ",", ";", "\t"])
    newline = rng.choice(["\n", "\r\n", "\r"])
    return (newline.join(delimiter.join(row) for row in rows) + rng.choice(["", newline])).encode()


def cases(
    seeds: list[Path], own: Callable[[random.Random, bytes], bytes], suffix: str, salt: str
) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(f"{SEED}-{salt}")
    bases = [path.read_bytes() for path in seeds]
    for number in range(CASES):
        base = rng.choice(bases)
        kind = number % 10
        payload = _common(rng, base, kind) if kind < 5 else None
        yield f"case{number}{suffix}", own(rng, base) if payload is None else payload


# ------------------------------------------------------------------------------ the checks


def _outcome(path: Path, read: Callable[[Path], Iterator]) -> list:
    """What the source does with one input: its items, or the refusal it raised (checked)."""
    items: list = []
    try:
        for item in read(path):
            items.append(item)
    except SourceFormatError as refusal:
        message = str(refusal)
        assert items == [], f"{path.name}: items yielded before the refusal"
        assert "\n" not in message, f"{path.name}: refusal spans lines: {message!r}"
        assert refusal.origin == str(path), message
        problem = re.sub(rf"^{re.escape(str(path))}(:\d+)?: ", "", message)
        assert problem != message and len(problem) >= 8, f"{path.name}: refusal names no problem"
        return [refusal]
    for item in items:
        if isinstance(item, Record):
            try:  # as run_source builds it: a ContractError becomes a dead letter
                make_event(
                    item.stream.event_type,
                    item.source,
                    item.data,
                    event_id=item.event_id,
                    subject=item.subject,
                    time=item.time,
                )
            except ContractError as exc:
                assert str(exc), path.name
        elif isinstance(item, Refused):
            assert item.reason.startswith(f"{path}:"), item.reason
            assert "\n" not in item.reason, f"{path.name}: reason spans lines: {item.reason!r}"
            assert item.stream is not None, item
        else:
            assert isinstance(item, Checkpoint), item
    return items


def _fuzz(
    tmp_path: Path, inputs: Iterator[tuple[str, bytes]], read: Callable[[Path], Iterator]
) -> dict[str, int]:
    started = time.monotonic()
    tally = {"loaded": 0, "refused": 0, "records": 0, "dead letters": 0}
    for name, payload in inputs:
        path = tmp_path / name
        path.write_bytes(payload)
        try:
            outcome = _outcome(path, read)
        except AssertionError:
            raise
        except BaseException as exc:
            pytest.fail(f"{name} (seed {SEED}) raised {type(exc).__name__}: {exc}")
        if outcome and isinstance(outcome[0], SourceFormatError):
            tally["refused"] += 1
        else:
            tally["loaded"] += 1
            tally["records"] += sum(isinstance(i, Record) for i in outcome)
            tally["dead letters"] += sum(isinstance(i, Refused) for i in outcome)
        path.unlink()
        assert time.monotonic() - started < BUDGET_S, f"over {BUDGET_S} s at {name}"
    return tally


def _read_iati(path: Path) -> Iterator:
    return iati.SOURCE.read(
        load_config("iati", iati.IatiConfig, overrides={"inputs": [str(path)]}), {}
    )


def _read_gdacs(path: Path) -> Iterator:
    return gdacs.SOURCE.read(
        load_config("gdacs", gdacs.GdacsConfig, overrides={"inputs": [str(path)]}), {}
    )


def _read_kpi(path: Path) -> Iterator:
    config = load_config(
        "utilities", utilities.UtilitiesConfig, overrides={"mode": "kpi", "inputs": [str(path)]}
    )
    return utilities.SOURCE.read(config, {})


def test_fuzzed_iati_xml_loads_or_is_refused_in_one_line(tmp_path):
    seeds = [
        FIXTURES / "iati" / name for name in ("urban_programmes.xml", "one_invalid_activity.xml")
    ]

    tally = _fuzz(tmp_path, cases(seeds, _mutate_xml, ".xml", "iati"), _read_iati)

    assert tally["loaded"] + tally["refused"] == CASES
    assert min(tally.values()) > 0, tally  # every outcome reached: not passing by refusing all


def test_fuzzed_gdacs_geojson_loads_or_is_refused_in_one_line(tmp_path):
    seeds = [
        FIXTURES / "gdacs" / name
        for name in ("gdacs_events_bgd_2024.geojson", "gdacs_bad_features.geojson")
    ]

    tally = _fuzz(tmp_path, cases(seeds, _mutate_json, ".geojson", "gdacs"), _read_gdacs)

    assert tally["loaded"] + tally["refused"] == CASES
    assert min(tally.values()) > 0, tally


def test_fuzzed_kpi_csv_loads_or_is_refused_in_one_line(tmp_path):
    seeds = [
        FIXTURES / "utilities" / name
        for name in ("kpi_2025_01.csv", "kpi_2025_02.csv", "kpi_zesco_2025_01.csv")
    ]

    tally = _fuzz(tmp_path, cases(seeds, _mutate_csv, ".csv", "kpi"), _read_kpi)

    assert tally["loaded"] + tally["refused"] == CASES
    assert min(tally.values()) > 0, tally


@pytest.mark.parametrize("payload", [XML_BOMB, XXE], ids=["entity bomb", "external entity"])
def test_iati_entity_bombs_are_refused_without_expanding(tmp_path, payload):
    path = tmp_path / "bomb.xml"
    path.write_bytes(payload)

    with pytest.raises(SourceFormatError, match="DOCTYPE declarations are refused"):
        list(_read_iati(path))


def test_iati_activity_nested_100_000_deep_loads_without_recursing(tmp_path):
    path = tmp_path / "deep.xml"
    path.write_bytes(_nested((FIXTURES / "iati" / "urban_programmes.xml").read_text(), 100_000))

    items = _outcome(path, _read_iati)

    assert sum(isinstance(item, Record) for item in items) > 0


# ---------------------------------------------- what the fuzz found, each replayed on its own


def _reasons(path: Path, read: Callable[[Path], Iterator]) -> list[str]:
    """The input's refusal, or its items' reasons, after the same checks as the fuzz."""
    items = _outcome(path, read)
    if items and isinstance(items[0], SourceFormatError):
        return [str(items[0])]
    return [item.reason for item in items if isinstance(item, Refused)]


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ('encoding="UTF-8"', 'encoding="bogus"', "malformed XML: unknown encoding: bogus"),
        ("2024-03-28T14:05:00Z", "0001-01-01T00:00:00+01:00", "is not a valid date-time"),
        ('year="', 'year="2²', "is not a year"),
        (
            "<iati-identifier>GB-CHC-1180001-NBO-WASH-01</iati-identifier>\n"
            '  <reporting-org ref="GB-CHC-1180001"',
            "<iati-identifier>a\nb</iati-identifier><reporting-org",
            "activity 'a\\nb': reporting-org/@ref: missing",
        ),
    ],
    ids=["unknown encoding", "date-time before year 1 in UTC", "superscript year", "id on lines"],
)
def test_iati_inputs_the_fuzz_broke_are_refused_in_one_line(tmp_path, old, new, reason):
    text = (FIXTURES / "iati" / "urban_programmes.xml").read_text()
    assert old in text
    path = tmp_path / "broken.xml"
    path.write_text(text.replace(old, new, 1))

    assert any(reason in found for found in _reasons(path, _read_iati))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"eventid": "9" * 400}, "is not a positive whole number"),
        ({"episodeid": 2**64}, "is not a positive whole number"),
        ({"fromdate": "0001-01-01T00:00:00+01:00"}, "is not a date-time"),
        ({"iso3": "A\nB"}, "country code(s) 'A\\nB' are not"),
        ({"eventtype": "F\nL"}, "('F\\nL1"),
        ({"sendai": [{"sendainame": "affected", "sendaivalue": 2**63 - 1}] * 2}, "add up to"),
    ],
    ids=[
        "id of 400 digits",
        "id past 64 bits",
        "date before year 1 in UTC",
        "iso3 on lines",
        "key on lines",
        "affected past a BIGINT",
    ],
)
def test_gdacs_features_the_fuzz_broke_are_dead_letters_in_one_line(tmp_path, changes, reason):
    feed = json.loads((FIXTURES / "gdacs" / "gdacs_events_bgd_2024.geojson").read_bytes())
    feed["features"] = feed["features"][:1]
    feed["features"][0]["properties"].update(changes)
    path = tmp_path / "broken.geojson"
    path.write_text(json.dumps(feed))

    assert [reason in found for found in _reasons(path, _read_gdacs)] == [True]


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (",548312", ",9" + "0" * 40, "connections: '9000"),
        ("connections\n", 'connections,"a\nb"\n', "unknown column(s) 'a\\nb'"),
    ],
    ids=["connections past a BIGINT", "header cell on lines"],
)
def test_kpi_files_the_fuzz_broke_are_refused_in_one_line(tmp_path, old, new, reason):
    text = (FIXTURES / "utilities" / "kpi_2025_01.csv").read_text()
    assert old in text
    path = tmp_path / "broken.csv"
    path.write_text(text.replace(old, new, 1))

    assert any(reason in found for found in _reasons(path, _read_kpi))
