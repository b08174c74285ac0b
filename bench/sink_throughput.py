"""Sink throughput vs the raw kafka-python consume rate, on the same topic, in the same run.

    make bench            # or: .venv/bin/python bench/sink_throughput.py --events 200000

Produces N CloudEvents of about 1 KB to a fresh 3-partition topic, then alternates runs of
(a) bench/raw_consume.py: kafka-python reading everything, no processing (the ceiling), and
(b) `urbanflow sink run --until-caught-up` into a fresh DuckDB file,
each in its own process. Prints the median rates, their ratio and the sink's peak RSS (the whole
process tree). Targets from the Foundation issue: ratio >= 70 %, peak RSS < 400 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import yaml

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import TopicSpec, admin_client, apply_topics
from connectors.samples.synthetic import OBSERVATION_TYPE, observation_events
from connectors.settings import Settings

HERE = Path(__file__).resolve().parent
PARTITIONS = 3


def produce(bootstrap: str, topic: str, events: int, size: int) -> float:
    started = time.monotonic()
    with EventProducer(bootstrap, client_id="bench-producer", linger_ms=50) as producer:
        for key, value in observation_events(events, target_bytes=size):
            producer.send_raw(topic, value, key=key)
        producer.confirm()
    return events / (time.monotonic() - started)


def raw_consume(bootstrap: str, topic: str) -> float:
    out = subprocess.run(
        [sys.executable, str(HERE / "raw_consume.py"), bootstrap, topic, str(PARTITIONS)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["rate"]


def peak_tree_rss(proc: subprocess.Popen) -> tuple[str, int]:
    """Wait for `proc`, sampling the RSS of it and its children; return (stdout, peak bytes)."""
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.05)
    return proc.stdout.read() if proc.stdout else "", peak


def sink_run(bootstrap: str, topic: str, workdir: Path, run: int) -> tuple[float, int]:
    topics_file = workdir / "topics.yml"
    topics_file.write_text(
        yaml.safe_dump(
            {
                "topics": [
                    {"name": topic, "partitions": PARTITIONS, "event_types": [OBSERVATION_TYPE]}
                ]
            }
        )
    )
    env = {
        **os.environ,
        "UF_KAFKA_BOOTSTRAP": bootstrap,
        "UF_TOPICS_FILE": str(topics_file),
        "UF_WAREHOUSE_PATH": str(workdir / f"bench-{run}.duckdb"),
        "UF_SINK_GROUP": f"bench-{uuid.uuid4().hex[:8]}",
    }
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("urbanflow")),
            "sink",
            "run",
            "--until-caught-up",
            "--no-progress",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, peak = peak_tree_rss(proc)
    match = re.search(r"\(([\d,]+) events/s\)", output)
    if proc.returncode != 0 or not match:
        raise SystemExit(f"sink run failed:\n{output}")
    return float(match.group(1).replace(",", "")), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=1024, help="approximate event size in bytes")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    bootstrap = Settings.from_env().kafka_bootstrap
    topic = f"bench.{uuid.uuid4().hex[:8]}.observation.v1"
    spec = TopicSpec(topic, PARTITIONS, 3_600_000, (OBSERVATION_TYPE,), True, True, 3_600_000)
    apply_topics(bootstrap, [spec])
    try:
        print(f"producing {args.events:,} events of ~{args.size} B to {topic} ...", flush=True)
        produce_rate = produce(bootstrap, topic, args.events, args.size)
        raw_rates, sink_rates, peaks = [], [], []
        with tempfile.TemporaryDirectory(prefix="uf-bench-") as tmp:
            for run in range(args.runs):
                raw_rates.append(raw_consume(bootstrap, topic))
                rate, peak = sink_run(bootstrap, topic, Path(tmp), run)
                sink_rates.append(rate)
                peaks.append(peak)
                print(
                    f"  run {run + 1}: raw consume {raw_rates[-1]:,.0f}/s, sink {rate:,.0f}/s, "
                    f"sink peak RSS {peak / 2**20:,.0f} MB",
                    flush=True,
                )
    finally:
        admin = admin_client(bootstrap)
        admin.delete_topics([spec.name, spec.dlq_name])
        admin.close()

    raw, sink = statistics.median(raw_rates), statistics.median(sink_rates)
    ratio = sink / raw
    peak_mb = max(peaks) / 2**20
    ratio_verdict = "met" if ratio >= 0.7 else "NOT met"
    rss_verdict = "met" if peak_mb < 400 else "NOT met"
    print()
    print(f"events                  : {args.events:,} x ~{args.size} B, {PARTITIONS} partitions")
    print(f"producer (kafka-python) : {produce_rate:,.0f} events/s")
    print(f"raw consume (ceiling)   : {raw:,.0f} events/s (median of {args.runs})")
    print(f"sink into DuckDB        : {sink:,.0f} events/s (median of {args.runs})")
    print(f"sink / ceiling          : {ratio:.0%}  (target >= 70%: {ratio_verdict})")
    print(f"sink peak RSS           : {peak_mb:,.0f} MB (target < 400 MB: {rss_verdict})")


if __name__ == "__main__":
    main()
