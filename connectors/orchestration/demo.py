"""`make demo` through Airflow: the sample world enters by the source DAGs, the sink service lands
it, and the batch-landed asset (or the fallback timetable) drives the transform DAG to a published
serving.duckdb. This module only triggers and watches, through Airflow's REST API; it imports
nothing from Airflow and never opens the warehouse (the sink and dbt own it while the demo runs).

When is serving.duckdb current? Every source run succeeded, then the sink's consumer group caught
up (every event is in the warehouse: the sink commits to Kafka after DuckDB), then a transform run
published (its `gate_and_publish` ended; its node tasks may still be reporting) that started after
that catch-up, or after the last batch-landed wake-up with no newer one for `WAKE_UP_GRACE_S`
(the wake-up of the last batch follows its commit by a second or two). A lost wake-up therefore
costs the fallback interval, never a wrong verdict.

Idempotent like `connectors.demo`: sources send only what is new, the partner results and the
meter stream go out directly (as the plain demo sends them) only once, and a run that sent nothing
waits for nothing (no batch lands, so the transform DAG has nothing to build).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from connectors.demo import (
    DemoReport,
    demo_runs,
    previous_stream,
    print_summary,
    send_partner_results,
)
from connectors.errors import UrbanFlowError
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import TopicSpec, apply_topics, load_topics
from connectors.orchestration.client import ADMIN_USER, AirflowClient, admin_password
from connectors.orchestration.schedules import SourceSchedule, load_schedules
from connectors.sdk import RunReport, StateStore, load_config, run_source
from connectors.settings import OrchestrationSettings, Settings
from connectors.sources.registry import get_source
from connectors.status import broker_status, warehouse_counts

TRANSFORM_DAG = "urbanflow_transform"
#: How long after the sink caught up a newer wake-up may still arrive (trigger poll ~1 s).
WAKE_UP_GRACE_S = 20.0
TERMINAL_FAILED = {"failed", "upstream_failed"}
# the transform DAG's last task: serving.duckdb is current once it succeeded (or had nothing to do)
PUBLISH_TASK = "gate_and_publish"


class AirflowDemoError(UrbanFlowError):
    """A DAG run of the demo failed or did not finish in time; names the DAG, the run and where
    its log is."""


@dataclass
class AirflowDemoReport(DemoReport):
    """`DemoReport` plus what Airflow did: the source runs, the transform run that published."""

    source_runs: dict[str, str] = field(default_factory=dict)  # dag_id -> run id
    transform_run: dict[str, Any] | None = None
    sent: int = 0
    seconds: float = 0.0


def run_airflow_demo(
    settings: Settings,
    console: Console,
    *,
    orchestration: OrchestrationSettings | None = None,
    timeout_s: float = 1200.0,
    poll_s: float = 2.0,
) -> AirflowDemoReport:
    """Trigger every enabled source DAG of the schedule file once, send the partner results and
    the meter stream directly, wait for the sink and for the transform run that published
    serving.duckdb, then print the demo's summary and how to reach Airflow. Needs the stack up
    (`make up`: broker, sink service, Airflow). Raises AirflowDemoError naming the DAG run that
    failed or timed out (each wait has `timeout_s`)."""
    orchestration = orchestration or OrchestrationSettings.from_env()
    started = time.monotonic()
    demo_started = datetime.now(UTC)
    console.rule("[bold]UrbanFlow demo through Airflow")
    client = AirflowClient(orchestration.airflow_url, admin_password(orchestration))
    _check_health(client, orchestration, console)
    specs = load_topics(settings.topics_file)
    apply_topics(settings.kafka_bootstrap, specs)
    _check_sink(settings)
    schedules = [s for s in load_schedules(orchestration.source_schedules_file) if s.enabled]
    dag_ids = [s.dag_id for s in schedules]
    _wait(
        f"the DAGs {', '.join([*dag_ids, TRANSFORM_DAG])} to be registered by the dag-processor",
        lambda: set([*dag_ids, TRANSFORM_DAG]) <= client.dag_ids() or None,
        timeout_s,
        poll_s,
    )
    for dag_id in [*dag_ids, TRANSFORM_DAG]:
        client.unpause(dag_id)
    console.print(f"1/4 Airflow at {client.base}: {len(dag_ids)} source DAGs + {TRANSFORM_DAG}")

    sink_topics = [spec for spec in specs if spec.sink]
    before = _sink_position(settings, sink_topics)
    stamp = demo_started.strftime("%Y%m%dT%H%M%S")
    report = AirflowDemoReport()
    for entry in schedules:
        run_id = f"demo__{stamp}__{uuid.uuid4().hex[:6]}"
        client.trigger(entry.dag_id, run_id)
        report.source_runs[entry.dag_id] = run_id
    console.print(
        f"2/4 triggered {len(schedules)} source DAG runs on their sample inputs "
        "(a re-run sends only new or revised records); direct sends:"
    )
    direct = _send_direct(settings, console)

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<44}"),
        BarColumn(bar_width=20),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    with progress:
        rows = {
            entry.dag_id: progress.add_task(entry.dag_id, total=1, state="queued")
            for entry in schedules
        }
        finished = _wait_source_runs(client, report, rows, progress, timeout_s, poll_s)
        for entry in schedules:
            run_id = report.source_runs[entry.dag_id]
            report.runs.append((entry.name, _run_report(client, entry, run_id)))
        report.runs += direct
        report.sent = sum(r.sent for _, r in report.runs if r is not None)
        sink_row = progress.add_task("sink: land every event", total=1, state="waiting")
        transform_row = progress.add_task(f"{TRANSFORM_DAG} -> serving.duckdb", total=1, state="")
        caught_up_at = _wait(
            "the sink service to land every event (its consumer group to catch up; is it "
            "running? `infra/sink/sinkctl status`, log var/sink/sink.log)",
            lambda: _caught_up(settings, sink_topics),
            timeout_s,
            poll_s,
        )
        progress.update(sink_row, completed=1, state="caught up")
        serving = settings.var_dir / "serving.duckdb"
        after = _sink_position(settings, sink_topics)
        landed = sum(after[0].values()) > sum(before[0].values())  # e.g. an earlier run's rest
        if not (report.sent or landed) and serving.exists():
            # a run still on earlier events (an earlier demo's, whose node tasks may still report)
            # makes serving current once it has published
            _wait(
                f"the {TRANSFORM_DAG} runs under way to publish",
                lambda: not _transform_publishing(client),
                timeout_s,
                poll_s,
            )
            progress.update(transform_row, completed=1, state="nothing new: no run needed")
        else:
            progress.update(transform_row, state="waiting for a run")
            report.transform_run = _wait(
                f"a run of {TRANSFORM_DAG} to publish serving.duckdb after the sources finished "
                f"(woken by the batch-landed asset, or by the fallback timetable "
                f"'{orchestration.transform_fallback_cron}')",
                lambda: _published_run(
                    client, demo_started, caught_up_at, serving, transform_row, progress
                ),
                timeout_s,
                poll_s,
            )
            progress.update(transform_row, completed=1, state=_describe(report.transform_run))

    handled = sum(after[0].values()) - sum(before[0].values())
    report.dead_lettered = max(0, after[1] - before[1])
    report.loaded = max(0, handled - report.dead_lettered)
    report.marts = {
        name: rows for name, rows in warehouse_counts(serving).items() if name.startswith("marts.")
    }
    report.seconds = time.monotonic() - started
    console.print(
        f"3/4 source runs finished by {finished:%H:%M:%S} UTC; the sink landed "
        f"{report.loaded:,} events ({report.dead_lettered:,} dead-lettered)"
    )
    if report.transform_run is None:
        console.print(
            "4/4 nothing new was sent, so no batch landed and the transform DAG had nothing to "
            f"build; {serving} is current"
        )
    else:
        console.print(
            f"4/4 {TRANSFORM_DAG} run {report.transform_run['dag_run_id']} "
            f"({report.transform_run['run_type']}) published {serving}"
        )
    data_docs = settings.var_dir / "quality" / "data_docs"
    index = data_docs / "index.html"
    print_summary(settings, report, index if index.exists() else data_docs, console)
    console.print(f"airflow   : {client.base}")
    console.print(f"  user    : {ADMIN_USER}, password {_password_hint(orchestration)}")
    console.print(f"  runs    : {client.base}/dags/{TRANSFORM_DAG}/runs")
    console.print(f"demo through Airflow finished in {report.seconds:.1f} s")
    return report


# --- steps ----------------------------------------------------------------------------------


def _check_health(
    client: AirflowClient, orchestration: OrchestrationSettings, console: Console
) -> None:
    health = client.health()
    status = {name: (health.get(name) or {}).get("status") for name in health}
    for needed in ("metadatabase", "scheduler", "dag_processor"):
        if status.get(needed) != "healthy":
            raise AirflowDemoError(
                f"Airflow at {client.base}: {needed} is {status.get(needed) or 'missing'}; "
                "`infra/airflow/airflowctl status` shows which process is down, "
                "`make up` starts it"
            )
    if status.get("triggerer") != "healthy":
        console.print(
            "[yellow]the triggerer is not healthy: no batch-landed wake-ups; the transform DAG "
            f"will run on its fallback timetable ('{orchestration.transform_fallback_cron}')[/]"
        )


def _check_sink(settings: Settings) -> None:
    """The sink service (infra/sink/sinkctl) must run, else nothing would ever land."""
    pidfile = settings.var_dir / "sink" / "sink.pid"
    try:
        os.killpg(int(pidfile.read_text().strip()), 0)
    except (OSError, ValueError):
        raise AirflowDemoError(
            f"the sink service is not running (no live process group in {pidfile}); "
            "`make up` or `infra/sink/sinkctl start` starts it"
        ) from None


def _send_direct(settings: Settings, console: Console) -> list[tuple[str, RunReport | None]]:
    """What has no source DAG: the partner-result uploads (as the push API would publish them)
    and the demo's meter stream, once, exactly as `connectors.demo` sends them."""
    results: list[tuple[str, RunReport | None]] = []
    with EventProducer(settings.kafka_bootstrap, client_id="urbanflow-demo-airflow") as producer:
        for run in demo_runs(settings.sample_data_dir):
            if not run.once:
                continue  # every other demo run is a source DAG's job
            store = StateStore(settings.state_dir, run.state_name)
            if (last := previous_stream(store)) is not None:
                console.print(
                    f"  {run.label}: skipped, the demo streamed {last.get('readings', 0):,} "
                    f"readings before (delete {store.path} to stream again)"
                )
                results.append((run.label, None))
                continue
            source = get_source(run.source)
            config = load_config(run.source, source.config, overrides=run.overrides)
            result = run_source(source, config, producer, store)
            console.print(f"  {run.label}: sent {result.sent:,}, {result.seconds:.1f} s")
            results.append((run.label, result))
        results.append(send_partner_results(settings, settings.sample_data_dir, producer, console))
    return results


def _wait_source_runs(
    client: AirflowClient,
    report: AirflowDemoReport,
    rows: dict[str, Any],
    progress: Progress,
    timeout_s: float,
    poll_s: float,
) -> datetime:
    """Until every triggered source run succeeded; returns when the last one ended."""
    pending = dict(report.source_runs)
    ended: list[datetime] = []

    def step() -> datetime | None:
        for dag_id, run_id in list(pending.items()):
            run = client.run(dag_id, run_id)
            state = run.get("state") or "queued"
            progress.update(rows[dag_id], state=state)
            if state == "success":
                progress.update(rows[dag_id], completed=1)
                ended.append(_ts(run.get("end_date")) or datetime.now(UTC))
                del pending[dag_id]
            elif state in TERMINAL_FAILED:
                raise AirflowDemoError(_failure(client, dag_id, run_id))
        return max(ended) if not pending else None

    return _wait(
        lambda: (
            "the source DAG runs "
            + ", ".join(f"{d} ({r})" for d, r in pending.items())
            + " to succeed"
        ),
        step,
        timeout_s,
        poll_s,
    )


def _run_report(client: AirflowClient, entry: SourceSchedule, run_id: str) -> RunReport:
    value = client.xcom(entry.dag_id, run_id, "run_source") or {}
    return RunReport(
        source=entry.source,
        sent=int(value.get("sent", 0)),
        rejected=int(value.get("rejected", 0)),
        by_stream=dict(value.get("by_stream") or {}),
        seconds=float(value.get("seconds", 0.0)),
    )


def _sink_position(settings: Settings, topics: list[TopicSpec]) -> tuple[dict[str, int], int]:
    """(committed offset per partition of the sink's group, messages on the dead-letter topics)."""
    report = broker_status(settings.kafka_bootstrap, topics, settings.sink_group)
    if not report.broker_ok:
        raise AirflowDemoError(f"broker down: {report.broker_detail}; `make up` starts it")
    committed = {f"{p.topic}:{p.partition}": p.committed or 0 for p in report.lag}
    dead = sum(n for topic, n in report.topics.items() if topic.endswith(".dlq"))
    return committed, dead


def _caught_up(settings: Settings, topics: list[TopicSpec]) -> datetime | None:
    report = broker_status(settings.kafka_bootstrap, topics, settings.sink_group)
    if report.broker_ok and all(p.lag <= 0 for p in report.lag):
        return datetime.now(UTC)
    return None


def _transform_publishing(client: AirflowClient) -> bool:
    """Is a transform run queued, or running and not yet past its publish?"""
    return bool(_runs_before_publish(client))


def _runs_before_publish(client: AirflowClient) -> set[str]:
    """The transform runs queued, or running and not yet past their publish."""
    pending = set()
    for run in client.runs(TRANSFORM_DAG, limit=5):
        if run["state"] == "queued":
            pending.add(run["dag_run_id"])
        elif run["state"] == "running":
            publish = client.task_state(TRANSFORM_DAG, run["dag_run_id"], PUBLISH_TASK)
            if publish not in ("success", "skipped"):
                pending.add(run["dag_run_id"])
    return pending


def _published_run(
    client: AirflowClient,
    demo_started: datetime,
    caught_up_at: datetime,
    serving: Path,
    row: Any,
    progress: Progress,
) -> dict[str, Any] | None:
    """The first transform run that makes serving.duckdb current (see the module doc)."""
    runs = [
        r
        for r in client.runs(TRANSFORM_DAG)
        if (_ts(r.get("start_date")) or datetime.max.replace(tzinfo=UTC)) >= demo_started
        or r["state"] in ("queued", "running")
    ]
    wake_ups = [
        _ts(e["timestamp"])
        for e in client.asset_events(limit=50)
        if (e.get("extra") or {}).get("from_trigger")
    ]
    wake_ups = [t for t in wake_ups if t is not None and t >= demo_started]
    last_wake_up = max(wake_ups) if wake_ups else None
    settled = (datetime.now(UTC) - caught_up_at).total_seconds() >= WAKE_UP_GRACE_S
    for run in sorted(runs, key=lambda r: r.get("start_date") or "~"):
        begun = _ts(run.get("start_date"))
        if run["state"] in TERMINAL_FAILED and begun is not None and begun >= demo_started:
            raise AirflowDemoError(_failure(client, TRANSFORM_DAG, run["dag_run_id"]))
        if run["state"] in ("queued", "running"):
            progress.update(row, state=f"{run['run_type']} run {run['state']}")
        if run["state"] not in ("success", "running") or begun is None:
            continue
        after_catch_up = begun >= caught_up_at
        after_last_wake_up = settled and last_wake_up is not None and begun >= last_wake_up
        if not ((after_catch_up or after_last_wake_up) and serving.exists()):
            continue
        # Two runs may be active: this one may find the events already built by an older one
        # that has not published yet (and skip its own publish), so wait for every other run too.
        if _runs_before_publish(client) - {run["dag_run_id"]}:
            return None
        if run["state"] == "success":
            return run
        # published (or found nothing to publish): the node tasks may still be reporting
        publish = client.task_state(TRANSFORM_DAG, run["dag_run_id"], PUBLISH_TASK)
        if publish in ("success", "skipped"):
            return {**run, "state": f"published ({publish}), node tasks reporting"}
    return None


def _failure(client: AirflowClient, dag_id: str, run_id: str) -> str:
    try:
        failed = [
            ti["task_id"]
            for ti in client.task_instances(dag_id, run_id)
            if ti["state"] in TERMINAL_FAILED
        ]
    except UrbanFlowError:
        failed = []
    tasks = f" (failed task: {', '.join(failed)})" if failed else ""
    return (
        f"DAG {dag_id} run {run_id} failed{tasks}; its log: {client.base}/dags/{dag_id}/runs/"
        f"{run_id} (user {ADMIN_USER}), or var/airflow/logs/dag_id={dag_id}/run_id={run_id}/"
    )


def _describe(run: dict[str, Any] | None) -> str:
    if run is None:
        return "nothing new"
    begun, ended = _ts(run.get("start_date")), _ts(run.get("end_date"))
    if ended is None:  # published while its node tasks still report
        return f"{run['run_type']} run {run['state']}"
    took = f" in {(ended - begun).total_seconds():.0f} s" if begun else ""
    return f"{run['run_type']} run succeeded{took}"


def _password_hint(orchestration: OrchestrationSettings) -> str:
    if os.environ.get("UF_AIRFLOW_ADMIN_PASSWORD"):
        return "from UF_AIRFLOW_ADMIN_PASSWORD"
    return f"in {orchestration.airflow_admin_password_file}"


def _wait(what: Any, condition: Any, timeout_s: float, poll_s: float) -> Any:
    """Poll `condition` until truthy; AirflowDemoError naming `what` (a str or a callable giving
    one, so the message names what is still pending) at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            raise AirflowDemoError(f"timed out after {timeout_s:.0f} s waiting for {text}")
        time.sleep(poll_s)


def _ts(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
