"""The raw columns are declared once (connectors/sink/raw.py): the warehouse table, the decoded
batch and every dbt source the sink loads follow that declaration, name for name."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from connectors.kafka.topics import load_topics
from connectors.settings import SOURCE_TREE as REPO_ROOT
from connectors.sink.decode import ColumnBatch
from connectors.sink.loader import ensure_schema
from connectors.sink.raw import ARROW_SCHEMA, RAW_COLUMNS

DECLARED = [c.name for c in RAW_COLUMNS]
SINK_LOADER = "urbanflow-sink"
SOURCES_FILES = sorted((REPO_ROOT / "dbt_project" / "models" / "staging").glob("*/_*__sources.yml"))
RAW_TABLES = {
    spec.raw_table
    for spec in load_topics(REPO_ROOT / "infra" / "kafka" / "topics.yml")
    if spec.sink
}


def _sink_sources() -> list[tuple[str, str, str, list[str]]]:
    """(yml file, source.table, identifier, documented columns) of each table the sink loads."""
    found = []
    for path in SOURCES_FILES:
        for source in yaml.safe_load(path.read_text())["sources"]:
            if source.get("loader") != SINK_LOADER:
                continue
            for table in source.get("tables") or []:
                found.append(
                    (
                        str(path.relative_to(REPO_ROOT)),
                        f"{source['name']}.{table['name']}",
                        table.get("identifier", table["name"]),
                        [c["name"] for c in table.get("columns") or []],
                    )
                )
    return found


SINK_SOURCES = _sink_sources()


@pytest.fixture(scope="module")
def sink_tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, str, str]]]:
    """(column, type, nullable) of every table the sink creates, as DuckDB describes them."""
    path = tmp_path_factory.mktemp("raw") / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        ensure_schema(con, sorted(RAW_TABLES))
        names = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            ).fetchall()
        ]
        return {name: con.execute(f"describe raw.{name}").fetchall() for name in names}


def test_a_raw_table_has_the_declared_columns_types_and_nulls_in_order(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        ensure_schema(con, ["t_x_v1"])
        described = con.execute("describe raw.t_x_v1").fetchall()
        declared = [
            (c.name, con.execute(f"select typeof(cast(null as {c.duckdb}))").fetchone()[0])
            for c in RAW_COLUMNS
        ]

    assert [(name, kind) for name, kind, *_ in described] == declared
    not_null = {name for name, _, null, *_ in described if null == "NO"}
    assert not_null == {c.name for c in RAW_COLUMNS if not c.nullable}


def test_a_decoded_batch_carries_every_declared_column_but_those_set_at_commit():
    assert list(ColumnBatch().columns) == ARROW_SCHEMA.names
    assert ARROW_SCHEMA.names == [c.name for c in RAW_COLUMNS if c.arrow is not None]
    assert [c.name for c in RAW_COLUMNS if c.arrow is None] == ["ingested_at"]


def test_every_raw_table_the_sink_loads_is_a_dbt_source():
    documented = {identifier for _, _, identifier, _ in SINK_SOURCES}

    assert RAW_TABLES - documented == set(), (
        f"raw tables with no dbt source (loader {SINK_LOADER!r}) under dbt_project/models/staging"
    )


@pytest.mark.parametrize(
    ("path", "table", "identifier", "columns"), SINK_SOURCES, ids=[t for _, t, _, _ in SINK_SOURCES]
)
def test_each_dbt_source_table_of_the_sink_documents_exactly_its_columns_in_order(
    sink_tables, path: str, table: str, identifier: str, columns: list[str]
):
    assert identifier in sink_tables, (
        f"{path}: {table} names raw.{identifier}, which the sink lacks"
    )
    created = [name for name, *_ in sink_tables[identifier]]
    if identifier in RAW_TABLES:
        assert created == DECLARED
    missing = [c for c in created if c not in columns]
    unknown = [c for c in columns if c not in created]

    assert not missing and not unknown, (
        f"{path}: source table {table} documents columns that differ from raw.{identifier} "
        f"(connectors/sink/raw.py, loader.py): missing {missing}, not in the table {unknown}"
    )
    assert columns == created, f"{path}: {table} lists the columns out of table order"
