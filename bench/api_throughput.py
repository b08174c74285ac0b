"""Partner push API throughput vs the raw kafka-python producer, in the same run.

    .venv/bin/python bench/api_throughput.py --clients 50 --batch 100 --seconds 10

Starts `urbanflow api serve` in its own process on a free loopback port (rate limits lifted, a
fresh partners database, a fresh 3-partition topic for partner results), registers a partner,
then runs N concurrent clients (httpx.AsyncClient, one process) that each POST batches of valid
org.urbanflow.partner.result.v1 events (unique ids) for the given time. Before and after that,
the raw rate: EventProducer.send_raw of the same encoded events + confirm, to another fresh topic.
Prints accepted events/s, p50/p99 request latency, both producer rates and the ratio.
Target from the push API issue: API >= 50 % of the raw producer rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson
import psutil
import yaml

from connectors.api.partners import PartnerStore
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import TopicSpec, admin_client, apply_topics
from connectors.settings import Settings

RESULT_TYPE = "org.urbanflow.partner.result.v1"
PARTITIONS = 3
CITIES = ("KENBO", "UGKLA", "TZDAR", "ETADD", "NGLOS", "GHACC", "BDDAC", "PHMNL", "PELIM", "MZMPM")


def event(source: str, event_id: str, n: int) -> bytes:
    activity = f"XM-BENCH-{n % 997}"
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": RESULT_TYPE,
            "time": "2026-01-01T00:00:00Z",
            "subject": activity,
            "data": {
                "activity_id": activity,
                "city_code": CITIES[n % len(CITIES)],
                "theme": "basic_services",
                "indicator": "people_reached",
                "period": f"{2015 + n % 10}-Q{1 + n % 4}",
                "value": n % 5000,
                "unit": "people",
                "sex": ("female", "male", "total")[n % 3],
            },
        }
    )


def fresh_topic(bootstrap: str, label: str) -> TopicSpec:
    spec = TopicSpec(
        f"bench.{uuid.uuid4().hex[:8]}.{label}.v1",
        PARTITIONS,
        3_600_000,
        (RESULT_TYPE,),
        False,
        False,
        3_600_000,
    )
    apply_topics(bootstrap, [spec])
    return spec


def raw_producer_rate(bootstrap: str, topic: str, source: str, events: int) -> tuple[float, float]:
    """kafka-python alone: send the same encoded events, confirm, as a source would.

    Returns (events per second, events per CPU-second of this process).
    """
    values = [event(source, f"raw-{n}", n) for n in range(events)]
    started, cpu = time.monotonic(), time.process_time()
    with EventProducer(bootstrap, client_id="bench-raw-producer") as producer:
        for n, value in enumerate(values):
            producer.send_raw(topic, value, key=f"XM-BENCH-{n % 997}")
        producer.confirm()
    return events / (time.monotonic() - started), events / (time.process_time() - cpu)


def start_api(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    cli = str(Path(sys.executable).with_name("urbanflow"))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [cli, "api", "serve", "--port", str(port)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            httpx.get(f"{url}/openapi.json", timeout=2).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the API did not start:\n{log.read_text()}")


async def client(
    http: httpx.AsyncClient, key: str, source: str, number: int, batch: int, until: float
) -> tuple[int, int, list[float]]:
    """POST batches until `until`: (accepted events, refused requests, latencies in s)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    # One encoded batch with an id placeholder: each request costs the client a few replaces.
    template = [event(source, "@ID@", n).split(b"@ID@") for n in range(batch)]
    accepted = refused = 0
    latencies: list[float] = []
    sent = 0
    while time.monotonic() < until:
        body = b'{"events":[%b]}' % b",".join(
            b"%b%d-%d%b" % (head, number, sent + n, tail) for n, (head, tail) in enumerate(template)
        )
        sent += batch
        started = time.monotonic()
        response = await http.post("/v1/events", content=body, headers=headers)
        latencies.append(time.monotonic() - started)
        if response.status_code == 202:
            accepted += response.json()["accepted"]
        else:
            refused += 1
    return accepted, refused, latencies


async def load(
    url: str, key: str, source: str, clients: int, batch: int, seconds: float
) -> tuple[int, int, list[float], float]:
    # One AsyncClient (one keep-alive connection) per client, as 50 partners would have: a
    # shared 50-connection pool costs the load generator more than the API it measures.
    async with contextlib.AsyncExitStack() as stack:
        pool = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60))
            for _ in range(clients)
        ]
        await pool[0].post("/v1/events", content=b"{}", headers={"Authorization": f"Bearer {key}"})
        started = time.monotonic()
        results = await asyncio.gather(
            *(client(http, key, source, n, batch, started + seconds) for n, http in enumerate(pool))
        )
        elapsed = time.monotonic() - started
    latencies = sorted(latency for _, _, lat in results for latency in lat)
    return sum(r[0] for r in results), sum(r[1] for r in results), latencies, elapsed


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--raw-events", type=int, default=100_000)
    parser.add_argument("--json", type=Path, help="also write the figures here (make bench)")
    args = parser.parse_args()

    bootstrap = Settings.from_env().kafka_bootstrap
    api_topic, raw_topic = fresh_topic(bootstrap, "api"), fresh_topic(bootstrap, "raw")
    with tempfile.TemporaryDirectory(prefix="uf-bench-api-") as tmp:
        folder = Path(tmp)
        topics_file = folder / "topics.yml"
        topic = {"name": api_topic.name, "partitions": PARTITIONS, "event_types": [RESULT_TYPE]}
        topics_file.write_text(yaml.safe_dump({"topics": [topic]}))
        partner, key = PartnerStore(folder / "partners.sqlite").add("bench")
        source = partner.default_source
        env = {
            "UF_KAFKA_BOOTSTRAP": bootstrap,
            "UF_TOPICS_FILE": str(topics_file),
            "UF_PARTNERS_DB": str(folder / "partners.sqlite"),
            "UF_API_RATE_PER_S": "1000000",
            "UF_API_RATE_BURST": "1000000",
        }
        try:
            print(f"raw producer: {args.raw_events:,} events to {raw_topic.name} ...", flush=True)
            raw_before = raw_producer_rate(bootstrap, raw_topic.name, source, args.raw_events)
            proc, url = start_api(env, folder / "api.log")
            server = psutil.Process(proc.pid)
            try:
                print(
                    f"API: {args.clients} clients x batches of {args.batch} for "
                    f"{args.seconds:g} s at {url} ...",
                    flush=True,
                )
                cpu_before, client_cpu = server.cpu_times(), time.process_time()
                accepted, refused, latencies, elapsed = asyncio.run(
                    load(url, key, source, args.clients, args.batch, args.seconds)
                )
                cpu_after, client_cpu = server.cpu_times(), time.process_time() - client_cpu
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)
            raw_after = raw_producer_rate(bootstrap, raw_topic.name, source, args.raw_events)
        finally:
            admin = admin_client(bootstrap)
            admin.delete_topics([api_topic.name, raw_topic.name])
            admin.close()

    api_rate = accepted / elapsed
    raw = statistics.mean([raw_before[0], raw_after[0]])
    raw_per_cpu = statistics.mean([raw_before[1], raw_after[1]])
    server_cpu = sum(cpu_after[:2]) - sum(cpu_before[:2])
    ratio = api_rate / raw
    print()
    print(f"requests                 : {len(latencies):,} ({refused} not 202) in {elapsed:.1f} s")
    print(f"API accepted             : {api_rate:,.0f} events/s ({accepted:,} events)")
    print(
        f"request latency          : p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )
    print(
        f"CPU during the API run   : server {server_cpu / elapsed:.0%} of a core, "
        f"clients {client_cpu / elapsed:.0%}"
    )
    print(
        f"raw producer             : {raw:,.0f} events/s "
        f"(before {raw_before[0]:,.0f}, after {raw_after[0]:,.0f})"
    )
    print(
        f"events per CPU-second    : API server {accepted / server_cpu:,.0f}, "
        f"raw producer {raw_per_cpu:,.0f}  (cost, whatever else the machine runs)"
    )
    verdict = "met" if ratio >= 0.5 else "NOT met"
    print(f"API / raw producer       : {ratio:.0%}  (target >= 50%: {verdict})")
    if args.json:
        figures = {
            "api_rate": round(api_rate),
            "raw_rate": round(raw),
            "ratio": ratio,  # unrounded: verdicts read it
            "requests": len(latencies),
            "refused": refused,
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        }
        args.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
