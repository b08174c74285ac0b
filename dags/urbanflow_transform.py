"""UrbanFlow transform DAG: refresh the warehouse, gate and publish serving.duckdb (DESIGN.md §5).

Woken by the sink's `ops.warehouse.batch_landed.v1` events (an AssetWatcher with the Kafka message
queue trigger) **or** every 10 minutes: the watcher is a wake-up call, never a ledger. What to build
is decided by `connectors.transform.refresh_warehouse` from the sink's offsets, so a doubled
wake-up builds nothing and a lost one costs at most the fallback interval. `max_active_runs=1`:
DuckDB has one writer, and a burst of batches folds into the next run.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk import Asset, AssetOrTimeSchedule, AssetWatcher, CronTriggerTimetable, dag, task

from connectors.orchestration import health, tasks, watcher
from connectors.settings import OrchestrationSettings

SETTINGS = OrchestrationSettings.from_env()

batch_landed = Asset(
    "urbanflow_batch_landed",
    watchers=[
        AssetWatcher(
            name="urbanflow_batch_landed_watcher",
            trigger=MessageQueueTrigger(
                scheme="kafka",
                topics=[watcher.BATCH_LANDED_TOPIC],
                apply_function=watcher.APPLY_FUNCTION,
                # only this warehouse's batches: tests and `make up` may share a broker
                apply_function_kwargs={"warehouse": str(SETTINGS.base.warehouse_path)},
                kafka_config_id=SETTINGS.kafka_conn_id,
                poll_interval=SETTINGS.watcher_poll_interval_s,
            ),
        )
    ],
)


@dag(
    dag_id="urbanflow_transform",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(SETTINGS.transform_fallback_cron, timezone="UTC"),
        assets=batch_landed,
    ),
    start_date=tasks.START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["urbanflow", "transform"],
    doc_md=__doc__,
    default_args={
        "owner": "urbanflow-data",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(minutes=30),
        "on_failure_callback": health.on_failure,
    },
)
def urbanflow_transform():
    @task
    def refresh() -> dict:
        """dbt build of what the new events feed; nothing when nothing new landed."""
        return tasks.refresh()

    @task.short_circuit
    def publish_needed(refreshed: dict) -> bool:
        """Skip the gate when no mart changed and serving.duckdb is current."""
        return tasks.should_publish(refreshed, tasks.serving_path().exists())

    @task
    def gate_and_publish() -> dict:
        """Great Expectations on a candidate; only a passing one replaces serving.duckdb."""
        return tasks.gate_and_publish()

    publish_needed(refresh()) >> gate_and_publish()


urbanflow_transform()
