"""UrbanFlow transform DAG: refresh the warehouse, gate and publish serving.duckdb (DESIGN.md §5).

Woken by the sink's `ops.warehouse.batch_landed.v1` events (an AssetWatcher with the Kafka message
queue trigger) **or** every 10 minutes: the watcher is a wake-up call, never a ledger. What to build
is decided from the sink's offsets (`connectors.transform`), so a doubled wake-up builds nothing and
a lost one costs at most the fallback interval. DuckDB has one writer: every dbt run and the gate
take the warehouse lock, so runs never write at once. `max_active_runs=2` lets the next run plan and
build while the last one's node tasks are still reporting, and a burst of batches folds into it.

dbt runs through astronomer-cosmos in its watcher mode: one `dbt build` (task
`dbt.dbt_producer_watcher`, through `urbanflow-dbt`, which holds the warehouse lock and builds what
the refresh plan says) reports each model and test to its own task in the `dbt` group, with its own
log; clearing one of those tasks re-runs that model alone. The node tasks start when the build has
finished, only for the nodes it built (the others are skipped), and publishing does not wait for
them. They start in the triggerer (`start_from_trigger`, `infra/airflow/plugins/
urbanflow_node_reports.py`), which ends a passed or skipped node's task itself: no worker process
per node, so a run ends soon after it publishes and the next event finds a free run slot.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk import Asset, AssetOrTimeSchedule, AssetWatcher, CronTriggerTimetable, dag, task
from airflow.triggers.base import StartTriggerArgs
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode

from connectors.orchestration import tasks, watcher
from connectors.settings import OrchestrationSettings

SETTINGS = OrchestrationSettings.from_env()
DBT_PROJECT = SETTINGS.base.dbt_project_dir
#: The node tasks' trigger, imported by the triggerer from Airflow's plugins folder.
NODE_REPORT_TRIGGER = "urbanflow_node_reports.DbtNodeReportTrigger"
#: A node task whose report has not come by then (a triggerer down for that long) times out and
#: retries like any task; the build and publishing never wait for it.
NODE_REPORT_TIMEOUT = timedelta(minutes=10)

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
    max_active_runs=2,
    tags=["urbanflow", "transform"],
    doc_md=__doc__,
    default_args=tasks.default_args(
        retries=2,
        retry_delay=timedelta(seconds=30),
        max_retry_delay=timedelta(minutes=5),
        timeout=timedelta(minutes=30),
    ),
)
def urbanflow_transform():
    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def plan() -> dict:
        """What the new events feed; the dbt tasks are skipped when nothing new landed."""
        planned = tasks.plan()
        return planned if planned["build"] else {}

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT,
            manifest_path=tasks.dbt_manifest(SETTINGS),
            install_dbt_deps=False,  # the project has no packages
        ),
        profile_config=ProfileConfig(
            profile_name="urbanflow",
            target_name="dev",
            profiles_yml_filepath=DBT_PROJECT / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=str(SETTINGS.dbt_executable),
        ),
        render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST),
    )
    built = _report_after_the_build(dbt)

    @task.short_circuit(trigger_rule="none_failed")
    def publish_needed(ti=None) -> bool:
        """Gate and publish after a build that changed marts, or when nothing is served yet."""
        planned = ti.xcom_pull(task_ids="plan") or {}
        return tasks.should_publish(planned, tasks.serving_path().exists())

    @task
    def gate_and_publish(run_id=None) -> dict:
        """Great Expectations on the candidate this run's build handed over (or a fresh copy);
        only a passing one replaces serving.duckdb."""
        return tasks.gate_and_publish(run_id=run_id)

    plan() >> dbt
    built >> publish_needed() >> gate_and_publish()


def _report_after_the_build(group: DbtTaskGroup):
    """Wire the node tasks to run after the producer (one `dbt build`), and only those of nodes
    the build ran: the others are skipped by the scheduler, without a worker process each.
    Returns the producer's done marker, which publishing waits for.

    The producer is not retried: Cosmos skips a producer's second attempt, which would let a
    failed build look done; the run fails instead and the next one builds again."""
    build = group.get_child_by_label("dbt_producer_watcher")
    built_marker = group.get_child_by_label("dbt_producer_watcher_done")
    build.retries = 0
    node_tasks = [t for t in group.iter_tasks() if t not in (build, built_marker)]

    @task.branch(task_id="dbt_built_nodes", task_group=group)
    def built_nodes(ti=None) -> list[str]:
        """The node tasks whose node this run's build reported on (Cosmos's status XComs)."""
        return [
            t.task_id
            for t in node_tasks
            if ti.xcom_pull(task_ids=build.task_id, key=_status_key(t)) is not None
        ]

    branch = built_nodes()
    build >> branch
    _unchain(node_tasks)
    for node_task in node_tasks:
        branch >> node_task
        # a built model whose parents were not built this run still reports
        node_task.trigger_rule = "none_failed_min_one_success"
        # reports only: if one needs a worker (an error, a re-run), every other task goes first
        node_task.priority_weight = 1
        node_task.weight_rule = "absolute"
        _report_from_the_triggerer(node_task, build.task_id)
    return built_marker


def _unchain(node_tasks: list) -> None:
    """Drop Cosmos's node-to-node edges: the build has already run every node in dbt's order, so
    each report can start at once instead of a wave of triggers per layer of the graph. A node the
    build skipped after a failed parent reports skipped; the lineage stays in dbt's docs."""
    ids = {t.task_id for t in node_tasks}
    for node_task in node_tasks:
        node_task.upstream_task_ids.difference_update(ids)
        node_task.downstream_task_ids.difference_update(ids)


def _report_from_the_triggerer(node_task, producer_task_id: str) -> None:
    """Start the node task deferred, on the plugin's trigger; a failure or a re-run resumes it
    on a worker in Cosmos's `execute_complete`."""
    node_task.start_from_trigger = True
    node_task.start_trigger_args = StartTriggerArgs(
        trigger_cls=NODE_REPORT_TRIGGER,
        trigger_kwargs={
            "model_unique_id": node_task.model_unique_id,
            "producer_task_id": producer_task_id,
            "is_test_sensor": node_task.is_test_sensor,
        },
        next_method="execute_complete",
        timeout=NODE_REPORT_TIMEOUT,
    )


def _status_key(node_task) -> str:
    from cosmos.operators._watcher.aggregation import get_tests_status_xcom_key
    from cosmos.operators._watcher.state import get_status_xcom_key

    if node_task.is_test_sensor:
        return get_tests_status_xcom_key(node_task.model_unique_id)
    return get_status_xcom_key(node_task.model_unique_id)


urbanflow_transform()
