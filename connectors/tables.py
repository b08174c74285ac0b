"""CSV and XLSX files as rows of cells: the one table reader the API and the sources share.

Pure (CSV rows stream; an XLSX sheet is read whole, see `_xlsx_rows`): a bad file raises a
`SourceFormatError` naming the file and the problem, so no reader of ours ever lets a CSV or
openpyxl exception reach a user.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from connectors.errors import SourceFormatError

XLSX_MAGIC = b"PK\x03\x04"
TABLE_SUFFIXES = (".csv", ".xlsx")

Cell = Any


def is_xlsx(name: str, content: bytes) -> bool:
    return content.startswith(XLSX_MAGIC) or name.lower().endswith(".xlsx")


def table_rows(name: str, content: bytes) -> Iterator[tuple[int, list[Cell]]]:
    """(1-based line or row, cells) of a CSV file (UTF-8) or an XLSX workbook's first sheet."""
    yield from (_xlsx_rows if is_xlsx(name, content) else _csv_rows)(name, content)


def _csv_rows(name: str, content: bytes) -> Iterator[tuple[int, list[Cell]]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceFormatError(name, f"not UTF-8 text (bad byte at offset {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for cells in reader:
            yield reader.line_num, cells
    except csv.Error as exc:
        raise SourceFormatError(name, f"not valid CSV: {exc}", line=reader.line_num) from None


def _xlsx_rows(name: str, content: bytes) -> Iterator[tuple[int, list[Cell]]]:
    from openpyxl import load_workbook  # only XLSX inputs pay for the import

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zip, XML, key and value errors for broken files
        raise SourceFormatError(name, f"not a readable XLSX workbook: {exc}") from None
    try:
        sheet = book.worksheets[0]
        # Read-only mode trusts the sheet's declared dimensions, which some writers get wrong: too
        # small drops rows silently, too large pads every row to thousands of cells. So read the
        # cells the sheet has, from row 1, and make every row as wide as the widest.
        sheet.reset_dimensions()
        rows = [list(cells) for cells in sheet.iter_rows(min_row=1, values_only=True)]
    except Exception as exc:  # openpyxl raises XML, key and value errors for broken sheets
        raise SourceFormatError(name, f"not a readable XLSX sheet: {exc}") from None
    finally:
        book.close()
    width = max(map(len, rows), default=0)
    for number, cells in enumerate(rows, start=1):
        yield number, cells + [None] * (width - len(cells))


def is_blank(cell: Cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def cell_text(value: Cell) -> str:
    """A cell as the text a reader sees: 1200 not 1200.0, dates without midnight."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
