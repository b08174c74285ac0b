"""The callables behind the DAGs' tasks: what `urbanflow` commands do, as functions with small,
JSON-able results (Airflow keeps them as XComs and shows them in the UI).

Each takes `Settings` (default: from the environment, which airflowctl and the compose file set),
raises our own errors with actionable messages (Airflow marks the task failed and retries), and
prints one summary line into the task's log.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.errors import UrbanFlowError
from connectors.orchestration.schedules import SourceSchedule, run_overrides
from connectors.settings import Settings

#: DAGs start from here; none catches up (a source run reads to its own high-water mark).
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)

#: One row per health measure per snapshot, appended by `pipeline_health`; the ops marts read it.
HEALTH_TABLE = "raw._pipeline_health"
_HEALTH_DDL = f"""
create schema if not exists raw;
create table if not exists {HEALTH_TABLE} (
    checked_at timestamptz not null,
    measure varchar not null,      -- consumer_lag | dead_letters | broker_up | raw_rows
    subject varchar not null,      -- topic, raw table or 'broker'
    value bigint not null
)
"""


def _settings(settings: Settings | None) -> Settings:
    return settings or Settings.from_env()


def run_scheduled_source(entry: SourceSchedule, settings: Settings | None = None) -> dict[str, Any]:
    """Run one pull source once as `urbanflow source run` does: send what is new, save state
    only after Kafka confirmed it. A re-run (Airflow retry) resumes from the last checkpoint."""
    from connectors.kafka.producer import EventProducer
    from connectors.sdk import StateStore, load_config, run_source
    from connectors.sources.registry import get_source

    settings = _settings(settings)
    source = get_source(entry.source)
    config = load_config(entry.source, source.config, overrides=run_overrides(entry, settings.home))
    client_id = f"urbanflow-airflow-{entry.name}"
    with EventProducer(settings.kafka_bootstrap, client_id=client_id) as producer:
        report = run_source(source, config, producer, StateStore(settings.state_dir, entry.source))
    print(report.summary())
    return {
        "source": entry.source,
        "sent": report.sent,
        "rejected": report.rejected,
        "by_stream": dict(report.by_stream),
        "seconds": round(report.seconds, 2),
    }


def refresh(settings: Settings | None = None) -> dict[str, Any]:
    """Build what the events loaded since the last build feed (`connectors.transform` decides);
    nothing when nothing new landed, so a doubled wake-up or a fallback run costs ~a second."""
    from connectors.transform import QUALITY_SELECTOR, refresh_warehouse

    settings = _settings(settings)
    result = refresh_warehouse(settings, capture=True)
    selectors = result.plan.selectors
    print(
        ("nothing to build" if selectors == [] else "built")
        + f" ({result.plan.reason}) in {result.seconds:.1f} s"
    )
    return {
        "built": selectors != [],
        # events (or the project) changed the marts, not only the gate's own results
        "data_changed": selectors is None or any(s != QUALITY_SELECTOR for s in selectors),
        "selectors": selectors,
        "reason": result.plan.reason,
        "seconds": round(result.seconds, 2),
    }


def should_publish(refreshed: dict[str, Any], serving_exists: bool) -> bool:
    """Gate and publish after a refresh that changed marts from events or the project, or when
    nothing is served yet. Not after a build of the gate's own results only: the gate writes new
    results each time, so publishing those would make every run build again, forever."""
    return not serving_exists or bool(refreshed.get("data_changed"))


def serving_path(settings: Settings | None = None) -> Path:
    from connectors.quality import gate_paths

    return gate_paths(_settings(settings))["serving"]


def gate_and_publish(settings: Settings | None = None) -> dict[str, Any]:
    """Write-audit-publish: serving.duckdb is replaced only by a candidate that passed every
    expectation; a blocked gate raises QualityGateError (the task fails and names the checks)."""
    from rich.console import Console

    from connectors.quality import run_gate

    settings = _settings(settings)
    report = run_gate(settings, publish=True, console=Console(soft_wrap=True, force_terminal=False))
    stats = report.statistics
    return {
        "outcome": report.outcome,
        "location": str(report.location),
        "evaluated": stats.get("evaluated_expectations", 0),
        "successful": stats.get("successful_expectations", 0),
        "run_id": report.run_id,
    }


def health_rows(report: Any, raw_counts: dict[str, int], checked_at: datetime) -> list[tuple]:
    """Rows of one health snapshot from a `connectors.status.StatusReport` and raw row counts."""
    rows: list[tuple] = [(checked_at, "broker_up", "broker", int(report.broker_ok))]
    lag: dict[str, int] = {}
    for partition in report.lag:
        lag[partition.topic] = lag.get(partition.topic, 0) + partition.lag
    rows += [(checked_at, "consumer_lag", topic, value) for topic, value in sorted(lag.items())]
    rows += [
        (checked_at, "dead_letters", topic, count)
        for topic, count in sorted(report.topics.items())
        if topic.endswith(".dlq")
    ]
    rows += [(checked_at, "raw_rows", table, n) for table, n in sorted(raw_counts.items())]
    return rows


def pipeline_health(settings: Settings | None = None) -> dict[str, Any]:
    """Snapshot consumer lag per topic, dead letters per DLQ topic and raw rows per table into
    `raw._pipeline_health` (under the warehouse lock, briefly), for the health mart and dashboard.
    Raises when the broker is down, so the DAG run shows red."""
    from connectors.kafka.topics import load_topics
    from connectors.status import broker_status
    from connectors.warehouse import connect

    settings = _settings(settings)
    report = broker_status(
        settings.kafka_bootstrap, load_topics(settings.topics_file), settings.sink_group
    )
    checked_at = datetime.now(UTC)
    started = time.monotonic()
    with connect(settings.warehouse_path) as con:
        con.execute(_HEALTH_DDL)
        raw_tables = con.execute(
            "select table_name from information_schema.tables "
            "where table_catalog = current_database() and table_schema = 'raw' "
            "and table_name not like '\\_%' escape '\\'"
        ).fetchall()
        raw_counts = {
            f"raw.{name}": con.execute(f'select count(*) from raw."{name}"').fetchall()[0][0]
            for (name,) in raw_tables
        }
        rows = health_rows(report, raw_counts, checked_at)
        con.executemany(f"insert into {HEALTH_TABLE} values (?, ?, ?, ?)", rows)
    summary = {
        "broker_up": report.broker_ok,
        "consumer_lag": sum(p.lag for p in report.lag),
        "dead_letters": sum(v for t, v in report.topics.items() if t.endswith(".dlq")),
        "raw_rows": sum(raw_counts.values()),
        "rows_recorded": len(rows),
    }
    print(
        f"health: broker {'up' if report.broker_ok else 'down'}, lag {summary['consumer_lag']:,}, "
        f"dead letters {summary['dead_letters']:,}, raw rows {summary['raw_rows']:,} "
        f"({len(rows)} rows into {HEALTH_TABLE} in {time.monotonic() - started:.1f} s)"
    )
    if not report.broker_ok:
        raise UrbanFlowError(f"broker down: {report.broker_detail}")
    return summary


#: Failed attempts of scheduled runs (source DAGs and the others), for the pipeline-health mart.
FAILURES_TABLE = "raw._run_failures"
_FAILURES_DDL = f"""
create schema if not exists raw;
create table if not exists {FAILURES_TABLE} (
    failed_at timestamptz not null,
    dag_id varchar not null,
    task_id varchar not null,
    attempt integer not null,
    source varchar,                -- the pull source, for source DAGs
    error varchar not null
)
"""


def record_run_failure(
    dag_id: str,
    task_id: str,
    attempt: int,
    error: str,
    source: str | None = None,
    settings: Settings | None = None,
    lock_timeout_s: float = 60.0,
) -> bool:
    """Append a failed attempt to `raw._run_failures`, where the health mart shows it. Best effort:
    a failure callback must not hang on the warehouse lock or fail the run a second time, so a
    busy or missing warehouse is reported in the log and False returned."""
    from connectors.warehouse import connect

    settings = _settings(settings)
    try:
        with connect(settings.warehouse_path, timeout_s=lock_timeout_s) as con:
            con.execute(_FAILURES_DDL)
            con.execute(
                f"insert into {FAILURES_TABLE} values (now(), ?, ?, ?, ?, ?)",
                [dag_id, task_id, attempt, source, error[:4000]],
            )
    except Exception as exc:  # best effort by design, see the docstring
        print(f"could not record the failure of {dag_id}.{task_id} in {FAILURES_TABLE}: {exc}")
        return False
    return True


def on_failure(context: dict[str, Any]) -> None:
    """A DAG's `on_failure_callback`: records the failed attempt (`record_run_failure`). Reads
    Airflow's context as a plain mapping, so this package still imports nothing from Airflow."""
    ti = context["ti"]
    params = context.get("params") or {}
    record_run_failure(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        attempt=int(getattr(ti, "try_number", 0) or 0),
        error=repr(context.get("exception")),
        source=params.get("source"),
    )
