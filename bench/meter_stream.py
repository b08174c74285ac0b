"""Streaming meter producer vs the raw kafka-python producer, on the same events, in the same run.

    .venv/bin/python bench/meter_stream.py --rate 3000 --seconds 10

(a) `run_source` over the `utilities` source in stream mode, paced at --rate for --seconds, into a
fresh 6-partition scratch topic: what `urbanflow source run utilities` achieves;
(b) kafka-python's KafkaProducer (the shared producer's settings) sending the same events, encoded
beforehand, as fast as it can: the ceiling.
Also prints the CPU cost per event of each step in this process (generate, make_event with its
contract validation, send), which says which one caps the rate. The scratch topic is deleted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
import uuid
from pathlib import Path

from kafka import KafkaProducer

from connectors.events import encode, make_event
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import TopicSpec, admin_client, apply_topics
from connectors.sdk import Record, load_config, run_source
from connectors.sdk.state import StateStore
from connectors.settings import Settings
from connectors.sources.utilities import (
    OUTAGES,
    READINGS,
    Clock,
    UtilitiesConfig,
    UtilitiesSource,
)

PARTITIONS = 6
SEED = 42


class VirtualClock(Clock):
    """Sleeps without waiting, so the same readings can be regenerated at full speed."""

    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def config(rate: float, seconds: float, meters: int) -> UtilitiesConfig:
    return load_config(
        "utilities",
        UtilitiesConfig,
        overrides={
            "rate": rate,
            "duration_s": seconds,
            "meters": meters,
            "seed": SEED,
            "outage_probability": 0.0,
            "run_tag": "bench",
        },
    )


def streaming(source: UtilitiesSource, settings: Settings, cfg: UtilitiesConfig) -> dict:
    """(a): the source through run_source and the shared producer, paced in real time."""
    with tempfile.TemporaryDirectory() as state_dir:
        store = StateStore(Path(state_dir), "utilities")
        with EventProducer(settings.kafka_bootstrap, client_id="bench-meter-stream") as producer:
            report = run_source(source, cfg, producer, store)
    sent = report.by_stream.get("readings", 0)
    return {"events": sent, "seconds": report.seconds, "rate": sent / report.seconds}


def same_events(source: UtilitiesSource, cfg: UtilitiesConfig, count: int) -> dict:
    """The readings (a) sent, regenerated and encoded, timing each step per event."""
    encoded: list[tuple[bytes, bytes]] = []
    validating = encoding = 0.0
    started = time.perf_counter()
    for item in source.read(cfg, {}):
        if not isinstance(item, Record):
            continue
        before = time.perf_counter()
        event = make_event(
            item.stream.event_type,
            item.source,
            item.data,
            event_id=item.event_id,
            subject=item.subject,
            time=item.time,
        )
        built = time.perf_counter()
        encoded.append((item.key.encode(), encode(event)))
        validating += built - before
        encoding += time.perf_counter() - built
        if len(encoded) == count:
            break
    total = time.perf_counter() - started
    return {
        "encoded": encoded,
        "generate_us": (total - validating - encoding) / count * 1e6,
        "make_event_us": validating / count * 1e6,
        "encode_us": encoding / count * 1e6,
    }


def raw_producer(settings: Settings, topic: str, encoded: list[tuple[bytes, bytes]]) -> dict:
    """(b): kafka-python with the shared producer's settings, no pacing, nothing but send."""
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="bench-raw-producer",
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        batch_size=256 * 1024,
        max_request_size=2 * 1024 * 1024,
    )
    try:
        started = time.perf_counter()
        for key, value in encoded:
            producer.send(topic, value=value, key=key)
        queued = time.perf_counter()
        producer.flush(timeout=120)
        seconds = time.perf_counter() - started
    finally:
        producer.close(timeout=30)
    return {
        "events": len(encoded),
        "seconds": seconds,
        "rate": len(encoded) / seconds,
        "send_us": (queued - started) / len(encoded) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=3_000, help="target events/s")
    parser.add_argument("--seconds", type=float, default=10, help="how long (a) streams")
    parser.add_argument("--meters", type=int, default=2_000)
    args = parser.parse_args()
    settings = Settings.from_env()
    topic = f"bench.{uuid.uuid4().hex[:10]}.meter_reading.v1"
    spec = TopicSpec(
        name=topic,
        partitions=PARTITIONS,
        retention_ms=3_600_000,
        event_types=(READINGS.event_type,),
        sink=False,
        dlq=True,
        dlq_retention_ms=3_600_000,
    )
    apply_topics(settings.kafka_bootstrap, [spec])
    streams = {
        "readings": dataclasses.replace(READINGS, topic=topic),
        "outages": dataclasses.replace(OUTAGES, topic=topic),
    }
    cfg = config(args.rate, args.seconds, args.meters)
    try:
        paced = streaming(UtilitiesSource(**streams), settings, cfg)
        costs = same_events(UtilitiesSource(**streams, clock=VirtualClock()), cfg, paced["events"])
        ceiling = raw_producer(settings, topic, costs.pop("encoded"))
    finally:
        admin = admin_client(settings.kafka_bootstrap)
        try:
            admin.delete_topics([spec.name, spec.dlq_name])
        finally:
            admin.close()
    ratio = paced["rate"] / ceiling["rate"]
    print(f"target rate            {args.rate:>10,.0f} events/s for {args.seconds:g} s")
    print(f"(a) streaming producer {paced['rate']:>10,.0f} events/s ({paced['events']:,} events)")
    print(f"(b) raw kafka-python   {ceiling['rate']:>10,.0f} events/s (same events, unpaced)")
    print(f"ratio a/b              {ratio:>10.1%}")
    print(
        f"CPU per event: generate {costs['generate_us']:.1f} µs, make_event "
        f"{costs['make_event_us']:.1f} µs, encode {costs['encode_us']:.1f} µs, "
        f"kafka-python send {ceiling['send_us']:.1f} µs"
    )
    print(
        json.dumps(
            {
                "target": args.rate,
                "streaming": paced,
                "raw": ceiling,
                "ratio": ratio,
                "cpu_us": costs,
            }
        )
    )


if __name__ == "__main__":
    main()
