"""Ceiling for the sink benchmark: kafka-python consuming a topic with no processing at all.

Run by bench/sink_throughput.py in its own process; prints one JSON line with the rate.
"""

from __future__ import annotations

import json
import sys
import time

from kafka import KafkaConsumer, TopicPartition

from connectors.settings import Settings


def main(bootstrap: str, topic: str, partitions: int) -> None:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        **Settings.from_env().sink_fetch_settings,
    )
    started = time.monotonic()
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    total = sum(consumer.end_offsets(tps).values())
    seen = 0
    while seen < total:
        for records in consumer.poll(timeout_ms=200).values():
            seen += len(records)
    seconds = time.monotonic() - started
    consumer.close()
    print(json.dumps({"events": seen, "seconds": seconds, "rate": seen / seconds}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
