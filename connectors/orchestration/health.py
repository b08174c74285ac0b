"""Pipeline health for the ops marts and the health dashboard: snapshots of consumer lag, dead
letters and raw volumes (`pipeline_health`), and failed scheduled runs (`record_run_failure`,
the DAGs' `on_failure_callback`). Imports nothing from Airflow (DESIGN.md §5).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from connectors.errors import UrbanFlowError
from connectors.settings import Settings


def _settings(settings: Settings | None) -> Settings:
    return settings or Settings.from_env()


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
