"""`urbanflow status`: broker health, topics, consumer lag per partition, warehouse row counts."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from kafka import TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError

from connectors.errors import BrokerUnavailableError
from connectors.kafka.topics import TopicSpec, admin_client
from connectors.warehouse import connect, lock_holder, lock_path

STATUS_LOCK_TIMEOUT_S = 60.0
log = logging.getLogger(__name__)


@dataclass
class PartitionLag:
    topic: str
    partition: int
    end_offset: int
    committed: int | None

    @property
    def lag(self) -> int:
        return self.end_offset - (self.committed or 0)


@dataclass
class StatusReport:
    broker_ok: bool
    broker_detail: str
    topics: dict[str, int] = field(default_factory=dict)  # topic -> messages (sum of end offsets)
    lag: list[PartitionLag] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)  # schema.table -> rows


def broker_status(bootstrap: str, specs: list[TopicSpec], group: str) -> StatusReport:
    try:
        admin = admin_client(bootstrap)
    except BrokerUnavailableError as exc:
        return StatusReport(broker_ok=False, broker_detail=str(exc))
    try:
        cluster = admin.describe_cluster()
        report = StatusReport(
            broker_ok=True,
            broker_detail=f"{len(cluster.get('brokers', []))} broker(s) at {bootstrap}",
        )
        names = [s.name for s in specs] + [s.dlq_name for s in specs if s.dlq]
        existing = set(admin.list_topics())
        described = admin.describe_topics([n for n in names if n in existing])
        partitions = [
            TopicPartition(t["name"], p["partition_index"])
            for t in described
            for p in t["partitions"]
        ]
        ends = admin.list_partition_offsets(dict.fromkeys(partitions, OffsetSpec.LATEST))
        for name in names:
            report.topics[name] = sum(v.offset for tp, v in ends.items() if tp.topic == name)
        try:
            committed = admin.list_group_offsets({group: None}).get(group, {})
        except KafkaError:  # the group has never committed (fresh broker): no offsets yet
            committed = {}
        for tp in sorted(partitions):
            if tp.topic in {s.name for s in specs if s.sink}:
                meta = committed.get(tp)
                report.lag.append(
                    PartitionLag(
                        tp.topic, tp.partition, ends[tp].offset, meta.offset if meta else None
                    )
                )
        return report
    except KafkaError as exc:
        return StatusReport(broker_ok=False, broker_detail=f"broker at {bootstrap} errored: {exc}")
    finally:
        admin.close()


def served_rows(serving: Path, raw_table: str) -> int | None:
    """Rows of `raw_table` as the published health mart (`marts.fct_source_health`) counts them:
    what analysts see of it. 0 before the first publish; None while serving.duckdb is being
    replaced (ask again)."""
    if not serving.exists():
        return 0
    try:
        with duckdb.connect(str(serving), read_only=True) as con:
            row = con.execute(
                "select row_count from marts.fct_source_health where raw_table = ?", [raw_table]
            ).fetchall()
    except duckdb.Error:
        return None
    return int(row[0][0]) if row else 0


def warehouse_counts(warehouse: Path) -> dict[str, int]:
    """Row counts per table and view: what landed and what dbt built, at a glance."""
    if not warehouse.exists():
        return {}
    holder = lock_holder(lock_path(warehouse))
    if holder is not None:  # say at once why the counts take a while
        log.warning(
            "the warehouse lock %s is held by %s, a sink or dbt run: row counts wait for it "
            "(up to %.0f s)",
            lock_path(warehouse),
            holder,
            STATUS_LOCK_TIMEOUT_S,
        )
    with connect(warehouse, read_only=True, timeout_s=STATUS_LOCK_TIMEOUT_S) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database() order by 1, 2"
        ).fetchall()
        return {
            f"{schema}.{name}": con.execute(f'select count(*) from "{schema}"."{name}"').fetchall()[
                0
            ][0]
            for schema, name in tables
        }
