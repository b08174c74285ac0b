"""dbt runs under the warehouse lock, so the sink and dbt never write at once (DESIGN.md §3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from connectors.errors import UrbanFlowError
from connectors.kafka.topics import load_topics
from connectors.settings import Settings
from connectors.sink.loader import ensure_schema
from connectors.warehouse import warehouse_lock


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    if not candidate.exists():
        raise UrbanFlowError(f"dbt is not installed next to {sys.executable}; run `make install`")
    return str(candidate)


def declare_raw_tables(settings: Settings) -> None:
    """Create every declared topic's raw table (empty until the sink loads it), so each dbt source
    resolves even for a topic that has not received its first event. Caller holds the lock."""
    specs = [spec for spec in load_topics(settings.topics_file) if spec.sink]
    with duckdb.connect(str(settings.warehouse_path)) as con:
        ensure_schema(con, [spec.raw_table for spec in specs])


def run_dbt(
    settings: Settings, args: list[str], *, capture: bool = False
) -> subprocess.CompletedProcess:
    """Run `dbt <args>` against the warehouse; raise UrbanFlowError naming the command if it fails.

    dbt runs in its own process so that its DuckDB handle is gone when the lock is released.
    """
    env = {
        **os.environ,
        "UF_WAREHOUSE_PATH": str(settings.warehouse_path),
        "DBT_PROFILES_DIR": str(settings.dbt_project_dir),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    command = [dbt_executable(), *args, "--project-dir", str(settings.dbt_project_dir)]
    with warehouse_lock(settings.warehouse_path):
        declare_raw_tables(settings)
        result = subprocess.run(
            command, env=env, cwd=settings.dbt_project_dir, capture_output=capture, text=True
        )
    if result.returncode != 0:
        tail = (result.stdout or "")[-3000:] if capture else ""
        raise UrbanFlowError(
            f"`dbt {' '.join(args)}` failed (exit {result.returncode}){tail and ':'}\n{tail}"
        )
    return result
