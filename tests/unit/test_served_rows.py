"""`served_rows`: what analysts see of a raw table, read from a published serving.duckdb."""

from __future__ import annotations

from pathlib import Path

import duckdb

from connectors.status import served_rows


def _serving(folder: Path, rows: list[tuple[str, int]]) -> Path:
    path = folder / "serving.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.fct_source_health (raw_table varchar, row_count bigint)")
        con.executemany("insert into marts.fct_source_health values (?, ?)", rows)
    return path


def test_counts_the_raw_table_as_the_health_mart_has_it(tmp_path):
    serving = _serving(tmp_path, [("partner_push_result_v1", 7), ("stats_sdmx_observation_v1", 3)])
    assert served_rows(serving, "partner_push_result_v1") == 7
    assert served_rows(serving, "utility_kpi_v1") == 0  # not served (yet)


def test_nothing_published_is_zero_and_an_unreadable_file_is_none(tmp_path):
    assert served_rows(tmp_path / "serving.duckdb", "partner_push_result_v1") == 0
    (tmp_path / "half.duckdb").write_bytes(b"not a database, as mid-replace")
    assert served_rows(tmp_path / "half.duckdb", "partner_push_result_v1") is None
