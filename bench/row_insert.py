"""Per-row INSERT consumer, the naive baseline of the sink benchmark.

Run by bench/sink_throughput.py in its own process: kafka-python reads the topic, each record is
parsed with orjson and inserted with `executemany` (one row per parameter set) into the same raw
table the sink writes, all in one transaction. No contract validation, which only flatters it.
Prints one JSON line with the rate.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

import duckdb
import orjson
from kafka import KafkaConsumer, TopicPartition

from connectors.settings import Settings
from connectors.sink.loader import ensure_schema
from connectors.sink.raw import RAW_COLUMNS

TABLE = "bench_events"


def row(record: object, now: datetime) -> tuple:
    """The raw row of one record: the envelope's attributes, `data` as JSON, its coordinates."""
    event = orjson.loads(record.value)  # type: ignore[attr-defined]
    key = record.key  # type: ignore[attr-defined]
    return (
        event["id"],
        event["source"],
        event["type"],
        event.get("subject"),
        event.get("time"),
        event.get("specversion"),
        event.get("dataschema"),
        orjson.dumps(event.get("data")).decode(),
        None if key is None else key.decode("utf-8", "replace"),
        record.topic,  # type: ignore[attr-defined]
        record.partition,  # type: ignore[attr-defined]
        record.offset,  # type: ignore[attr-defined]
        record.timestamp,  # type: ignore[attr-defined]
        now,
    )


def main(bootstrap: str, topic: str, partitions: int, warehouse: str) -> None:
    started = time.monotonic()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        **Settings.from_env().sink_fetch_settings,
    )
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    total = sum(consumer.end_offsets(tps).values())
    con = duckdb.connect(warehouse)
    ensure_schema(con, [TABLE])
    names = ", ".join(c.name for c in RAW_COLUMNS)
    values = ", ".join(
        "make_timestamptz(? * 1000)" if c.name == "kafka_timestamp" else "?" for c in RAW_COLUMNS
    )
    sql = f"insert into raw.{TABLE} ({names}) values ({values})"
    con.execute("begin transaction")
    seen = 0
    while seen < total:
        for records in consumer.poll(timeout_ms=200).values():
            now = datetime.now(UTC)
            con.executemany(sql, [row(r, now) for r in records])
            seen += len(records)
    con.execute("commit")
    con.close()
    seconds = time.monotonic() - started
    consumer.close()
    print(json.dumps({"events": seen, "seconds": seconds, "rate": seen / seconds}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
