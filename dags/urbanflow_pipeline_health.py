"""UrbanFlow pipeline health DAG: every 15 minutes, consumer lag per topic, dead letters per DLQ
topic and raw rows per table are recorded in `raw._pipeline_health` for the pipeline-health mart
and dashboard (`connectors.orchestration.health.pipeline_health`). A down broker fails the run.
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
    default_args={
        "owner": "urbanflow-data",
        "retries": 1,
        "retry_delay": timedelta(minutes=1),
        "execution_timeout": timedelta(minutes=5),
        "on_failure_callback": health.on_failure,
    },
)
def urbanflow_pipeline_health():
    @task
    def snapshot() -> dict:
        return health.pipeline_health()

    snapshot()


urbanflow_pipeline_health()
