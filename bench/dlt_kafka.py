"""dlt peer of the sink benchmark: the same Kafka topic into DuckDB through a dlt pipeline.

Runs in its own venv (`.venv-bench`, made by `make bench-venv`: dlt's pins clash with Airflow's, so
dlt never enters the project's lock), started by bench/sink_throughput.py in its own process. It
uses dlt at its fastest setting measured here: one resource yielding a list of dicts per poll (the
record parsed with orjson, as dlt's Kafka verified source does), `data` hinted as a JSON column
instead of flattened into ~25 columns, and the parquet loader file format. The consumer is the same
kafka-python client with the same fetch sizes as the sink. Prints one JSON line with the rate.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

# Quiet and local: no telemetry, warnings only; set before dlt reads its configuration.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

import dlt
import orjson
from kafka import KafkaConsumer, TopicPartition

#: The sink's fetch sizes (connectors/settings.py; this venv cannot import the project).
FETCH_SETTINGS = json.loads(os.environ.get("UF_BENCH_FETCH_SETTINGS", "{}"))


def events(bootstrap: str, topic: str, partitions: int):
    """Every record of the topic as a row dict: envelope attributes, `data`, Kafka coordinates."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **FETCH_SETTINGS
    )
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    total = sum(consumer.end_offsets(tps).values())
    seen = 0
    try:
        while seen < total:
            for records in consumer.poll(timeout_ms=200).values():
                rows = []
                for r in records:
                    event = orjson.loads(r.value)
                    rows.append(
                        {
                            "event_id": event["id"],
                            "source": event["source"],
                            "type": event["type"],
                            "subject": event.get("subject"),
                            "event_time": event.get("time"),
                            "specversion": event.get("specversion"),
                            "dataschema": event.get("dataschema"),
                            "data": event.get("data"),
                            "message_key": None if r.key is None else r.key.decode(),
                            "kafka_topic": r.topic,
                            "kafka_partition": r.partition,
                            "kafka_offset": r.offset,
                            "kafka_timestamp": r.timestamp,
                        }
                    )
                seen += len(rows)
                yield rows
    finally:
        consumer.close()


def main(bootstrap: str, topic: str, partitions: int, warehouse: str) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="uf-bench-dlt-") as pipelines_dir:
        pipeline = dlt.pipeline(
            pipeline_name="bench_kafka",
            destination=dlt.destinations.duckdb(warehouse),
            dataset_name="raw",
            pipelines_dir=pipelines_dir,
        )
        resource = dlt.resource(
            events(bootstrap, topic, partitions),
            name="bench_events",
            write_disposition="append",
            columns={"data": {"data_type": "json"}},
        )
        pipeline.run(resource, loader_file_format="parquet")
        seconds = time.monotonic() - started
        with pipeline.sql_client() as client:
            loaded = client.execute_sql("select count(*) from bench_events")[0][0]
    print(json.dumps({"events": loaded, "seconds": seconds, "rate": loaded / seconds}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
