"""The columns of every raw.<topic> table, declared once.

The decoder's Arrow schema, the loader's DDL and its insert all come from `RAW_COLUMNS`, and a unit
test holds every dbt source table the sink loads to the same names in the same order, so a column
added here cannot silently miss the warehouse or the docs.
"""

from __future__ import annotations

from typing import NamedTuple

import pyarrow as pa


class RawColumn(NamedTuple):
    """One raw column: its Arrow type in a decoded batch (None: the loader sets it at commit),
    its DuckDB type, whether it may be null, and what it holds."""

    name: str
    arrow: pa.DataType | None
    duckdb: str
    nullable: bool
    description: str


RAW_COLUMNS: tuple[RawColumn, ...] = (
    RawColumn("event_id", pa.string(), "varchar", False, "CloudEvents `id`"),
    RawColumn("source", pa.string(), "varchar", False, "CloudEvents `source` URN"),
    RawColumn("type", pa.string(), "varchar", False, "CloudEvents `type`"),
    RawColumn("subject", pa.string(), "varchar", True, "CloudEvents `subject`"),
    RawColumn("event_time", pa.string(), "timestamptz", True, "CloudEvents `time`"),
    RawColumn("specversion", pa.string(), "varchar", True, "CloudEvents spec version"),
    RawColumn("dataschema", pa.string(), "varchar", True, "URI of the `data` contract"),
    RawColumn("data", pa.string(), "json", True, "the event's `data`, as JSON"),
    RawColumn("message_key", pa.string(), "varchar", True, "Kafka message key (UTF-8)"),
    RawColumn("kafka_topic", pa.string(), "varchar", False, "Kafka topic read from"),
    RawColumn("kafka_partition", pa.int32(), "integer", False, "Kafka partition read from"),
    RawColumn("kafka_offset", pa.int64(), "bigint", False, "Kafka offset in its partition"),
    RawColumn(
        "kafka_timestamp", pa.timestamp("ms", tz="UTC"), "timestamptz", True, "Kafka timestamp"
    ),
    RawColumn("ingested_at", None, "timestamptz", False, "when the sink committed the row"),
)

#: The columns a decoded batch carries, in table order; the rest the loader sets at commit.
BATCH_COLUMNS: tuple[str, ...] = tuple(c.name for c in RAW_COLUMNS if c.arrow is not None)
ARROW_SCHEMA = pa.schema([(c.name, c.arrow) for c in RAW_COLUMNS if c.arrow is not None])


def create_table_sql(table: str) -> str:
    """DDL of raw.<table>."""
    columns = ",\n    ".join(
        f"{c.name} {c.duckdb}{'' if c.nullable else ' not null'}" for c in RAW_COLUMNS
    )
    return f"create table if not exists raw.{table} (\n    {columns}\n)"


def insert_sql(table: str, relation: str) -> str:
    """Insert of a registered Arrow batch into raw.<table>, each column cast to its DuckDB type;
    a column the batch lacks (`ingested_at`) is a parameter: bind the commit time to it."""
    values = ", ".join(
        f"cast({c.name} as {c.duckdb})" if c.arrow is not None else f"?::{c.duckdb}"
        for c in RAW_COLUMNS
    )
    names = ", ".join(c.name for c in RAW_COLUMNS)
    return f"insert into raw.{table} ({names}) select {values} from {relation}"
