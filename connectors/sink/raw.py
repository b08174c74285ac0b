"""The columns of every raw.<topic> table, declared once.

The decoder's Arrow schemas, the loader's DDL and its inserts all come from `RAW_COLUMNS`, and a
unit test holds every dbt source table the sink loads to the same names in the same order, so a
column added here cannot silently miss the warehouse or the docs.
"""

from __future__ import annotations

from typing import NamedTuple

import pyarrow as pa

#: Text columns have 64-bit offsets: a batch of large events can pass 2 GiB of payload.
TEXT = pa.large_string()


class RawColumn(NamedTuple):
    """One raw column: its Arrow type in a decoded batch (None: the loader sets it at commit),
    its DuckDB type, whether it may be null, what it holds, and the CloudEvents attribute it is
    read from when DuckDB extracts it from the payload (None: it comes from the Kafka record)."""

    name: str
    arrow: pa.DataType | None
    duckdb: str
    nullable: bool
    description: str
    attribute: str | None = None


RAW_COLUMNS: tuple[RawColumn, ...] = (
    RawColumn("event_id", TEXT, "varchar", False, "CloudEvents `id`", "id"),
    RawColumn("source", TEXT, "varchar", False, "CloudEvents `source` URN", "source"),
    RawColumn("type", TEXT, "varchar", False, "CloudEvents `type`", "type"),
    RawColumn("subject", TEXT, "varchar", True, "CloudEvents `subject`", "subject"),
    RawColumn("event_time", TEXT, "timestamptz", True, "CloudEvents `time`", "time"),
    RawColumn("specversion", TEXT, "varchar", True, "CloudEvents spec version", "specversion"),
    RawColumn("dataschema", TEXT, "varchar", True, "URI of the `data` contract", "dataschema"),
    RawColumn("data", TEXT, "json", True, "the event's `data`, as JSON", "data"),
    RawColumn("message_key", TEXT, "varchar", True, "Kafka message key (UTF-8)"),
    RawColumn("kafka_topic", TEXT, "varchar", False, "Kafka topic read from"),
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
#: A batch of validated payloads: the event's JSON text, then the columns read from the record.
PAYLOAD_SCHEMA = pa.schema(
    [("payload", TEXT)]
    + [(c.name, c.arrow) for c in RAW_COLUMNS if c.arrow is not None and c.attribute is None]
)


def create_table_sql(table: str) -> str:
    """DDL of raw.<table>."""
    columns = ",\n    ".join(
        f"{c.name} {c.duckdb}{'' if c.nullable else ' not null'}" for c in RAW_COLUMNS
    )
    return f"create table if not exists raw.{table} (\n    {columns}\n)"


def _cast(expression: str, column: RawColumn) -> str:
    """`expression` cast to the column's DuckDB type. A text timestamp is upper-cased first:
    RFC 3339 (and so the contracts) allows a lowercase `t` and `z`, which DuckDB's cast refuses,
    and one such event would stop its whole batch from ever committing."""
    if column.duckdb == "timestamptz" and column.arrow == TEXT:
        expression = f"upper({expression})"
    return f"cast({expression} as {column.duckdb})"


def insert_sql(table: str, relation: str) -> str:
    """Insert of a registered Arrow batch into raw.<table>, each column cast to its DuckDB type;
    a column the batch lacks (`ingested_at`) is a parameter: bind the commit time to it."""
    values = ", ".join(
        _cast(c.name, c) if c.arrow is not None else f"?::{c.duckdb}" for c in RAW_COLUMNS
    )
    names = ", ".join(c.name for c in RAW_COLUMNS)
    return f"insert into raw.{table} ({names}) select {values} from {relation}"


def insert_payloads_sql(table: str, relation: str) -> str:
    """Insert of a registered payload batch (`PAYLOAD_SCHEMA`) into raw.<table>: DuckDB parses
    each payload once and takes the CloudEvents attributes from it, `data` as JSON text; bind the
    commit time to the parameter as in `insert_sql`."""
    fields = ", ".join(
        f'"{c.attribute}": "{"JSON" if c.duckdb == "json" else "VARCHAR"}"'
        for c in RAW_COLUMNS
        if c.attribute is not None
    )
    values = ", ".join(
        _cast(f'event."{c.attribute}"', c)
        if c.attribute is not None
        else _cast(c.name, c)
        if c.arrow is not None
        else f"?::{c.duckdb}"
        for c in RAW_COLUMNS
    )
    names = ", ".join(c.name for c in RAW_COLUMNS)
    parsed = f"select from_json(payload, '{{{fields}}}') as event, * from {relation}"
    return f"insert into raw.{table} ({names}) select {values} from ({parsed})"
