"""CSV and XLSX uploads as partner results: a header of org.urbanflow.partner.result.v1 fields,
then one event per data row, with an id stable per (partner, file, row). Pure."""

from __future__ import annotations

import hashlib
from typing import Any

from connectors.api.checks import RESULT_TYPE
from connectors.api.partners import Partner
from connectors.contracts import get_contract
from connectors.errors import SourceFormatError
from connectors.events import encode, make_event, stable_event_id, utc_now_iso
from connectors.refusals import Refused
from connectors.tables import cell_text, is_blank, table_rows

_RESULT_SCHEMA = get_contract(RESULT_TYPE).schema
RESULT_COLUMNS: tuple[str, ...] = tuple(_RESULT_SCHEMA["properties"])
_REQUIRED_COLUMNS: tuple[str, ...] = tuple(_RESULT_SCHEMA["required"])

Row = tuple[int, dict[str, Any] | Refused]


def _cell(column: str, cell: Any) -> Any:
    """A cell as its contract type: numbers for `value`, text for the rest (2024.0 -> "2024")."""
    if column == "value":
        if isinstance(cell, str):
            text = cell.strip()
            try:
                return int(text)
            except ValueError:
                try:
                    return float(text)
                except ValueError:
                    return text  # the contract check names the field
        return cell
    return cell_text(cell)


def read_table(name: str, content: bytes) -> list[Row]:
    """Data rows of a CSV or XLSX file whose header names org.urbanflow.partner.result.v1 fields.

    A bad header fails the file (SourceFormatError); a bad row becomes a Refused for that row.
    """
    cells = table_rows(name, content)
    header = next(((n, c) for n, c in cells if not all(map(is_blank, c))), None)
    if header is None:
        raise SourceFormatError(name, f"no header row; expected columns {list(RESULT_COLUMNS)}")
    line, raw_columns = header
    columns = [cell_text(c) for c in raw_columns]
    while columns and not columns[-1]:
        columns.pop()
    problems = {
        "unknown": [c for c in columns if c not in RESULT_COLUMNS][:5],
        "missing": [c for c in _REQUIRED_COLUMNS if c not in columns],
        "repeated": sorted({c for c in columns if columns.count(c) > 1}),
    }
    if any(problems.values()):
        found = "; ".join(f"{kind} columns {cols}" for kind, cols in problems.items() if cols)
        raise SourceFormatError(
            name, f"header: {found}; expected {list(RESULT_COLUMNS)}", line=line
        )
    rows: list[Row] = []
    for number, values in cells:
        if all(map(is_blank, values)):
            continue
        if any(not is_blank(extra) for extra in values[len(columns) :]):
            reason = f"row {number} has cells beyond the {len(columns)} header columns"
            rows.append((number, Refused(reason, line=number)))
            continue
        rows.append(
            (
                number,
                {c: _cell(c, v) for c, v in zip(columns, values, strict=False) if not is_blank(v)},
            )
        )
    return rows


def row_event(
    partner: Partner, source: str, file_sha256: str, row: int, data: dict[str, Any], time: str
) -> bytes:
    """A file row as a CloudEvent whose id is stable, so uploading a file again duplicates none."""
    activity = data.get("activity_id")
    event = make_event(
        RESULT_TYPE,
        source,
        data,
        event_id=stable_event_id(partner.slug, file_sha256, row),
        subject=activity if isinstance(activity, str) else None,
        time=time,
        validate=False,
    )
    return encode(event)


def file_events(
    partner: Partner, source: str, name: str, content: bytes
) -> list[tuple[int, bytes | Refused]]:
    """(row number, its CloudEvent or why the row was refused) for each data row of an upload."""
    sha, now = hashlib.sha256(content).hexdigest(), utc_now_iso()
    return [
        (n, row if isinstance(row, Refused) else row_event(partner, source, sha, n, row, now))
        for n, row in read_table(name, content)
    ]
