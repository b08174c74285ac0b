"""HXL CSV and XLSX fuzzed: whatever the bytes, the source loads them or refuses them in one line.

Seeded, so a failure names the case that broke and replays it. Each case goes through the source's
own `read` (libhxl reading, our parsing, contract checks as `run_source` makes them): the only
exception allowed out is `SourceFormatError`, one line naming the file and the problem, and a
refused input yields nothing before the refusal (the source parses every input before it sends).
"""

from __future__ import annotations

import io
import random
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from fuzzing import mutate_bytes

from connectors.errors import ContractError, SourceFormatError
from connectors.events import make_event
from connectors.sdk import Checkpoint, Record, Refused, load_config
from connectors.sources import hxl
from connectors.sources.hxl import helpers

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hxl"
CSV_SEEDS = [
    FIXTURES / "dtm_som_idp_sites_2024-03.csv",
    FIXTURES / "dtm_eth_bad_number.csv",
    FIXTURES / "dtm_hnd_returnees_latin1.csv",
    FIXTURES / "dtm_nga_idps_dates.csv",
    FIXTURES / "malformed_hashtag.csv",
]
XLSX_SEED = FIXTURES / "dtm_eth_site_assessment_r35.xlsx"
CASES = 2_000
#: Wall-clock budget per format: generous for a shared 2-core machine, but a case that hangs
#: (an XML bomb expanding, a regex backtracking) fails the test instead of stalling the suite.
BUDGET_S = 240.0

ODD_CELLS = [
    "",
    " ",
    "1e999",
    "-5",
    "NaN",
    "inf",
    "9" * 400,
    "1,2,3",
    "\x00",
    '"',
    "#affected+",
    "#",
    "# bad",
    "#date+reported",
    "#affected+f+m",
    "31/02/2024",
    "2015Q3",
    "1 March",
    "99999999999999999999999",
    "x" * 5_000,
    "Région",
    "\ufffd",
    "=SUM(A1:A9)",
    "<b>",
    "SO MGQ",
    "somalia",
]


def _mutate_table(rng: random.Random, text: str) -> str:
    rows = [line.split(",") for line in text.splitlines()]
    for _ in range(rng.randint(1, 6)):
        row = rng.choice(rows) if rows else []
        kind = rng.randrange(6)
        if kind == 0 and row:
            row[rng.randrange(len(row))] = rng.choice(ODD_CELLS)
        elif kind == 1 and rows:
            rows.pop(rng.randrange(len(rows)))
        elif kind == 2 and rows:
            rows.insert(rng.randrange(len(rows) + 1), list(rng.choice(rows)))
        elif kind == 3:
            row.append(rng.choice(ODD_CELLS))
        elif kind == 4 and row:
            del row[rng.randrange(len(row)) :]
        else:
            rng.shuffle(rows)
    delimiter = rng.choice([",", ",", ",", ";", "\t", "|"])
    return "\n".join(delimiter.join(row) for row in rows) + rng.choice(["", "\n", "\r\n"])


def csv_cases(seed: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    seeds = [path.read_bytes() for path in CSV_SEEDS]
    for number in range(CASES):
        base = rng.choice(seeds)
        kind = number % 8
        if kind == 0:
            payload = base[: rng.randrange(len(base) + 1)]  # truncated
        elif kind == 1:
            payload = mutate_bytes(rng, base)
        elif kind == 2:  # a table whose cells changed, then any encoding
            text = _mutate_table(rng, base.decode("utf-8", "replace"))
            encoding = rng.choice(
                ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1252", "latin-1"]
            )
            payload = text.encode(encoding, "replace")
        elif kind == 3:  # huge fields and numbers
            text = base.decode("utf-8", "replace")
            payload = text.replace(",", "," + "9" * rng.choice([20, 400, 200_000]), 3).encode()
        elif kind == 4:  # random bytes
            payload = bytes(rng.randrange(256) for _ in range(rng.randint(0, 600)))
        elif kind == 5:  # another format's magic in front
            magic = rng.choice([b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"<!DOCTYPE html>", b"[", b"{"])
            payload = magic + base
        elif kind == 6:  # quotes and line breaks in the wrong places
            text = base.decode("utf-8", "replace")
            at = rng.randrange(len(text) + 1)
            payload = (
                text[:at] + rng.choice(['"', '"\n', "\r", "\x00", '""', "\n\n"]) + text[at:]
            ).encode()
        else:
            payload = _mutate_table(rng, base.decode("latin-1")).encode("latin-1", "replace")
        yield f"case{number}.csv", payload


def _workbook(parts: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return out.getvalue()


XML_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
    b"</sheetData></worksheet>"
)


def _sheet_mutations(rng: random.Random) -> list[Callable[[bytes], bytes]]:
    def dimension(xml: bytes) -> bytes:
        ref = rng.choice(["A0", "A1:K", "ZZZZ9", "", "A1:XFE1048577", "K9:A1", "bogus", "A1:" * 50])
        return re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="' + ref.encode() + b'"', xml)

    def cell_value(xml: bytes) -> bytes:
        values = [b"abc", b"1e400", b"-1", b"9" * 400, b"", b"NaN", b"99999999999"]
        return re.sub(
            rb"<v>[^<]*</v>", b"<v>" + rng.choice(values) + b"</v>", xml, count=rng.randint(1, 40)
        )

    def cell_type(xml: bytes) -> bytes:
        kinds = [b't="s"', b't="b"', b't="e"', b't="str"', b't="d"', b't="n"', b't="zz"']
        return re.sub(
            rb'<c r="([A-Z]+[0-9]+)"',
            lambda m: m[0] + b" " + rng.choice(kinds),
            xml,
            count=rng.randint(1, 30),
        )

    def cell_ref(xml: bytes) -> bytes:
        refs = [b"A0", b"XFE1", b"A99999999", b"1A", b"", b"AAAA1"]
        return re.sub(rb'<c r="[A-Z]+[0-9]+"', b'<c r="' + rng.choice(refs) + b'"', xml, count=1)

    def truncate(xml: bytes) -> bytes:
        return xml[: rng.randrange(len(xml) + 1)]

    def bomb(xml: bytes) -> bytes:
        return XML_BOMB

    def junk(xml: bytes) -> bytes:
        return mutate_bytes(rng, xml)

    return [dimension, cell_value, cell_type, cell_ref, truncate, bomb, junk]


def xlsx_cases(seed: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    base = XLSX_SEED.read_bytes()
    with zipfile.ZipFile(io.BytesIO(base)) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    mutations = _sheet_mutations(rng)
    for number in range(CASES):
        kind = number % 6
        if kind == 0:
            payload = base[: rng.randrange(len(base) + 1)]
        elif kind == 1:
            payload = mutate_bytes(rng, base)
        elif kind in (2, 3):  # the sheet's XML mutated, once or several times
            changed = dict(parts)
            for _ in range(1 if kind == 2 else rng.randint(2, 4)):
                mutation = rng.choice(mutations)
                changed["xl/worksheets/sheet1.xml"] = mutation(changed["xl/worksheets/sheet1.xml"])
            payload = _workbook(changed)
        elif kind == 4:  # another part mutated or missing
            changed = dict(parts)
            name = rng.choice(sorted(changed))
            if rng.random() < 0.3:
                del changed[name]
            else:
                changed[name] = rng.choice(mutations)(changed[name])
            payload = _workbook(changed, rng.choice([zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED]))
        else:  # a zip bomb: a sheet that expands far past the (lowered) limit
            changed = dict(parts)
            changed["xl/worksheets/sheet1.xml"] = b"<" + b"\0" * rng.randint(300_000, 600_000)
            payload = _workbook(changed)
        yield f"case{number}.xlsx", payload


def _outcome(tmp_path: Path, name: str, payload: bytes) -> list:
    """What the source does with one input: its items, or the refusal it raised (checked)."""
    path = tmp_path / name
    path.write_bytes(payload)
    config = load_config("hxl", hxl.HxlConfig, overrides={"partner": "fuzz", "inputs": [str(path)]})
    items: list = []
    try:
        for item in hxl.SOURCE.read(config, {}):
            items.append(item)
    except SourceFormatError as refusal:
        message = str(refusal)
        assert items == [], f"{name}: items yielded before the refusal"
        assert "\n" not in message, f"{name}: refusal spans lines: {message!r}"
        assert refusal.origin == str(path), message
        problem = re.sub(rf"^{re.escape(str(path))}(:\d+)?: ", "", message)
        assert problem != message and len(problem) >= 8, f"{name}: refusal names no problem"
        return [refusal]
    for item in items:
        if isinstance(item, Record):
            try:  # as run_source builds it: a ContractError becomes a dead letter
                make_event(item.stream.event_type, item.source, item.data, event_id=item.event_id)
            except ContractError as exc:
                assert str(exc), name
        elif isinstance(item, Refused):
            assert item.reason.startswith(f"{path}:"), item.reason
            assert "\n" not in item.reason
        else:
            assert isinstance(item, Checkpoint), item
    return items


def _fuzz(tmp_path: Path, cases: Iterator[tuple[str, bytes]]) -> dict[str, int]:
    started = time.monotonic()
    tally = {"loaded": 0, "refused": 0, "records": 0, "dead letters": 0}
    for name, payload in cases:
        outcome = _outcome(tmp_path, name, payload)
        if outcome and isinstance(outcome[0], SourceFormatError):
            tally["refused"] += 1
        else:
            tally["loaded"] += 1
            tally["records"] += sum(isinstance(i, Record) for i in outcome)
            tally["dead letters"] += sum(isinstance(i, Refused) for i in outcome)
        (tmp_path / name).unlink()
        assert time.monotonic() - started < BUDGET_S, f"over {BUDGET_S} s at {name}"
    return tally


def test_fuzzed_hxl_csv_loads_or_is_refused_in_one_line(tmp_path):
    tally = _fuzz(tmp_path, csv_cases(seed=20261201))

    assert tally["loaded"] + tally["refused"] == CASES
    # the corpus reaches every outcome, so the test is not passing by refusing everything
    assert min(tally.values()) > 0, tally


def test_fuzzed_hxl_xlsx_loads_or_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(helpers, "MAX_UNZIPPED_BYTES", 250_000)  # the bombs stay small here
    tally = _fuzz(tmp_path, xlsx_cases(seed=20261201))

    assert tally["loaded"] + tally["refused"] == CASES
    assert tally["loaded"] > 0 and tally["refused"] > 0 and tally["records"] > 0, tally
