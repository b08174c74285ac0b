"""Pipeline health for the ops marts and the health dashboard: snapshots of consumer lag, dead
letters and raw volumes (`pipeline_health`), dbt's verdict on every source's freshness
(`source_freshness`), and failed scheduled runs (`record_run_failure`, the DAGs'
`on_failure_callback`). Imports nothing from Airflow (DESIGN.md §5).

The three tables live in the warehouse's `raw` schema, appended under the warehouse lock, held
briefly (the sink takes the same lock for each batch). Whichever writer comes first creates them,
and so does dbt's `on-run-start` (macro `create_pipeline_health_tables`, held equal to
`TABLES_DDL` by a unit test), so `dbt build` works on a fresh warehouse.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.errors import UrbanFlowError
from connectors.settings import Settings


def _settings(settings: Settings | None) -> Settings:
    return settings or Settings.from_env()


#: One row per health measure per snapshot, appended by `pipeline_health`; the ops marts read it.
HEALTH_TABLE = "raw._pipeline_health"
#: One row per source table per freshness check, appended by `source_freshness`.
FRESHNESS_TABLE = "raw._source_freshness"
#: Failed attempts of scheduled runs (source DAGs and the others), for the pipeline-health mart.
FAILURES_TABLE = "raw._run_failures"
TABLES = (HEALTH_TABLE, FRESHNESS_TABLE, FAILURES_TABLE)
#: The tables above, created if missing. dbt's on-run-start runs the same statements (macro
#: `create_pipeline_health_tables`): change both, a unit test compares them.
TABLES_DDL = f"""
create schema if not exists raw;
create table if not exists {HEALTH_TABLE} (
    checked_at timestamptz not null,
    measure varchar not null,      -- consumer_lag | dead_letters | broker_up | raw_rows
    subject varchar not null,      -- topic, raw table or 'broker'
    value bigint not null
);
create table if not exists {FRESHNESS_TABLE} (
    checked_at timestamptz not null,
    source_name varchar not null,  -- dbt source
    table_name varchar not null,   -- dbt source table
    status varchar not null,       -- pass | warn | error | runtime error (dbt's verdict)
    max_loaded_at timestamptz,     -- null: never loaded, or not measured (runtime error)
    max_loaded_age_s double,
    warn_after_s bigint,
    error_after_s bigint,
    error varchar                  -- dbt's message for a runtime error
);
create table if not exists {FAILURES_TABLE} (
    failed_at timestamptz not null,
    dag_id varchar not null,
    task_id varchar not null,
    attempt integer not null,
    source varchar,                -- the pull source, for source DAGs
    error varchar not null
);
alter table {FAILURES_TABLE} add column if not exists run_id varchar;
"""


def ensure_tables(con: Any) -> None:
    """Create the health tables if missing (`con`: the warehouse, opened under the lock)."""
    con.execute(TABLES_DDL)


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
        ensure_tables(con)
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


# --- source freshness (dbt) ---------------------------------------------------------------------

#: dbt's verdicts, as `dbt source freshness` names them.
FRESHNESS_STATUSES = ("pass", "warn", "error", "runtime error")
_PERIOD_S = {"minute": 60, "hour": 3600, "day": 86400}
#: dbt's `max_loaded_at` for a table with no row (a max over nothing): recorded as null.
_NEVER_LOADED_YEAR = 1


def _threshold_s(threshold: dict[str, Any] | None) -> int | None:
    if not threshold or threshold.get("count") is None or threshold.get("period") is None:
        return None
    return int(threshold["count"]) * _PERIOD_S[threshold["period"]]


def freshness_rows(
    log_events: Iterable[dict[str, Any]], artifact: dict[str, Any], checked_at: datetime
) -> list[tuple]:
    """Rows of one freshness check, one per source table dbt checked, from the run's JSON log
    events and its `sources.json`.

    Both are needed: `sources.json` has each table's max loaded time, age and thresholds but
    leaves out the tables dbt could not query (runtime errors, e.g. a table not created yet); the
    log names every table with its verdict, and the runtime error's message."""
    events = list(log_events)
    measured = {result["unique_id"]: result for result in artifact.get("results", [])}
    errors = {
        event["data"]["node_info"]["unique_id"]: event["data"].get("msg")
        for event in events
        if event["info"]["name"] == "RunResultError" and event["data"].get("node_info")
    }
    rows = []
    for event in events:
        if event["info"]["name"] != "LogFreshnessResult":
            continue
        data = event["data"]
        unique_id = data["node_info"]["unique_id"]
        result = measured.get(unique_id, {})
        loaded_at = result.get("max_loaded_at")
        loaded = datetime.fromisoformat(loaded_at) if loaded_at else None
        age = result.get("max_loaded_at_time_ago_in_s")
        if loaded is not None and loaded.year == _NEVER_LOADED_YEAR:
            loaded, age = None, None
        criteria = result.get("criteria") or {}
        status = data["status"]
        rows.append(
            (
                checked_at,
                data["source_name"],
                data["table_name"],
                status,
                loaded,
                age,
                _threshold_s(criteria.get("warn_after")),
                _threshold_s(criteria.get("error_after")),
                errors.get(unique_id) if status == "runtime error" else None,
            )
        )
    return sorted(rows, key=lambda row: (row[1], row[2]))


def _dbt_target_dir(settings: Settings) -> Path:
    """Where dbt writes its artifacts: DBT_TARGET_PATH, else the project's `target-path`."""
    target = Path(os.environ.get("DBT_TARGET_PATH") or "target")
    return target if target.is_absolute() else settings.dbt_project_dir / target


def _json_log(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def source_freshness(settings: Settings | None = None) -> dict[str, Any]:
    """Run `dbt source freshness` (through `connectors.transform.run_dbt`: under the warehouse
    lock, in dbt's forked child) and append each source table's verdict and max loaded age to
    `raw._source_freshness`. Stale sources are results, not failures: dbt exits non-zero for
    them, which is recorded; the task fails only when dbt checked nothing."""
    from connectors.transform import run_dbt
    from connectors.warehouse import connect

    settings = _settings(settings)
    checked_at = datetime.now(UTC)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="uf-freshness-") as logs:
        args = ["source", "freshness", "--log-path", logs, "--log-format-file", "json"]
        failure: UrbanFlowError | None = None
        try:
            run_dbt(settings, [*args, "--log-level-file", "info"], capture=True)
        except UrbanFlowError as exc:  # exit 1 also means "a source is stale": see below
            failure = exc
        events = _json_log(Path(logs) / "dbt.log")
    checked = [e for e in events if e["info"]["name"] == "LogFreshnessResult"]
    if not checked:
        raise failure or UrbanFlowError(
            f"`dbt source freshness` checked no source in {settings.dbt_project_dir}: "
            "declare `freshness:` and `loaded_at_field` on the sources in models/staging/"
        )
    invocation = checked[0]["info"]["invocation_id"]
    artifact_path = _dbt_target_dir(settings) / "sources.json"
    artifact = json.loads(artifact_path.read_text(encoding="utf-8"))
    if artifact.get("metadata", {}).get("invocation_id") != invocation:
        raise UrbanFlowError(
            f"{artifact_path} is not from this `dbt source freshness` run (invocation "
            f"{invocation}); is another dbt writing to the same target path (DBT_TARGET_PATH)?"
        )
    rows = freshness_rows(events, artifact, checked_at)
    with connect(settings.warehouse_path) as con:
        ensure_tables(con)
        con.executemany(f"insert into {FRESHNESS_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    counts = Counter(row[3] for row in rows)
    summary: dict[str, Any] = {status: counts.get(status, 0) for status in FRESHNESS_STATUSES}
    summary["sources"] = len(rows)
    summary["not_fresh"] = [f"{row[1]}.{row[2]}" for row in rows if row[3] != "pass"]
    print(
        f"freshness: {len(rows)} source tables, "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in FRESHNESS_STATUSES)
        + f" ({len(rows)} rows into {FRESHNESS_TABLE} in {time.monotonic() - started:.1f} s)"
    )
    for row in rows:
        if row[3] != "pass":
            print(f"  {row[3]}: {row[1]}.{row[2]}" + (f": {row[8]}" if row[8] else ""))
    return summary


#: What the health DAG rebuilds after recording: the ops marts over the health tables. A refresh
#: of the warehouse builds from the sink's offsets and would not select them.
HEALTH_MARTS_SELECTOR = "source:orchestration+"


def build_health_marts(settings: Settings | None = None) -> dict[str, Any]:
    """`dbt build` of the models over the health tables (staging views, ops marts, their tests),
    so the marts show the snapshots and failures just recorded; the next publish serves them."""
    from connectors.transform import WAREHOUSE_BUILD, run_dbt

    settings = _settings(settings)
    started = time.monotonic()
    args = [*WAREHOUSE_BUILD, "--log-level-file", "info", "--no-write-json"]
    run_dbt(settings, [*args, "--select", HEALTH_MARTS_SELECTOR], capture=True)
    seconds = round(time.monotonic() - started, 2)
    print(f"built {HEALTH_MARTS_SELECTOR} in {seconds:.1f} s")
    return {"selector": HEALTH_MARTS_SELECTOR, "seconds": seconds}


def record_run_failure(
    dag_id: str,
    task_id: str,
    attempt: int,
    error: str,
    source: str | None = None,
    settings: Settings | None = None,
    lock_timeout_s: float = 60.0,
    run_id: str | None = None,
) -> bool:
    """Append a failed attempt to `raw._run_failures`, where the health mart shows it. Best effort:
    a failure callback must not hang on the warehouse lock or fail the run a second time, so a
    busy or missing warehouse is reported in the log and False returned."""
    from connectors.warehouse import connect

    settings = _settings(settings)
    try:
        with connect(settings.warehouse_path, timeout_s=lock_timeout_s) as con:
            ensure_tables(con)
            con.execute(
                f"insert into {FAILURES_TABLE}"
                " (failed_at, dag_id, task_id, run_id, attempt, source, error)"
                " values (now(), ?, ?, ?, ?, ?, ?)",
                [dag_id, task_id, run_id, attempt, source, error[:4000]],
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
        run_id=getattr(ti, "run_id", None) or context.get("run_id"),
        attempt=int(getattr(ti, "try_number", 0) or 0),
        error=repr(context.get("exception")),
        source=params.get("source"),
    )
