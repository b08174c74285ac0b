"""All configuration in one place: environment variables with embedded local defaults.

Every variable is documented in `.env.example` and the README's configuration table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from connectors.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with `Settings.from_env()` so tests can override the environment."""

    kafka_bootstrap: str
    var_dir: Path
    warehouse_path: Path
    state_dir: Path
    topics_file: Path
    sink_group: str
    sink_instance_id: str | None
    sink_batch_max_records: int
    sink_batch_max_ms: int
    max_event_bytes: int
    dbt_project_dir: Path

    @classmethod
    def from_env(cls) -> Settings:
        var_dir = Path(os.environ.get("UF_VAR_DIR") or REPO_ROOT / "var").resolve()
        port = _int("UF_KAFKA_PORT", 19092)
        return cls(
            kafka_bootstrap=os.environ.get("UF_KAFKA_BOOTSTRAP") or f"127.0.0.1:{port}",
            var_dir=var_dir,
            warehouse_path=Path(
                os.environ.get("UF_WAREHOUSE_PATH") or var_dir / "warehouse.duckdb"
            ).resolve(),
            state_dir=Path(os.environ.get("UF_STATE_DIR") or var_dir / "state").resolve(),
            topics_file=Path(
                os.environ.get("UF_TOPICS_FILE") or REPO_ROOT / "infra" / "kafka" / "topics.yml"
            ),
            sink_group=os.environ.get("UF_SINK_GROUP") or "urbanflow-sink",
            sink_instance_id=os.environ.get("UF_SINK_INSTANCE_ID") or None,
            sink_batch_max_records=_int("UF_SINK_BATCH_MAX_RECORDS", 20_000),
            sink_batch_max_ms=_int("UF_SINK_BATCH_MAX_MS", 1_000),
            max_event_bytes=_int("UF_MAX_EVENT_BYTES", 256 * 1024),
            dbt_project_dir=Path(
                os.environ.get("UF_DBT_PROJECT_DIR") or REPO_ROOT / "dbt_project"
            ).resolve(),
        )
