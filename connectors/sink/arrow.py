"""Arrow columns laid out from their buffers, for the sink's batches.

`pa.array(a_list)` asks pyarrow's pandas shim whether the list is array-like, and that imports
pandas: ~50 MB of the sink's memory and up to a second of its first batch, for nothing. The sink's
columns are plain (UTF-8 text, integers, millisecond timestamps), so they are built here from
one join of the text and one numpy pass over the lengths and numbers, which is also faster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa


def _validity(values: Sequence[Any]) -> tuple[pa.Buffer | None, int]:
    """The validity bitmap of `values` (None: every value is there) and its null count."""
    nulls = values.count(None) if isinstance(values, list) else sum(v is None for v in values)
    if not nulls:
        return None, 0
    present = np.fromiter((v is not None for v in values), np.bool_, len(values))
    return pa.py_buffer(np.packbits(present, bitorder="little")), nulls


def _text_buffers(values: Sequence[bytes | str | None]) -> tuple[bytes, Iterable[int]]:
    """The UTF-8 data of `values` (None as empty) and each value's length in bytes. All bytes
    (payloads) or all ASCII str (topics, most keys) are joined as they are: no per-value work."""
    kinds = set(map(type, values))
    if kinds == {bytes}:
        return b"".join(values), map(len, values)  # type: ignore[arg-type]
    if kinds == {str} and (joined := "".join(values)).isascii():  # type: ignore[arg-type]
        return joined.encode("ascii"), map(len, values)  # type: ignore[arg-type]
    encoded = [v.encode("utf-8") if isinstance(v, str) else (v or b"") for v in values]
    return b"".join(encoded), map(len, encoded)


def text_column(values: Sequence[bytes | str | None], arrow_type: pa.DataType) -> pa.Array:
    """A string (or large_string) column of UTF-8 bytes or str values, None as null; checked to
    be UTF-8 in C, as DuckDB will read it."""
    data, lengths = _text_buffers(values)
    offset_type = np.int64 if pa.types.is_large_string(arrow_type) else np.int32
    offsets = np.zeros(len(values) + 1, offset_type)
    np.cumsum(np.fromiter(lengths, offset_type, len(values)), out=offsets[1:])
    validity, nulls = _validity(values)
    buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
    column = pa.Array.from_buffers(arrow_type, len(values), buffers, null_count=nulls)
    column.validate(full=True)  # offsets and UTF-8
    return column


def check_utf8(data: bytes) -> None:
    """Raise `pa.ArrowInvalid` unless `data` is UTF-8: Arrow's check, without the str that
    `data.decode()` would build (several times faster on a batch of payloads)."""
    offsets = pa.py_buffer(np.array([0, len(data)], np.int64))
    pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)]).validate(
        full=True
    )


def number_column(values: Sequence[int | None], arrow_type: pa.DataType) -> pa.Array:
    """An integer or timestamp column (timestamps as integers of its unit), None as null."""
    dtype = np.dtype(f"int{arrow_type.bit_width}")
    validity, nulls = _validity(values)
    plain = (0 if v is None else v for v in values) if nulls else values
    numbers = np.fromiter(plain, dtype, len(values))
    return pa.Array.from_buffers(
        arrow_type, len(values), [validity, pa.py_buffer(numbers)], null_count=nulls
    )


def column(values: Sequence[Any], arrow_type: pa.DataType) -> pa.Array:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return text_column(values, arrow_type)
    if pa.types.is_integer(arrow_type) or pa.types.is_timestamp(arrow_type):
        return number_column(values, arrow_type)
    raise TypeError(f"no buffer layout for Arrow type {arrow_type}")


def table(columns: Mapping[str, Sequence[Any]], schema: pa.Schema) -> pa.Table:
    """The table of `schema` from Python lists, one per field, as `pa.table` would build it."""
    arrays = [column(columns[f.name], f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _text_offsets(values: pa.Array) -> np.ndarray:
    """Where each value of a string column starts in its data, and where the last ends, from 0
    (read from the offsets buffer: pyarrow's own accessors import pandas)."""
    offset_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    width = np.dtype(offset_type).itemsize
    buffer = values.buffers()[1]
    offsets = np.frombuffer(buffer, offset_type, len(values) + 1, values.offset * width)
    return (offsets - offsets[0]).astype(np.int64)


def slices(table: pa.Table, text_column: str, max_bytes: int, vector_rows: int) -> list[pa.Table]:
    """`table` cut into consecutive slices of at most `max_bytes` of `text_column` (a slice holds
    one row at least), or whole when no `vector_rows` of its values could exceed that."""
    if not table.num_rows:
        return [table]
    ends = _text_offsets(table.column(text_column).combine_chunks())  # ends[i]: bytes before row i
    if int(np.diff(ends).max()) * vector_rows <= max_bytes:
        return [table]
    parts, start = [], 0
    while start < table.num_rows:
        stop = int(np.searchsorted(ends, ends[start] + max_bytes, side="right")) - 1
        stop = max(stop, start + 1)
        parts.append(table.slice(start, stop - start))
        start = stop
    return parts
