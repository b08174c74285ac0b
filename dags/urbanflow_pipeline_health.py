"""UrbanFlow pipeline health DAG: every 15 minutes, for the pipeline-health marts and dashboard
(`connectors.orchestration.health`):

* **snapshot**: consumer lag per topic, dead letters per DLQ topic and raw rows per table into
  `raw._pipeline_health`. A down broker fails it (after recording `broker_up = 0`).
* **freshness**: `dbt source freshness` over every source with a `freshness:` block; each source
  table's verdict (pass / warn / error / runtime error) and max loaded age into
  `raw._source_freshness`. A stale source is a result, not a failure of the task.
* **build_marts**: `dbt build` of what reads those tables and the failed runs every DAG records
  (`fct_pipeline_health`, `fct_source_freshness`, `fct_run_failures`), even when a check failed,
  so the failure shows. The transform DAG's next publish serves them.

Each task takes the warehouse lock only while it writes or dbt runs (DuckDB has one writer).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from connectors.orchestration import health, tasks


@dag(
    dag_id="urbanflow_pipeline_health",
    schedule="*/15 * * * *",
    start_date=tasks.START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["urbanflow", "ops"],
    doc_md=__doc__,
    default_args=tasks.default_args(
        retries=1,
        retry_delay=timedelta(minutes=1),
        max_retry_delay=timedelta(minutes=2),
        timeout=timedelta(minutes=5),
    ),
)
def urbanflow_pipeline_health():
    @task
    def snapshot() -> dict:
        """Consumer lag, dead letters, raw rows and broker up into raw._pipeline_health."""
        return health.pipeline_health()

    @task
    def freshness() -> dict:
        """dbt source freshness verdicts into raw._source_freshness."""
        return health.source_freshness()

    @task(trigger_rule="all_done")
    def build_marts() -> dict:
        """dbt build of the health marts, after both checks whatever their outcome."""
        return health.build_health_marts()

    [snapshot(), freshness()] >> build_marts()


urbanflow_pipeline_health()
