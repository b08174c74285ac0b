"""HXL-tagged tables (CSV or XLSX) to one record per data row and people-count column.

Pure functions over bytes already read. A file without a hashtag row, or with a malformed
hashtag, is refused whole: its columns cannot be trusted, so nothing from it is trustworthy. A
row with a bad cell is returned as a `Refused` (for the dead-letter topic) and the rest loads.
Tables are read by the one CSV/XLSX reader, `connectors.tables`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson

from connectors.errors import SourceFormatError
from connectors.refusals import Refused
from connectors.sources.common import NUMBER_RE
from connectors.sources.hxl.settings import (
    ATTRIBUTE_RE,
    AXES,
    CITY_CODE_FIELDS,
    HASHTAG_ROW_SHARE,
    HASHTAG_SEARCH_ROWS,
    LOCATION_FIELDS,
    TAGSPEC_RE,
    VALUE_TAGS,
)
from connectors.tables import Cell, cell_text

_THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_ISO_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:[T ][\d:.]+Z?)?$")
_DAY_FIRST_RE = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")
_ISO3_RE = re.compile(r"^[A-Z]{3}$")


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


Rows = list[tuple[int, list[Cell]]]  # (line or sheet row, cells), as `table_rows` reads them


def find_hashtag_row(rows: Rows, origin: str) -> int:
    """Index in `rows` of the hashtag row: the first of the first 25 rows where more than half
    of the non-empty cells start with '#' (so one malformed tag still finds its row)."""
    for index, (_, row) in enumerate(rows[:HASHTAG_SEARCH_ROWS]):
        cells = [cell_text(c) for c in row if cell_text(c)]
        tagged = sum(1 for c in cells if c.startswith("#"))
        if cells and tagged / len(cells) > HASHTAG_ROW_SHARE:
            return index
    raise SourceFormatError(origin, f"no HXL hashtag row in the first {HASHTAG_SEARCH_ROWS} rows")


def parse_columns(tags: list[Cell], headers: list[Cell], origin: str, line: int) -> list[Column]:
    """The tagged columns of a hashtag row; a cell that starts with '#' must be a valid tag spec,
    and a people-count column must name one value per disaggregation axis, once per file."""
    columns: list[Column] = []
    seen: dict[str, Column] = {}
    for index, raw in enumerate(tags):
        text = cell_text(raw)
        if not text.startswith("#"):
            continue  # untagged column: HXL lets data carry columns nobody tagged
        where = f"column {column_letter(index)} of the hashtag row"
        match = TAGSPEC_RE.match(text)
        if match is None:
            raise SourceFormatError(origin, f"malformed HXL hashtag {text!r} in {where}", line=line)
        attributes = tuple(sorted({"+" + a.lower() for a in ATTRIBUTE_RE.findall(match[2])}))
        header = cell_text(headers[index]) if index < len(headers) else ""
        column = Column(index, "#" + match[1].lower(), attributes, header)
        if column.tag in VALUE_TAGS:
            for axis, values, _ in AXES:
                if len(named := [a for a in attributes if a in values]) > 1:
                    raise SourceFormatError(
                        origin, f"{where} ({text}): conflicting {axis} {' '.join(named)}", line=line
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
            f"no people-count column ({' '.join(sorted(VALUE_TAGS))}); tags found: {tags_found}",
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
        number = float(text)
    if not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return number


def parse_date(value: Cell) -> str | None:
    """YYYY-MM-DD, YYYY-MM or YYYY; day-first D/M/YYYY as HXL tools read it; None if empty."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = cell_text(value)
    if not text:
        return None
    if match := _ISO_DATE_RE.match(text):
        year, month, day = match.groups()
    elif match := _DAY_FIRST_RE.match(text):
        day, month, year = match.groups()
    else:
        raise ValueError(value)
    try:
        if day is not None:
            return date(int(year), int(month), int(day)).isoformat()
        if month is not None:
            return date(int(year), int(month), 1).isoformat()[:7]
    except ValueError:
        raise ValueError(value) from None
    return year


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

    `rows` are a table's (line, cells), `cities` UN/LOCODE -> ISO3 of the programme cities."""
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
        if date_column is not None and date_column.index < len(cells):
            raw_date = cells[date_column.index]
            try:
                if (when := parse_date(raw_date)) is not None:
                    common["date"] = when
            except ValueError:
                problems.append(f"{date_column.where}: {cell_text(raw_date)!r} is not a date")
        parsed = HxlRow(line, [cell_text(c) for c in cells])
        for column in counts:
            raw = cells[column.index] if column.index < len(cells) else None
            try:
                value = parse_count(raw)
            except ValueError:
                problems.append(f"{column.where}: {cell_text(raw)!r} is not a count of people")
                continue
            if value is None:
                continue
            record = {**common, "column": column.index + 1, "hashtag": column.tag}
            record["attributes"] = list(column.attributes)
            record.update(_disaggregation(column), value=value)
            if column.header:
                record["header"] = column.header
            parsed.records.append(record)
        if problems:
            payload = {"dataset": dataset, "row": line, "hashtags": hashtags, "cells": parsed.cells}
            reason = f"{origin}:{line}: " + "; ".join(problems)
            yield Refused(reason, key=dataset, payload=orjson.dumps(payload), line=line)
        else:
            yield parsed
