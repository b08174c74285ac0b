"""Access to warehouse.duckdb under the single-writer rule (DESIGN.md §3).

DuckDB allows one writing process per file, and a writer shuts readers in other processes out.
Every process that opens the warehouse (sink, dbt, status) takes the same lock file first and
holds it as briefly as it can; Kafka buffers meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from connectors.errors import UrbanFlowError

DEFAULT_LOCK_TIMEOUT_S = 600.0


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


@contextmanager
def warehouse_lock(warehouse: Path, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[None]:
    """The inter-process lock shared by the sink and dbt; released even if the holder is killed."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(warehouse)))
    try:
        with lock.acquire(timeout=timeout_s):
            yield
    except Timeout:
        raise UrbanFlowError(
            f"waited {timeout_s:.0f} s for the warehouse lock {lock_path(warehouse)}; "
            "another sink or dbt run holds it"
        ) from None


@contextmanager
def connect(
    warehouse: Path,
    *,
    read_only: bool = False,
    timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    memory_limit: str | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse under the lock, and close it before the lock is released."""
    with warehouse_lock(warehouse, timeout_s):
        if read_only and not warehouse.exists():
            raise UrbanFlowError(f"warehouse {warehouse} does not exist yet; run the sink first")
        config = {"memory_limit": memory_limit} if memory_limit else {}
        con = duckdb.connect(str(warehouse), read_only=read_only, config=config)
        try:
            yield con
        finally:
            con.close()
