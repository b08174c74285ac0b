"""The transform DAG's dbt node tasks, reported from the triggerer (no worker process each).

Cosmos's watcher mode gives every dbt model and test its own task, fed by one `dbt build` (the
producer), which pushes each node's status to XCom. Run as sensors, those tasks cost a worker
process each (a DAG parse, imports, API calls: ~2 s of CPU), ~14 per run: on two cores that was
the freshness budget. The DAG starts them in the triggerer instead (`start_from_trigger`): this
trigger reads the node's status there and ends the task itself when the node succeeded or was
skipped. Anything else (the node failed, the producer failed or was skipped, a retry or a clear
from the UI) resumes the task on a worker in Cosmos's own `execute_complete`, which raises the
error or re-runs the node alone, as a Cosmos sensor would.

The triggerer imports this by dotted name from Airflow's plugins folder (`airflowctl` and the
image set `AIRFLOW__CORE__PLUGINS_FOLDER`); it loads no DAG bundle. A change here needs a
triggerer restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import TaskSkippedEvent, TaskSuccessEvent, TriggerEvent
from cosmos.listeners.dag_run_listener import EventStatus
from cosmos.operators._watcher.state import _log_dbt_event, get_dbt_event_xcom_key
from cosmos.operators._watcher.triggerer import WatcherEventReason, WatcherTrigger

#: What the transform DAG names as its node tasks' `StartTriggerArgs.trigger_cls`.
TRIGGER_CLASSPATH = f"{__name__}.DbtNodeReportTrigger"


class DbtNodeReportTrigger(WatcherTrigger):
    """Cosmos's `WatcherTrigger` for a task started from the triggerer: the run's coordinates
    come from the task instance the triggerer attaches, not from the DAG file."""

    def __init__(
        self,
        model_unique_id: str,
        producer_task_id: str,
        is_test_sensor: bool = False,
        poke_interval: float = 2.0,
        **_ignored: Any,
    ) -> None:
        super().__init__(
            model_unique_id=model_unique_id,
            producer_task_id=producer_task_id,
            dag_id="",
            run_id="",
            map_index=-1,
            poke_interval=poke_interval,
            is_test_sensor=is_test_sensor,
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            TRIGGER_CLASSPATH,
            {
                "model_unique_id": self.model_unique_id,
                "producer_task_id": self.producer_task_id,
                "is_test_sensor": self.is_test_sensor,
                "poke_interval": self.poke_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        ti = self.task_instance
        self.dag_id, self.run_id, self.map_index = ti.dag_id, ti.run_id, ti.map_index
        if ti.try_number > 1:
            # a retry or a clear: the worker re-runs this node alone (Cosmos's fallback)
            yield TriggerEvent(
                {"status": EventStatus.FAILED, "reason": WatcherEventReason.PRODUCER_SKIPPED}
            )
            return
        async for event in super().run():
            status = event.payload.get("status")
            if status not in (EventStatus.SUCCESS, EventStatus.SKIPPED):
                yield event  # the worker raises the node's or the producer's error
                return
            _log_dbt_event(await self.get_xcom_val(get_dbt_event_xcom_key(self.model_unique_id)))
            yield TaskSuccessEvent() if status == EventStatus.SUCCESS else TaskSkippedEvent()
            return
