"""Freshness through Airflow: from an event the push API accepted to its effect in serving.duckdb.

    .venv/bin/python bench/freshness.py --events 24 --interval 8

Needs a broker at UF_KAFKA_BOOTSTRAP (`make up`'s, or `infra/kafka/kafkactl start`). Starts its own
stack in a temporary var dir on free loopback ports: Airflow (infra/airflow/airflowctl; one manual
source DAG, so no scheduled source adds noise), the sink service (infra/sink/sinkctl), the push API
(`urbanflow api serve`) with a fresh partner key. Warms up with `run_airflow_demo` (the first
build of the whole project), then POSTs one partner result every `--interval` seconds and polls
serving.duckdb (read-only, a fresh connection each time) until each one is counted in
`marts.fct_source_health` for the partner-results raw table. Prints p50/p95/max of that latency,
the transform DAG's runs in the window against a plain `urbanflow refresh` + `urbanflow publish`
of one more such event (DAG paused meanwhile), and the Airflow processes' memory.
Target from the orchestration issue: p95 < 60 s on this machine. Prints numbers; not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_throughput import event, start_api

from connectors.api.partners import PartnerStore
from connectors.kafka.topics import apply_topics, load_topics
from connectors.orchestration.client import AirflowClient
from connectors.orchestration.demo import run_airflow_demo
from connectors.settings import OrchestrationSettings, Settings
from connectors.status import broker_status
from connectors.status import served_rows as served_row_count

REPO = Path(__file__).resolve().parents[1]
#: Read by bench/sink_throughput.py, whose table (`make bench`) shows the last freshness run.
RESULTS = REPO / "bench" / "freshness.json"
BIN = Path(sys.executable).parent
RAW_TABLE = "partner_push_result_v1"
TRANSFORM = "urbanflow_transform"
#: The one `dbt build` of a transform run (Cosmos watcher mode's producer task).
DBT_BUILD_TASK = "dbt.dbt_producer_watcher"
SCHEDULES = """\
defaults: {owner: urbanflow-bench, retries: 1, retry_delay: 10s, timeout: 10m, tags: [bench]}
sources:
  sdmx:
    schedule: null
    inputs: [sample_data/sdmx]
    doc: The sample statistics offices' feeds (warm-up), run only when triggered.
"""


def free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def served_rows(serving: Path) -> int:
    """Partner-result rows as the published health mart counts them (-1 mid-replace)."""
    count = served_row_count(serving, RAW_TABLE)
    return -1 if count is None else count


def pause_when_idle(client: AirflowClient) -> None:
    """Pause the transform DAG with none of its runs queued or running: Airflow stops scheduling
    the tasks of a paused DAG's runs too, so a run caught by the pause would never end."""

    def active() -> bool:
        return any(r["state"] in ("queued", "running") for r in client.runs(TRANSFORM, 5))

    while True:
        while active():
            time.sleep(1)
        client.pause(TRANSFORM)
        if not active():
            return
        client.unpause(TRANSFORM)  # a run started just before the pause: let it finish


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def rss_by_component(var_dir: Path) -> dict[str, tuple[int, int]]:
    """(RSS, USS) bytes per tracked process group (pid file = group id)."""
    groups = {
        f.stem: int(f.read_text()) for f in sorted((var_dir / "airflow" / "run").glob("*.pid"))
    }
    sink_pid = var_dir / "sink" / "sink.pid"
    if sink_pid.exists():
        groups["sink"] = int(sink_pid.read_text())
    found = {name: [0, 0] for name in groups}
    by_group = {group: name for name, group in groups.items()}
    for proc in psutil.process_iter():
        try:
            name = by_group.get(os.getpgid(proc.pid))
            if name is None:
                continue
            info = proc.memory_full_info()
            found[name][0] += info.rss
            found[name][1] += info.uss
        except (psutil.Error, ProcessLookupError):
            continue
    return {name: (rss, uss) for name, (rss, uss) in found.items()}


def sink_caught_up(settings: Settings) -> bool:
    specs = [s for s in load_topics(settings.topics_file) if s.sink]
    report = broker_status(settings.kafka_bootstrap, specs, settings.sink_group)
    return report.broker_ok and all(p.lag <= 0 for p in report.lag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=24)
    parser.add_argument("--interval", type=float, default=8.0, help="seconds between events")
    parser.add_argument("--timeout", type=float, default=600.0, help="per event, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary var dir")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where to write the JSON ('' for nowhere)"
    )
    args = parser.parse_args()

    bootstrap = Settings.from_env().kafka_bootstrap
    var_dir = Path(tempfile.mkdtemp(prefix="uf-bench-freshness-"))
    (var_dir / "sources.yml").write_text(SCHEDULES, encoding="utf-8")
    run_id = uuid.uuid4().hex[:8]
    port, log1, log2 = free_ports(3)
    env = {
        "UF_VAR_DIR": str(var_dir),
        "UF_WAREHOUSE_PATH": str(var_dir / "warehouse.duckdb"),
        "UF_STATE_DIR": str(var_dir / "state"),
        "UF_KAFKA_BOOTSTRAP": bootstrap,
        "UF_SINK_GROUP": f"bench-sink-{run_id}",
        "UF_AIRFLOW_KAFKA_GROUP": f"bench-airflow-{run_id}",
        "UF_AIRFLOW_PORT": str(port),
        "UF_AIRFLOW_URL": f"http://127.0.0.1:{port}",
        "UF_AIRFLOW_SCHEDULER_LOG_PORT": str(log1),
        "UF_AIRFLOW_TRIGGERER_LOG_PORT": str(log2),
        "UF_AIRFLOW_ADMIN_PASSWORD": f"bench-{uuid.uuid4().hex}",
        "UF_AIRFLOW_SOURCE_SCHEDULES": str(var_dir / "sources.yml"),
        "UF_PARTNERS_DB": str(var_dir / "partners.sqlite"),
        "UF_API_RATE_PER_S": "1000",
        "UF_API_RATE_BURST": "1000",
    }
    os.environ.update(env)
    full_env = dict(os.environ)
    settings = Settings.from_env()
    orchestration = OrchestrationSettings.from_env()
    serving = var_dir / "serving.duckdb"
    airflowctl, sinkctl = REPO / "infra/airflow/airflowctl", REPO / "infra/sink/sinkctl"
    api_proc = None
    console = Console()
    try:
        apply_topics(bootstrap, load_topics(settings.topics_file))
        print(f"stack in {var_dir} (Airflow on 127.0.0.1:{port}) ...", flush=True)
        started = time.monotonic()
        subprocess.run([str(airflowctl), "start"], env=full_env, check=True, capture_output=True)
        print(f"airflow healthy after {time.monotonic() - started:.0f} s", flush=True)
        subprocess.run([str(sinkctl), "start"], env=full_env, check=True, capture_output=True)
        client = AirflowClient(orchestration.airflow_url, env["UF_AIRFLOW_ADMIN_PASSWORD"])

        print("warm-up: run_airflow_demo (sdmx DAG, stream, partner results; first build)")
        warm = run_airflow_demo(settings, console, orchestration=orchestration)
        print(f"warm-up took {warm.seconds:.0f} s")

        _partner, key = PartnerStore(var_dir / "partners.sqlite").add("bench-freshness")
        api_proc, url = start_api(env, var_dir / "api.log")
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        source = _partner.default_source
        base = served_rows(serving)
        accepted: list[float] = []
        visible: dict[int, float] = {}
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                count = served_rows(serving)
                now = time.monotonic()
                for n in range(len(accepted)):
                    if n not in visible and count >= base + n + 1:
                        visible[n] = now
                time.sleep(0.5)

        poller = threading.Thread(target=poll, daemon=True)
        window_start = datetime.now(UTC)
        print(f"\n{args.events} events, one every {args.interval:g} s, through {url} ...")
        with httpx.Client(base_url=url, timeout=30) as http:
            poller.start()
            for n in range(args.events):
                body = b'{"events":[%b]}' % event(source, f"fresh-{run_id}-{n}", n)
                response = http.post("/v1/events", content=body, headers=headers)
                if response.status_code != 202:
                    raise SystemExit(f"event {n}: HTTP {response.status_code} {response.text}")
                accepted.append(time.monotonic())
                time.sleep(args.interval)
            deadline = time.monotonic() + args.timeout
            while len(visible) < args.events and time.monotonic() < deadline:
                time.sleep(1)
            stop.set()
            poller.join()
            window_end = datetime.now(UTC)
            latencies = sorted(visible[n] - accepted[n] for n in visible)
            missing = args.events - len(latencies)

            # The DAG runs of the window, then a plain refresh of one more such event.
            runs = [
                r
                for r in client.runs(TRANSFORM)
                if r["state"] == "success"
                and (ts(r["start_date"]) or window_end) >= window_start
                and (ts(r["start_date"]) or window_end) <= window_end
            ]
            durations, queue_waits, refresh_s, gate_s = [], [], [], []
            for run in runs:
                states = {
                    ti["task_id"]: ti for ti in client.task_instances(TRANSFORM, run["dag_run_id"])
                }
                if (states.get("gate_and_publish") or {}).get("state") != "success":
                    continue  # a run that found nothing to publish
                durations.append((ts(run["end_date"]) - ts(run["start_date"])).total_seconds())
                queue_waits.append((ts(run["start_date"]) - ts(run["queued_at"])).total_seconds())
                refresh_s.append(states[DBT_BUILD_TASK]["duration"] or 0.0)
                gate_s.append(states["gate_and_publish"]["duration"] or 0.0)
            memory = rss_by_component(var_dir)

            pause_when_idle(client)
            body = b'{"events":[%b]}' % event(source, f"fresh-{run_id}-plain", args.events)
            http.post("/v1/events", content=body, headers=headers).raise_for_status()
            time.sleep(2)
            while not sink_caught_up(settings):
                time.sleep(0.5)
            cli = str(BIN / "urbanflow")
            t0 = time.monotonic()
            subprocess.run([cli, "refresh"], env=full_env, check=True, capture_output=True)
            plain_refresh = time.monotonic() - t0
            subprocess.run([cli, "publish"], env=full_env, check=True, capture_output=True)
            plain_total = time.monotonic() - t0
    finally:
        if api_proc is not None and api_proc.poll() is None:
            api_proc.send_signal(signal.SIGINT)
            api_proc.wait(timeout=30)
        subprocess.run([str(sinkctl), "stop"], env=full_env, capture_output=True)
        subprocess.run([str(airflowctl), "stop"], env=full_env, capture_output=True)
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)

    print()
    if latencies:
        p95 = percentile(latencies, 0.95)
        verdict = "met" if p95 < 60 and not missing else "NOT met"
        print(
            f"freshness (API 202 -> counted in serving.duckdb): {len(latencies)} events, "
            f"p50 {percentile(latencies, 0.5):.1f} s, p95 {p95:.1f} s, max {latencies[-1]:.1f} s, "
            f"min {latencies[0]:.1f} s  (target p95 < 60 s: {verdict})"
        )
    if missing:
        print(f"NOT visible within {args.timeout:.0f} s: {missing} event(s)")
    if durations:
        med = statistics.median
        print(
            f"transform DAG runs that published: {len(durations)}; run (start->end) median "
            f"{med(durations):.1f} s (min {min(durations):.1f}, max {max(durations):.1f}); "
            f"tasks: dbt build {med(refresh_s):.1f} s, gate_and_publish {med(gate_s):.1f} s; "
            f"queued->start median {med(queue_waits):.1f} s"
        )
        print(
            f"plain CLI on one more event: `urbanflow refresh` {plain_refresh:.1f} s, "
            f"+ `urbanflow publish` = {plain_total:.1f} s  -> orchestration overhead ~"
            f"{med(durations) - plain_total:+.1f} s per run"
        )
    print("memory (RSS / USS), by tracked process group:")
    for name, (rss, uss) in memory.items():
        print(f"  {name:<14} {rss / 2**20:7.0f} MiB / {uss / 2**20:7.0f} MiB")
    airflow = [v for k, v in memory.items() if k != "sink"]
    print(
        f"  {'airflow total':<14} {sum(r for r, _ in airflow) / 2**20:7.0f} MiB / "
        f"{sum(u for _, u in airflow) / 2**20:7.0f} MiB (USS: memory no other process shares)"
    )
    if latencies and str(args.results):
        write_results(args, latencies, missing, durations, sum(r for r, _ in airflow))


def write_results(
    args: argparse.Namespace,
    latencies: list[float],
    missing: int,
    durations: list[float],
    airflow_rss: int,
) -> None:
    """The run's headline figures, for `make bench`'s table."""
    figures = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["bench/freshness.py", *sys.argv[1:]]),
        "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
        "events": args.events,
        "interval_s": args.interval,
        "p50_s": round(percentile(latencies, 0.5), 1),
        "p95_s": round(percentile(latencies, 0.95), 1),
        "max_s": round(latencies[-1], 1),
        "missing": missing,
        "publishing_runs": len(durations),
        "run_median_s": round(statistics.median(durations), 1) if durations else None,
        "airflow_rss_mib": round(airflow_rss / 2**20),
    }
    args.results.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
