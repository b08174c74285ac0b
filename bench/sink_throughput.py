"""Kafka -> DuckDB: the sink against its ceiling and its peers, same events, same machine, same run.

    make bench            # or: .venv/bin/python bench/sink_throughput.py --events 200000

Produces N CloudEvents of about 1 KB to a fresh 3-partition topic, then runs, each in its own
process and taking turns within every round:
(a) bench/raw_consume.py: kafka-python reading everything, no processing (the ceiling);
(b) `urbanflow sink run --until-caught-up` into a fresh DuckDB file (validated, exactly once);
(c) bench/dlt_kafka.py: a dlt pipeline at its fastest setting (parquet loader), in `.venv-bench`;
(d) bench/row_insert.py: per-row `executemany` INSERT in one transaction (the naive baseline;
    `--row-insert-runs`, one by default: it takes minutes).
Then, unless skipped, the push API bench (bench/api_throughput.py) and the dbt full vs refresh
bench (bench/dbt_incremental.py, `--dbt-events`). Each process's peak RSS is sampled with its
children. Prints one table and writes bench/results.json (docs/benchmarks.md explains it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
import yaml

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import TopicSpec, admin_client, apply_topics
from connectors.samples.synthetic import OBSERVATION_TYPE, observation_events
from connectors.settings import Settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PARTITIONS = 3
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
RESULTS = HERE / "results.json"
#: Targets of issue #13; the API and dbt targets are those of their own benches.
SINK_VS_RAW, SINK_VS_DLT, SINK_VS_ROWS, API_VS_RAW, DBT_REFRESH = 0.5, 2.0, 20.0, 0.5, 0.15
RSS_LIMIT_MB = 300
FRESHNESS = HERE / "freshness.json"
FRESHNESS_P95_S = 60


def produce(bootstrap: str, topic: str, events: int, size: int) -> float:
    started = time.monotonic()
    with EventProducer(bootstrap, client_id="bench-producer", linger_ms=50) as producer:
        for key, value in observation_events(events, target_bytes=size):
            producer.send_raw(topic, value, key=key)
        producer.confirm()
    return events / (time.monotonic() - started)


def measured(command: list[str], env: dict[str, str] | None = None) -> tuple[str, int, int]:
    """Run `command`, sampling the RSS of it and its children; (output, peak bytes, exit code)."""
    proc = subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.05)
    output = proc.stdout.read() if proc.stdout else ""
    return output, peak, proc.returncode


def json_rate(output: str) -> float:
    """The rate of a contender that ends with one JSON line (raw, dlt, per-row INSERT)."""
    return json.loads(output.strip().splitlines()[-1])["rate"]


def sink_rate(output: str) -> float:
    """The rate of `urbanflow sink run`'s one-line summary."""
    match = re.search(r"\(([\d,]+) events/s\)", output)
    if not match:
        raise ValueError("no summary line")
    return float(match.group(1).replace(",", ""))


@dataclass
class Contender:
    """One way of loading the topic, run as its own process once per round."""

    name: str
    label: str
    command: Callable[[Path], list[str]]
    parse: Callable[[str], float]
    env: Callable[[Path], dict[str, str]] = lambda _: {}
    runs: int | None = None  # None: every round
    rates: list[float] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)

    def run(self, workdir: Path) -> None:
        output, peak, code = measured(self.command(workdir), self.env(workdir))
        try:
            if code != 0:
                raise ValueError(f"exit code {code}")
            self.rates.append(self.parse(output))
        except (ValueError, KeyError, IndexError) as exc:
            raise SystemExit(f"{self.name} failed ({exc}):\n{output[-3000:]}") from None
        self.peaks.append(peak)

    def summary(self) -> dict[str, object]:
        return {
            "label": self.label,
            "rates": [round(r) for r in self.rates],
            "median": round(statistics.median(self.rates)),
            "peak_rss_mb": round(max(self.peaks) / 2**20),
        }


def contenders(bootstrap: str, topic: str, args: argparse.Namespace) -> list[Contender]:
    fetch = json.dumps(Settings.from_env().sink_fetch_settings)
    coordinates = [bootstrap, topic, str(PARTITIONS)]
    dlt_script = [str(BENCH_PYTHON), str(HERE / "dlt_kafka.py"), *coordinates]
    rows_script = [sys.executable, str(HERE / "row_insert.py"), *coordinates]

    def sink_env(workdir: Path) -> dict[str, str]:
        topics_file = workdir / "topics.yml"
        spec = {"name": topic, "partitions": PARTITIONS, "event_types": [OBSERVATION_TYPE]}
        topics_file.write_text(yaml.safe_dump({"topics": [spec]}))
        return {
            "UF_KAFKA_BOOTSTRAP": bootstrap,
            "UF_TOPICS_FILE": str(topics_file),
            "UF_WAREHOUSE_PATH": str(fresh(workdir, "sink")),
            "UF_SINK_GROUP": f"bench-{uuid.uuid4().hex[:8]}",
        }

    found = [
        Contender(
            "raw_consume",
            "raw kafka-python consume, no processing (ceiling)",
            lambda _: [sys.executable, str(HERE / "raw_consume.py"), *coordinates],
            json_rate,
        ),
        Contender(
            "sink",
            "UrbanFlow sink (contract-validated, exactly once)",
            lambda _: [
                str(Path(sys.executable).with_name("urbanflow")),
                *("sink", "run", "--until-caught-up", "--no-progress"),
            ],
            sink_rate,
            env=sink_env,
        ),
    ]
    if BENCH_PYTHON.exists():
        found.append(
            Contender(
                "dlt",
                "dlt 1.31 pipeline, parquet loader, `data` as JSON column",
                lambda w: [*dlt_script, str(fresh(w, "dlt"))],
                json_rate,
                env=lambda _: {"UF_BENCH_FETCH_SETTINGS": fetch},
            )
        )
    else:
        print(f"  (no {BENCH_PYTHON}: dlt skipped; `make bench-venv` creates it)", flush=True)
    if args.row_insert_runs:
        found.append(
            Contender(
                "row_insert",
                "per-row INSERT (executemany, one transaction)",
                lambda w: [*rows_script, str(fresh(w, "rows"))],
                json_rate,
                runs=args.row_insert_runs,
            )
        )
    return found


def fresh(workdir: Path, name: str) -> Path:
    return workdir / f"{name}-{uuid.uuid4().hex[:8]}.duckdb"


def side_bench(script: str, extra: list[str]) -> dict[str, object] | None:
    """Run another bench with `--json`, returning its figures and peak RSS (None if it failed)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, str(HERE / script), *extra, "--json", out.name]
        print(f"  {' '.join([Path(script).name, *extra])} ...", flush=True)
        output, peak, code = measured(command)
        if code != 0:
            print(f"  {script} failed ({code}); left out:\n{output[-2000:]}", flush=True)
            return None
        figures = json.loads(Path(out.name).read_text())
    return {**figures, "peak_rss_mb": round(peak / 2**20)}


def machine() -> dict[str, object]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 1) for x in os.getloadavg()],
    }


def verdict(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def table(results: dict) -> str:
    """The one table `make bench` prints (markdown, as docs/benchmarks.md shows it)."""
    c = results["contenders"]
    r = results["ratios"]
    m = results["machine"]
    rows = [
        ("events", f"{results['events']:,} x ~{results['size']} B CloudEvents, 3 partitions"),
        (
            "machine",
            f"{m['cores']} cores, {m['memory_gib']} GiB ({m['cpu']}); load at start "
            f"{m['load_average_at_start'][0]}",
        ),
    ]
    for stats in c.values():
        rates = ", ".join(f"{x:,}" for x in stats["rates"])
        rows.append(
            (
                stats["label"],
                f"**{stats['median']:,} events/s** (runs: {rates}); peak RSS "
                f"{stats['peak_rss_mb']:,} MB",
            )
        )
    if "sink_vs_raw" in r:
        rows.append(
            (
                "sink / raw consume",
                f"**{r['sink_vs_raw']:.1%}** (target ≥ {SINK_VS_RAW:.0%}: "
                f"{verdict(r['sink_vs_raw'] >= SINK_VS_RAW)}); sink peak RSS "
                f"{c['sink']['peak_rss_mb']} MB (target < {RSS_LIMIT_MB} MB: "
                f"{verdict(c['sink']['peak_rss_mb'] < RSS_LIMIT_MB)})",
            )
        )
    if "sink_vs_dlt" in r:
        rows.append(
            (
                "sink / dlt",
                f"**{r['sink_vs_dlt']:.1f}x** (target ≥ {SINK_VS_DLT:g}x: "
                f"{verdict(r['sink_vs_dlt'] >= SINK_VS_DLT)})",
            )
        )
    if "sink_vs_row_insert" in r:
        rows.append(
            (
                "sink / per-row INSERT",
                f"**{r['sink_vs_row_insert']:.0f}x** (target ≥ {SINK_VS_ROWS:g}x: "
                f"{verdict(r['sink_vs_row_insert'] >= SINK_VS_ROWS)})",
            )
        )
    api = results.get("api")
    if api:
        rows.append(
            (
                "push API / raw producer",
                f"{api['api_rate']:,.0f} vs {api['raw_rate']:,.0f} events/s: "
                f"**{api['ratio']:.1%}** (target ≥ {API_VS_RAW:.0%}: "
                f"{verdict(api['ratio'] >= API_VS_RAW)}); p99 {api['p99_ms']:.0f} ms; "
                f"peak RSS {api['peak_rss_mb']} MB",
            )
        )
    dbt = results.get("dbt")
    if dbt:
        rows.append(
            (
                f"dbt refresh / full ({dbt['events']:,} raw events, +{dbt['new']:,})",
                f"{dbt['refresh_s']:.1f} s / {dbt['full_s']:.1f} s: **{dbt['ratio']:.1%}** "
                f"(target ≤ {DBT_REFRESH:.0%}: {verdict(dbt['ratio'] <= DBT_REFRESH)}); "
                f"peak RSS {dbt['peak_rss_mb']} MB",
            )
        )
    fresh = results.get("freshness")
    if fresh:
        rows.append(
            (
                f"event -> serving.duckdb through Airflow ({fresh['events']} events; "
                f"bench/freshness.py, {fresh['generated_at'][:10]})",
                f"p50 {fresh['p50_s']:.1f} s, **p95 {fresh['p95_s']:.1f} s** (target < "
                f"{FRESHNESS_P95_S} s: {verdict(fresh['p95_s'] < FRESHNESS_P95_S)}); Airflow "
                f"RSS {fresh['airflow_rss_mib']:,} MiB",
            )
        )
    lines = ["| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def freshness() -> dict | None:
    """The last run of bench/freshness.py (it needs its own Airflow, so `make bench` reads it)."""
    try:
        return json.loads(FRESHNESS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=1024, help="approximate event size in bytes")
    parser.add_argument("--runs", type=int, default=3, help="rounds of raw, sink and dlt")
    parser.add_argument("--row-insert-runs", type=int, default=1, help="0 leaves it out")
    parser.add_argument("--no-api", action="store_true", help="leave the push API bench out")
    parser.add_argument("--no-dbt", action="store_true", help="leave the dbt bench out")
    parser.add_argument("--dbt-events", type=int, default=1_000_000)
    parser.add_argument("--dbt-new", type=int, default=10_000)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args()

    bootstrap = Settings.from_env().kafka_bootstrap
    topic = f"bench.{uuid.uuid4().hex[:8]}.observation.v1"
    spec = TopicSpec(topic, PARTITIONS, 3_600_000, (OBSERVATION_TYPE,), True, True, 3_600_000)
    results: dict = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["bench/sink_throughput.py", *sys.argv[1:]]),
        "machine": machine(),
        "events": args.events,
        "size": args.size,
        "runs": args.runs,
    }
    apply_topics(bootstrap, [spec])
    try:
        print(f"producing {args.events:,} events of ~{args.size} B to {topic} ...", flush=True)
        results["producer_rate"] = round(produce(bootstrap, topic, args.events, args.size))
        racers = contenders(bootstrap, topic, args)
        with tempfile.TemporaryDirectory(prefix="uf-bench-") as tmp:
            for round_ in range(args.runs):
                for racer in racers:
                    if racer.runs is not None and round_ >= racer.runs:
                        continue
                    racer.run(Path(tmp))
                    print(
                        f"  round {round_ + 1}: {racer.name:<11} {racer.rates[-1]:>9,.0f} "
                        f"events/s, peak RSS {racer.peaks[-1] / 2**20:,.0f} MB",
                        flush=True,
                    )
    finally:
        admin = admin_client(bootstrap)
        admin.delete_topics([spec.name, spec.dlq_name])
        admin.close()
    results["contenders"] = {racer.name: racer.summary() for racer in racers}
    median = {name: stats["median"] for name, stats in results["contenders"].items()}
    ratios = {"sink_vs_raw": median["sink"] / median["raw_consume"]}
    if "dlt" in median:
        ratios["sink_vs_dlt"] = median["sink"] / median["dlt"]
    if "row_insert" in median:
        ratios["sink_vs_row_insert"] = median["sink"] / median["row_insert"]
    results["ratios"] = ratios  # unrounded: the verdicts read them (0.4995 is not 50 %)
    if not args.no_api:
        results["api"] = side_bench("api_throughput.py", [])
    if not args.no_dbt:
        dbt_args = ["--events", str(args.dbt_events), "--new", str(args.dbt_new)]
        results["dbt"] = side_bench("dbt_incremental.py", dbt_args)
    if fresh := freshness():
        results["freshness"] = fresh
    args.results.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print()
    print(table(results))
    print(f"\nwritten to {args.results}")


if __name__ == "__main__":
    main()
