"""UrbanFlow source DAGs: one DAG per entry of dags/sources.yml (schedule, inputs, settings,
retries with exponential backoff, timeout, owner, tags, doc), each running its pull source once per
run through `connectors.orchestration.tasks.run_scheduled_source`. A run sends only what is new
(the source's state is saved after Kafka confirmed), so a retry or a manual run is safe; the sink
loads the events and the transform DAG wakes on the landed batch.
"""

from __future__ import annotations

from airflow.sdk import CronTriggerTimetable, dag, task

from connectors.orchestration import tasks
from connectors.orchestration.schedules import SourceSchedule, load_schedules
from connectors.settings import OrchestrationSettings

SETTINGS = OrchestrationSettings.from_env()


def source_dag(entry: SourceSchedule):
    @dag(
        dag_id=entry.dag_id,
        # No start_date: a new source waits for its first scheduled time (run_immediately=False)
        # instead of every source running at once on a fresh Airflow; trigger it to run now.
        schedule=None
        if entry.schedule is None
        else CronTriggerTimetable(entry.schedule, timezone="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=list(entry.tags),
        doc_md=f"{entry.doc}\n\nSource `{entry.source}`; declared in `dags/sources.yml` "
        f"(`sources.{entry.name}`).\n\n{__doc__}",
        params={"source": entry.source},
        default_args=tasks.default_args(
            owner=entry.owner,
            retries=entry.retries,
            retry_delay=entry.retry_delay,
            max_retry_delay=entry.max_retry_delay,
            timeout=entry.timeout,
        ),
    )
    def generated():
        @task(task_id="run_source")
        def run_source() -> dict:
            return tasks.run_scheduled_source(entry)

        run_source()

    return generated()


for _entry in load_schedules(SETTINGS.source_schedules_file):
    if _entry.enabled:
        globals()[_entry.dag_id] = source_dag(_entry)
