"""The sink's Arrow columns, laid out from buffers: the values `pa.array` gives, no pandas."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pytest

from connectors.sink import arrow

TEXT = pa.large_string()


@pytest.mark.parametrize(
    "values",
    [
        [b'{"a":1}', b"", b'{"b":"\xc3\xa9"}'],  # payloads: all bytes
        ["stats.sdmx.observation.v1"] * 3,  # topics: all ASCII str
        ["KE-NBO", None, "São Paulo", "東京"],  # keys: str beyond ASCII, a null
        [b"raw", "text", None],  # mixed
        [None, None],
        [],
    ],
)
def test_text_column_holds_the_values_pa_array_would(values: list) -> None:
    expected = [v.decode() if isinstance(v, bytes) else v for v in values]
    for arrow_type in (TEXT, pa.string()):
        column = arrow.text_column(values, arrow_type)
        assert column.type == arrow_type
        assert column.to_pylist() == expected
        assert column.null_count == values.count(None)


def test_text_column_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(pa.ArrowInvalid):
        arrow.text_column([b"ok", b"\xff\xfe"], TEXT)


def test_check_utf8_accepts_utf8_and_refuses_the_rest() -> None:
    arrow.check_utf8("nairobi\nSão Paulo\n東京".encode())
    with pytest.raises(pa.ArrowInvalid):
        arrow.check_utf8(b'{"a":"\xc3"}')  # a character cut short


def test_number_column_keeps_nulls_and_the_type() -> None:
    column = arrow.number_column([1, None, 2**40], pa.int64())
    assert column.to_pylist() == [1, None, 2**40]
    stamps = arrow.number_column([0, 1_700_000_000_000], pa.timestamp("ms", tz="UTC"))
    assert stamps.cast(pa.int64()).to_pylist() == [0, 1_700_000_000_000]


def test_table_follows_the_schema() -> None:
    schema = pa.schema([("payload", TEXT), ("kafka_partition", pa.int32())])
    table = arrow.table({"payload": [b"{}", b"[]"], "kafka_partition": [0, 2]}, schema)
    assert table.schema == schema
    assert table.to_pydict() == {"payload": ["{}", "[]"], "kafka_partition": [0, 2]}


def test_building_a_table_never_imports_pandas() -> None:
    """pandas is ~50 MB of the sink's memory: a fresh interpreter builds columns without it."""
    script = (
        "import sys, pyarrow as pa\n"
        "from connectors.sink import arrow\n"
        "schema = pa.schema([('payload', pa.large_string()), ('offset', pa.int64())])\n"
        "arrow.table({'payload': [b'{}', None], 'offset': [1, None]}, schema)\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _payloads(*sizes: int) -> pa.Table:
    schema = pa.schema([("payload", pa.large_string())])
    return arrow.table({"payload": [b"x" * size for size in sizes]}, schema)


def test_small_values_stay_in_one_slice_however_many():
    table = _payloads(*[1_000] * 5_000)  # 5 MB, but no vector of 4 rows can pass 4,000 bytes

    assert [piece.num_rows for piece in arrow.slices(table, "payload", 4_000, 4)] == [5_000]


def test_large_values_are_cut_into_slices_of_at_most_max_bytes_keeping_every_row_in_order():
    table = _payloads(3_000, 500, 400, 3_000, 100, 5_000, 10).slice(0)

    pieces = arrow.slices(table, "payload", 4_000, 2)

    assert [piece.num_rows for piece in pieces] == [3, 2, 1, 1]  # 5,000 bytes: a row on its own
    assert pa.concat_tables(pieces).equals(table)


def test_a_slice_of_a_table_is_cut_from_its_own_first_row():
    table = _payloads(4_000, 4_000, 1, 1, 1).slice(1)

    assert [piece.num_rows for piece in arrow.slices(table, "payload", 4_000, 2)] == [1, 3]
