"""The `apply_function` of the transform DAG's AssetWatcher (Kafka `MessageQueueTrigger`).

The triggerer imports it by dotted name from the installed package, outside the DAG bundle, so
this module stays small: standard library only, no broker, no database. A change here needs a
triggerer restart.

A truthy return wakes the transform DAG (the value becomes the asset event's payload); a falsy one
lets the trigger commit the message and keep listening. The wake-up decides nothing about *what*
to build: `connectors.transform.refresh_warehouse` reads the sink's offsets for that, so a lost or
doubled wake-up costs a run at most, never data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

#: Must equal `connectors.sink.service.BATCH_LANDED_TOPIC` / `_TYPE` (a unit test holds them equal;
#: importing the sink here would pull kafka-python and DuckDB into the triggerer).
BATCH_LANDED_TOPIC = "ops.warehouse.batch_landed.v1"
BATCH_LANDED_TYPE = "org.urbanflow.ops.batch_landed.v1"
#: Dotted name the DAG gives the trigger.
APPLY_FUNCTION = "connectors.orchestration.watcher.batch_landed"


class KafkaMessage(Protocol):
    """What the trigger passes: a confluent-kafka `Message` (only these methods are used)."""

    def value(self) -> bytes | None: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...


def wake_up_payload(
    value: bytes | str | None, warehouse: str | None = None
) -> dict[str, Any] | None:
    """The asset event's payload for one message on the batch-landed topic, or None to skip it.

    Skipped: tombstones, bytes that are not a batch-landed CloudEvent (a wrong producer must not
    crash the triggerer), batches that landed nothing (no rows and no dead letters), and batches of
    another warehouse when `warehouse` is given (test runs and `make up` may share a broker).
    """
    if not value:
        return None
    try:
        event = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(event, dict) or event.get("type") != BATCH_LANDED_TYPE:
        return None
    data = event.get("data")
    if not isinstance(data, dict):
        return None
    if warehouse is not None and not _same_path(data.get("warehouse"), warehouse):
        return None
    rows_by_table = data.get("rows_by_table") or {}
    rows = sum(n for n in rows_by_table.values() if isinstance(n, int))
    dead = data.get("dead_lettered") if isinstance(data.get("dead_lettered"), int) else 0
    if rows <= 0 and dead <= 0:
        return None
    return {
        "batch_id": str(data.get("batch_id", "")),
        "event_id": str(event.get("id", "")),
        "time": str(event.get("time", "")),
        "rows": rows,
        "dead_lettered": dead,
        "tables": sorted(t for t, n in rows_by_table.items() if isinstance(n, int) and n > 0),
    }


def batch_landed(message: KafkaMessage, warehouse: str | None = None) -> dict[str, Any] | None:
    """`apply_function` for `MessageQueueTrigger(scheme="kafka", ...)`: see `wake_up_payload`."""
    payload = wake_up_payload(message.value(), warehouse)
    if payload is not None:
        payload["kafka"] = {
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
        }
    return payload


def _same_path(reported: object, expected: str) -> bool:
    if not isinstance(reported, str):
        return False
    return Path(reported).resolve() == Path(expected).resolve()
