"""The callables behind the DAGs' tasks: what `urbanflow` commands do, as functions with small,
JSON-able results (Airflow keeps them as XComs and shows them in the UI).

Each takes `Settings` (default: from the environment, which airflowctl and the compose file set),
raises our own errors with actionable messages (Airflow marks the task failed and retries), and
prints one summary line into the task's log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.errors import UrbanFlowError
from connectors.orchestration.health import on_failure
from connectors.orchestration.schedules import SourceSchedule, run_overrides
from connectors.settings import OrchestrationSettings, Settings

#: DAGs start from here; none catches up (a source run reads to its own high-water mark).
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
OWNER = "urbanflow-data"


def default_args(
    *,
    retries: int,
    retry_delay: timedelta,
    max_retry_delay: timedelta,
    timeout: timedelta,
    owner: str = OWNER,
) -> dict[str, Any]:
    """What every UrbanFlow task gets: an owner, retries with exponential backoff, a time bound,
    and failures recorded where the pipeline-health mart shows them."""
    return {
        "owner": owner,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": max_retry_delay,
        "execution_timeout": timeout,
        "on_failure_callback": on_failure,
    }


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


def should_publish(refreshed: dict[str, Any], serving_exists: bool) -> bool:
    """Gate and publish after a refresh that changed marts from events or the project, or when
    nothing is served yet. Not after a build of the gate's own results only: the gate writes new
    results each time, so publishing those would make every run build again, forever."""
    return not serving_exists or bool(refreshed.get("data_changed"))


def serving_path(settings: Settings | None = None) -> Path:
    from connectors.quality import gate_paths

    return gate_paths(_settings(settings))["serving"]


def gate_and_publish(settings: Settings | None = None, run_id: str | None = None) -> dict[str, Any]:
    """Write-audit-publish: serving.duckdb is replaced only by a candidate that passed every
    expectation; a blocked gate raises QualityGateError (the task fails and names the checks).
    The candidate is the one run `run_id`'s build handed over, when there is one."""
    from rich.console import Console

    from connectors.quality import handover_path, run_gate

    settings = _settings(settings)
    report = run_gate(
        settings,
        publish=True,
        console=Console(soft_wrap=True, force_terminal=False),
        handover=handover_path(settings, run_id) if run_id else None,
    )
    stats = report.statistics
    return {
        "outcome": report.outcome,
        "location": str(report.location),
        "evaluated": stats.get("evaluated_expectations", 0),
        "successful": stats.get("successful_expectations", 0),
        "run_id": report.run_id,
    }


def plan() -> dict[str, Any]:
    """What the next refresh would build, checked before Airflow starts the dbt tasks: when nothing
    new landed (a doubled wake-up, most fallback runs) they are skipped, not started to idle."""
    from connectors.transform import QUALITY_SELECTOR, plan_refresh

    build_plan = plan_refresh(Settings.from_env())
    selectors = build_plan.selectors
    print(f"plan: {'nothing to build' if selectors == [] else 'build'} ({build_plan.reason})")
    return {
        "build": selectors != [],
        # events (or the project) changed the marts, not only the gate's own results
        "data_changed": selectors is None or any(s != QUALITY_SELECTOR for s in selectors),
        "selectors": selectors,
        "reason": build_plan.reason,
    }


def dbt_manifest(settings: OrchestrationSettings) -> Path:
    """The manifest Cosmos renders the dbt tasks from; a clear error when it was never written."""
    path = settings.dbt_manifest_path
    if not path.is_file():
        raise UrbanFlowError(
            f"dbt manifest {path} not found: write it with `urbanflow dbt parse --target-path "
            f"{path.parent}` (`infra/airflow/airflowctl start` does) or set UF_AIRFLOW_DBT_MANIFEST"
        )
    return path


def write_dbt_manifest(settings: OrchestrationSettings) -> Path:
    """`dbt parse` into the manifest's folder (under the warehouse lock, like every dbt run)."""
    from connectors.transform import run_dbt

    run_dbt(settings.base, ["parse", "--target-path", str(settings.dbt_manifest_path.parent)])
    return dbt_manifest(settings)
