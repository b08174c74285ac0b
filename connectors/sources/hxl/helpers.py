"""HXL-tagged tables (CSV, XLSX, XLS or JSON) to one record per data row and people-count column.

Pure functions over bytes already read. Tables are read by libhxl (DESIGN.md §8), the HXL
community's reader: its CSV delimiter sniffing, its XLSX/XLS reader, its JSON rows, its hashtag-row
rule and tag-spec grammar, its date normalisation. What it lacks is added here, before it sees the
bytes: the text encoding of a CSV (libhxl replaces what is not UTF-8), a malformed `<dimension>`
in a workbook (its XLSX reader dies on one) and a cap on what a zip may expand to. Whatever libhxl
raises becomes one `SourceFormatError` naming the input and the problem.

A file without a hashtag row, or with a malformed hashtag, is refused whole: its columns cannot be
trusted, so nothing from it is trustworthy. A row with a bad count or place is returned as a
`Refused` (for the dead-letter topic) and the rest loads; a row whose `#date` libhxl cannot read
keeps its counts and carries the problem in `warnings`.
"""

from __future__ import annotations

import io
import logging
import math
import re
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import hxl
import hxl.datatypes
import hxl.input
import hxl.model
import orjson

from connectors.errors import SourceFormatError
from connectors.refusals import Refused
from connectors.sources.common import NUMBER_RE
from connectors.sources.hxl.settings import (
    AXES,
    BOMS,
    CITY_CODE_FIELDS,
    DIMENSION_REF_RE,
    HASHTAG_ROW_SHARE,
    HASHTAG_SEARCH_ROWS,
    LOCATION_FIELDS,
    MAX_SHEET_COLUMNS,
    MAX_SHEET_ROWS,
    MAX_UNZIPPED_BYTES,
    MAX_ZIP_MEMBERS,
    TEXT_ENCODINGS,
    VALUE_TAGS,
)
from connectors.tables import cell_text

Cell = Any  # what a reader gives: str, int, float, None (datetime from openpyxl)

_THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
#: The dates the contract carries: what normalise_date gives for a day, a month or a year.
_CONTRACT_DATE_RE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")
_ISO3_RE = re.compile(r"^[A-Z]{3}$")
_ZIP_MAGIC = b"PK\x03\x04"
_DIMENSION_RE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?dimension\b[^>]*?/>")
_REF_RE = re.compile(rb"""\bref\s*=\s*["']([^"']*)["']""")
_WORKSHEET_RE = re.compile(r"^xl/worksheets/[^/]+\.xml$")


@dataclass(frozen=True)
class Column:
    """One tagged column: where it is, its hashtag, its sorted attributes, its text header."""

    index: int  # 0-based
    tag: str
    attributes: tuple[str, ...]
    header: str = ""

    @property
    def spec(self) -> str:
        return self.tag + "".join(self.attributes)

    @property
    def where(self) -> str:
        """`column E (#affected+f+idps)`, as a spreadsheet user would look for it."""
        return f"column {column_letter(self.index)} ({self.spec})"


@dataclass
class HxlRow:
    """A good data row: its cells as text (its identity) and one event payload per count."""

    row: int
    cells: list[str]
    records: list[dict[str, Any]] = field(default_factory=list)


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


Rows = list[tuple[int, list[Cell]]]  # (1-based row, cells), as `read_table` reads them


# ------------------------------------------------------------------------------ reading


def detect_encoding(payload: bytes) -> str:
    """A byte-order mark's encoding, else the first of TEXT_ENCODINGS that decodes every byte."""
    for mark, encoding in BOMS:
        if payload.startswith(mark):
            return encoding
    for encoding in TEXT_ENCODINGS:
        try:
            payload.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return TEXT_ENCODINGS[-1]  # not reached: Latin-1 decodes anything


def _valid_dimension(ref: bytes) -> bool:
    match = DIMENSION_REF_RE.match(ref.decode("ascii", "replace").strip().upper())
    if match is None:
        return False
    for letters, digits in ((match[1], match[2]), (match[3], match[4])):
        if letters is None:
            continue
        column = 0
        for letter in letters:
            column = column * 26 + ord(letter) - 64
        if column > MAX_SHEET_COLUMNS or int(digits) > MAX_SHEET_ROWS:
            return False
    return True


def _drop_bad_dimension(xml: bytes) -> bytes:
    """The sheet without its `<dimension>` when the declared range is malformed: it is a hint
    (xlrd3 counts the cells it reads), and xlrd3 raises on a reference such as A0 or ZZZZ1."""

    def keep_or_drop(match: re.Match[bytes]) -> bytes:
        ref = _REF_RE.search(match[0])
        return match[0] if ref is None or _valid_dimension(ref[1]) else b""

    return _DIMENSION_RE.sub(keep_or_drop, xml, count=1)


def _checked_zip(payload: bytes, origin: str) -> bytes:
    """A workbook as libhxl may open it: not a zip bomb, malformed dimensions dropped."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        members = archive.infolist()
    except Exception as exc:  # BadZipFile, NotImplementedError (zip version), OSError, EOFError ...
        raise SourceFormatError(origin, f"not a readable XLSX workbook: {_one_line(exc)}") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise SourceFormatError(
            origin, f"workbook has {len(members):,} zip members (limit {MAX_ZIP_MEMBERS:,})"
        )
    expanded = sum(m.file_size for m in members)
    if expanded > MAX_UNZIPPED_BYTES:
        raise SourceFormatError(
            origin,
            f"workbook would expand to {expanded:,} bytes (limit {MAX_UNZIPPED_BYTES:,}): "
            "refused as a possible zip bomb",
        )
    sheets = [m for m in members if _WORKSHEET_RE.match(m.filename)]
    try:
        read = {m.filename: archive.read(m) for m in sheets}
        fixed = {name: _drop_bad_dimension(xml) for name, xml in read.items()}
        if fixed == read:
            return payload
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
            for member in members:
                target.writestr(member, fixed.get(member.filename) or archive.read(member))
        return out.getvalue()
    except Exception as exc:  # a corrupt member: BadZipFile, zlib.error, EOFError, CRC errors
        raise SourceFormatError(origin, f"not a readable XLSX workbook: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    """An exception as one short line. libhxl's own keep their text in `message`; xlrd3 raises
    bare AssertionErrors and KeyErrors on broken sheets, so a short text gets its class name."""
    text = " ".join(str(getattr(exc, "message", None) or exc).split())
    if len(text) < 12:
        text = f"{type(exc).__name__} {text}".strip() + " in a part of the file it needs"
    return text[:500]


@contextmanager
def _quiet_libhxl() -> Iterator[None]:
    """libhxl logs at ERROR each malformed hashtag it skips while sniffing; we refuse those with
    a reason of our own, so its log lines would only repeat them on stderr."""
    logger = logging.getLogger("hxl")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def read_table(origin: str, payload: bytes) -> Rows:
    """(1-based row, cells) of an HXL input as libhxl reads it: CSV (any delimiter libhxl
    sniffs, encoding detected here), XLSX or XLS (the first sheet with hashtags, else the first),
    or JSON (an array of rows or of objects). Raises SourceFormatError naming `origin`."""
    if not payload.strip():
        raise SourceFormatError(origin, "file is empty")
    is_zip = payload.startswith(_ZIP_MAGIC)
    if is_zip:
        payload = _checked_zip(payload, origin)
    options = hxl.input.InputOptions(allow_local=False, encoding=None)
    if not is_zip and not payload.startswith(b"\xd0\xcf\x11\xe0"):
        options.encoding = detect_encoding(payload)
    kind = "XLSX workbook" if is_zip else "HXL table"
    try:
        with _quiet_libhxl(), hxl.input.make_input(io.BytesIO(payload), options) as source:
            return [(number, list(cells)) for number, cells in enumerate(source, start=1)]
    except SourceFormatError:
        raise
    except hxl.input.HXLHTMLException:
        raise SourceFormatError(origin, "an HTML page, not a data file") from None
    except RecursionError:
        raise SourceFormatError(origin, f"not a readable {kind}: nested too deeply") from None
    except MemoryError:
        raise SourceFormatError(origin, f"not a readable {kind}: too large to read") from None
    except Exception as exc:  # libhxl, csv, xlrd3, lxml, zipfile and json raise their own types
        raise SourceFormatError(origin, f"not a readable {kind}: {_one_line(exc)}") from None


# ------------------------------------------------------------------------------ parsing


def _normalised(cell: Cell) -> str:
    """A cell as libhxl's tag parser sees it (hxl.model.Column.parse_list)."""
    return "" if hxl.datatypes.is_empty(cell) else hxl.datatypes.normalise_string(cell)


def _is_hashtag(text: str) -> bool:
    return bool(text) and bool(hxl.model.Column.parse(text))


def find_hashtag_row(rows: Rows, origin: str) -> int:
    """Index in `rows` of the hashtag row, by libhxl's rule: the first of the first 25 rows where
    at least half of the non-empty cells parse as HXL tag specs (so one malformed tag still finds
    its row, and is then refused by `parse_columns`)."""
    for index, (_, row) in enumerate(rows[:HASHTAG_SEARCH_ROWS]):
        cells = [text for text in map(_normalised, row) if text]
        tagged = sum(1 for text in cells if _is_hashtag(text))
        if cells and tagged / len(cells) >= HASHTAG_ROW_SHARE:
            return index
    raise SourceFormatError(origin, f"no HXL hashtag row in the first {HASHTAG_SEARCH_ROWS} rows")


def parse_columns(tags: list[Cell], headers: list[Cell], origin: str, line: int) -> list[Column]:
    """The tagged columns of a hashtag row, parsed by libhxl (hashtag and attributes lower case);
    a cell that starts with '#' must be a valid tag spec (libhxl would drop the column silently),
    and a people-count column must name one value per disaggregation axis, once per file."""
    columns: list[Column] = []
    seen: dict[str, Column] = {}
    for index, raw in enumerate(tags):
        text = _normalised(raw)
        if not text.startswith("#"):
            continue  # untagged column: HXL lets data carry columns nobody tagged
        where = f"column {column_letter(index)} of the hashtag row"
        parsed = hxl.model.Column.parse(text)
        if not parsed:
            shown = cell_text(raw)[:100]
            message = f"malformed HXL hashtag {shown!r} in {where}"
            raise SourceFormatError(origin, message, line=line)
        attributes = tuple(sorted({"+" + a for a in parsed.attribute_list}))
        header = cell_text(headers[index]) if index < len(headers) else ""
        column = Column(index, parsed.tag, attributes, header[:300])
        if column.tag in VALUE_TAGS:
            for axis, values, _ in AXES:
                if len(named := [a for a in attributes if a in values]) > 1:
                    raise SourceFormatError(
                        origin,
                        f"{where} ({cell_text(raw)}): conflicting {axis} {' '.join(named)}",
                        line=line,
                    )
            if column.spec in seen:
                raise SourceFormatError(
                    origin,
                    f"{where} repeats {column.spec} of {seen[column.spec].where}: "
                    "its counts would be added twice",
                    line=line,
                )
            seen[column.spec] = column
        columns.append(column)
    if not seen:
        tags_found = " ".join(c.spec for c in columns) or "none"
        raise SourceFormatError(
            origin,
            f"no people-count column ({' '.join(sorted(VALUE_TAGS))}); tags found: "
            f"{tags_found[:500]}",
            line=line,
        )
    return columns


def parse_count(value: Cell) -> float | None:
    """A count of people; None when the cell is empty; ValueError when it is not a count."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = cell_text(value)
        if not text:
            return None
        if _THOUSANDS_RE.match(text):
            text = text.replace(",", "")
        if not NUMBER_RE.match(text):
            raise ValueError(value)
        try:
            number = float(text)
        except OverflowError:
            raise ValueError(value) from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return number


def parse_date(value: Cell) -> str | None:
    """A `#date` cell as libhxl normalises it (hxl.datatypes.normalise_date, day first:
    `1 March 2015` and `01/03/2015` are 2015-03-01); None if empty. ValueError says why a
    cell cannot be carried: libhxl cannot read it, it names a quarter or week (the contract
    holds a day, a month or a year), or it has no year (libhxl would take the current one)."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = cell_text(value)
    if not text:
        return None
    try:
        normalised = hxl.datatypes.normalise_date(text)
    except (ValueError, OverflowError, OSError, TypeError):
        raise ValueError(f"{text[:100]!r} is not a date") from None
    if not _CONTRACT_DATE_RE.match(normalised):
        raise ValueError(f"{text[:100]!r} reads as {normalised}, not a day, month or year")
    year = normalised[:4]
    digits = re.findall(r"\d+", text)
    if not text.isdigit() and not any(d in (year, year[2:]) for d in digits):
        raise ValueError(f"{text[:100]!r} has no year")
    return normalised


def _location(
    cells: list[Cell], columns: list[Column], cities: Mapping[str, str]
) -> tuple[dict[str, str], str | None]:
    """Location fields of a row, and the problem with them if any."""
    found: dict[str, str] = {}
    source: dict[str, Column] = {}
    for column in columns:
        for attribute in column.attributes:
            name = LOCATION_FIELDS.get((column.tag, attribute))
            text = cell_text(cells[column.index]) if column.index < len(cells) else ""
            if name and text and name not in found:
                found[name], source[name] = text, column
    if "country_code" in found:
        found["country_code"] = found["country_code"].upper()
        if not _ISO3_RE.match(found["country_code"]):
            where = source["country_code"].where
            return found, f"{where}: {found['country_code']!r} is not an ISO 3166 alpha-3 code"
    for name in CITY_CODE_FIELDS:
        code = found.get(name, "").upper().replace(" ", "")
        if code in cities:
            found["city_code"] = code
            found.setdefault("country_code", cities[code])
            break
    return found, None


def _disaggregation(column: Column) -> dict[str, str]:
    return {
        axis: next((values[a] for a in column.attributes if a in values), default)
        for axis, values, default in AXES
    }


def parse_rows(
    rows: Rows, origin: str, dataset: str, cities: Mapping[str, str]
) -> Iterator[HxlRow | Refused]:
    """Each data row below the hashtag row: an `HxlRow` of event payloads, or a `Refused`.

    `rows` are a table's (row, cells) from `read_table` (or `connectors.tables.table_rows`),
    `cities` UN/LOCODE -> ISO3 of the programme cities."""
    tag_index = find_hashtag_row(rows, origin)
    headers = rows[tag_index - 1][1] if tag_index else []
    tag_line, tag_cells = rows[tag_index]
    columns = parse_columns(tag_cells, headers, origin, tag_line)
    counts = [c for c in columns if c.tag in VALUE_TAGS]
    date_column = next((c for c in columns if c.tag == "#date"), None)
    hashtags = [cell_text(c) for c in tag_cells]
    for line, cells in rows[tag_index + 1 :]:
        if not any(cell_text(c) for c in cells):
            continue
        problems: list[str] = []
        location, problem = _location(cells, columns, cities)
        if problem:
            problems.append(problem)
        common: dict[str, Any] = {"dataset": dataset, "row": line, **location}
        warnings: list[str] = []
        if date_column is not None and date_column.index < len(cells):
            try:
                if (when := parse_date(cells[date_column.index])) is not None:
                    common["date"] = when
            except ValueError as bad_date:
                warning = f"{date_column.where}: {bad_date}; counts kept without a date"
                warnings.append(warning[:1000])
        parsed = HxlRow(line, [cell_text(c) for c in cells])
        for column in counts:
            raw = cells[column.index] if column.index < len(cells) else None
            try:
                value = parse_count(raw)
            except ValueError:
                shown = cell_text(raw)[:100]
                problems.append(f"{column.where}: {shown!r} is not a count of people")
                continue
            if value is None:
                continue
            record = {**common, "column": column.index + 1, "hashtag": column.tag}
            record["attributes"] = list(column.attributes)
            record.update(_disaggregation(column), value=value)
            if column.header:
                record["header"] = column.header
            if warnings:
                record["warnings"] = warnings
            parsed.records.append(record)
        if problems:
            payload = {"dataset": dataset, "row": line, "hashtags": hashtags, "cells": parsed.cells}
            reason = f"{origin}:{line}: " + "; ".join(problems)
            yield Refused(reason, key=dataset, payload=orjson.dumps(payload), line=line)
        else:
            yield parsed
