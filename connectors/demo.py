"""`make demo`: the sample world -> every source -> Kafka -> sink -> dbt -> quality gate -> serving.

Partner-result uploads go onto Kafka exactly as the push API would publish them, without starting
the API (`urbanflow api serve` is the way partners send them for real).

Idempotent: sources remember what they sent, so a second run sends nothing. The one exception by
design, the meter stream (new readings every run), runs only while its demo state file shows no
earlier demo stream; the summary says when it was skipped.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from connectors.contracts import get_contract
from connectors.errors import ContractError
from connectors.events import utc_now_iso
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import apply_topics, load_topics
from connectors.quality import run_gate
from connectors.sdk import RunReport, StateStore, load_config, run_source
from connectors.settings import Settings
from connectors.sink import Sink
from connectors.sources.registry import get_source
from connectors.status import warehouse_counts
from connectors.transform import refresh_warehouse

#: Own state file for the demo's meter stream, so a real `utilities` stream does not stop it.
STREAM_STATE = "utilities-demo"
#: 3 s at 500 readings/s; an outage starts every second so a short run still shows some.
STREAM = {
    "mode": "stream",
    "rate": 500.0,
    "duration_s": 3.0,
    "seed": 2026,
    "run_tag": "demo",
    "outage_probability": 1.0,
}
#: State of the partner-result files the demo sent (their SHA-256 per file name).
RESULTS_STATE = "partner-results-demo"
MART_SCHEMAS = ("marts.",)


@dataclass(frozen=True)
class DemoRun:
    """One source run of the demo: what the summary calls it, the source, its config, its state."""

    label: str
    source: str
    overrides: dict[str, Any]
    state: str = ""
    once: bool = False  # a stream: new data every run, so the demo runs it only once

    @property
    def state_name(self) -> str:
        return self.state or self.source


def demo_runs(sample_dir: Path) -> list[DemoRun]:
    """Every connector on its sample folder (one HXL run per partner file), streams last."""
    runs = [
        DemoRun(name, name, {"inputs": [str(sample_dir / name)]})
        for name in ("sdmx", "worldbank", "unsdg", "iati")
    ]
    runs.append(DemoRun("gdacs", "gdacs", {"inputs": [str(sample_dir / "hazards")]}))
    runs += [
        DemoRun(f"hxl {path.stem}", "hxl", {"partner": path.stem, "inputs": [str(path)]})
        for path in sorted((sample_dir / "hxl").glob("*.csv"))
    ]
    kpi = {"mode": "kpi", "inputs": [str(sample_dir / "utilities")]}
    runs.append(DemoRun("utilities kpi", "utilities", kpi))
    runs.append(DemoRun("utilities stream", "utilities", STREAM, STREAM_STATE, once=True))
    return runs


def previous_stream(store: StateStore) -> dict[str, Any] | None:
    """The demo stream's last run as checkpointed, or None when it never ran here."""
    return store.load().get("stream", {}).get("run")


@dataclass
class DemoReport:
    """What one demo run did, for the summary and for tests."""

    runs: list[tuple[str, RunReport | None]] = field(default_factory=list)  # None: skipped
    loaded: int = 0
    dead_lettered: int = 0
    marts: dict[str, int] = field(default_factory=dict)


def send_samples(settings: Settings, sample_dir: Path, out: Console) -> DemoReport:
    """Run every demo source once; the stream only when it has not run in this state dir."""
    report = DemoReport()
    with EventProducer(settings.kafka_bootstrap, client_id="urbanflow-demo") as producer:
        for run in demo_runs(sample_dir):
            source = get_source(run.source)
            store = StateStore(settings.state_dir, run.state_name)
            if run.once and (last := previous_stream(store)) is not None:
                out.print(
                    f"  {run.label}: skipped, the demo streamed {last.get('readings', 0):,} "
                    f"readings before (delete {store.path} to stream again)"
                )
                report.runs.append((run.label, None))
                continue
            config = load_config(run.source, source.config, overrides=run.overrides)
            result = run_source(source, config, producer, store)
            streams = ", ".join(f"{n} {c:,}" for n, c in sorted(result.by_stream.items()))
            out.print(
                f"  {run.label}: sent {result.sent:,} ({streams or 'nothing new'}), "
                f"{result.rejected:,} rejected, {result.seconds:.1f} s"
            )
            report.runs.append((run.label, result))
        report.runs.append(send_partner_results(settings, sample_dir, producer, out))
    return report


def send_partner_results(
    settings: Settings, sample_dir: Path, producer: EventProducer, out: Console
) -> tuple[str, RunReport]:
    """The partner-result uploads, as the API would publish them but without starting it: the
    same row parser, contract and event ids (so a later upload of a file duplicates nothing).
    A file already sent unchanged is skipped; a row the contract refuses is reported, not sent."""
    # Imported here: the API module pulls in FastAPI, which no other command needs.
    from connectors.api.checks import RESULT_TYPE, partner_routes
    from connectors.api.files import read_table, row_event
    from connectors.api.partners import Partner, default_sources

    topic = partner_routes(settings.topics_file)[RESULT_TYPE].topic
    contract = get_contract(RESULT_TYPE)
    store = StateStore(settings.state_dir, RESULTS_STATE)
    sent_files: dict[str, str] = store.load().get("files", {})
    result = RunReport(source="partner results")
    started = time.monotonic()
    for path in sorted((sample_dir / "partner_results").glob("*.csv")):
        content = path.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        if sent_files.get(path.name) == digest:
            continue
        partner = Partner(path.stem, default_sources(path.stem), key_id="demo", created_at="")
        now = utc_now_iso()
        for row, data in read_table(path.name, content):
            try:
                if not isinstance(data, dict):
                    raise ContractError(str(data), contract=RESULT_TYPE)
                contract.validate_data(data)
            except ContractError as exc:
                out.print(f"  partner results: {path.name} row {row} not sent: {exc}")
                result.rejected += 1
                continue
            value = row_event(partner, partner.default_source, digest, row, data, now)
            producer.send_raw(topic, value, key=data["activity_id"])
            result.sent += 1
        producer.confirm()
        sent_files[path.name] = digest
        store.save({"files": sent_files})
    result.by_stream = {"results": result.sent} if result.sent else {}
    result.seconds = time.monotonic() - started
    out.print(
        f"  partner results: sent {result.sent:,} (no API started), "
        f"{result.rejected:,} rejected, {result.seconds:.1f} s"
    )
    return "partner results", result


def run_demo(settings: Settings, sample_dir: Path | None, out: Console) -> DemoReport:
    """The whole pipeline on the sample world (`sample_dir`, default UF_SAMPLE_DATA_DIR); a
    blocked quality gate raises QualityGateError (its message names every failed expectation)
    so the command exits non-zero."""
    sample_dir = sample_dir or settings.sample_data_dir
    started = time.monotonic()
    specs = load_topics(settings.topics_file)
    out.rule("[bold]UrbanFlow demo")
    apply_topics(settings.kafka_bootstrap, specs)
    out.print(f"1/5 topics ready at {settings.kafka_bootstrap}")
    out.print(f"2/5 sources on {sample_dir} (a re-run sends only new or revised records)")
    report = send_samples(settings, sample_dir, out)
    stats = Sink(settings, specs).run(until_caught_up=True)
    report.loaded, report.dead_lettered = stats.loaded, stats.dead_lettered
    out.print(f"3/5 {stats.summary(str(settings.warehouse_path))}")
    build = refresh_warehouse(settings, capture=True)
    built = "nothing new to build" if build.plan.selectors == [] else "dbt build passed"
    out.print(f"4/5 {built} ({build.plan.reason}; {build.seconds:.1f} s)")
    gate = run_gate(settings, publish=True, console=out)
    out.print(f"5/5 quality gate passed; published {gate.location}")
    report.marts = {
        name: rows
        for name, rows in warehouse_counts(settings.warehouse_path).items()
        if name.startswith(MART_SCHEMAS)
    }
    print_summary(settings, report, gate.data_docs, out)
    out.print(f"demo finished in {time.monotonic() - started:.1f} s")
    return report


def print_summary(settings: Settings, report: DemoReport, data_docs: Path, out: Console) -> None:
    out.rule("[bold]summary")
    out.print(f"{'source':<34} {'sent':>8} {'rejected':>9}")
    for label, result in report.runs:
        if result is None:
            out.print(f"{label:<34} {0:>8} {0:>9}  (skipped: streamed in an earlier demo run)")
        else:
            out.print(f"{label:<34} {result.sent:>8,} {result.rejected:>9,}")
    out.print(f"loaded into the warehouse this run : {report.loaded:,}")
    out.print(f"dead-lettered this run             : {report.dead_lettered:,}")
    for name, rows in report.marts.items():
        out.print(f"  {name:<45} {rows:>8,} rows")
    out.print(f"warehouse : {settings.warehouse_path}")
    out.print(f"serving   : {settings.var_dir / 'serving.duckdb'}")
    out.print(f"data docs : {data_docs}")
    out.print("look next :")
    out.print("  .venv/bin/urbanflow status                      # topics, lag, table counts")
    out.print(f"  duckdb -readonly {settings.var_dir / 'serving.duckdb'}")
    out.print("  .venv/bin/urbanflow dbt docs generate && .venv/bin/urbanflow dbt docs serve")
    out.print(
        "  .venv/bin/urbanflow api serve                   # partners push results: "
        "POST /v1/events or a CSV to /v1/files (docs at /docs)"
    )
