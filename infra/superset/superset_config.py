"""Superset configuration for the local, loopback deployment (infra/superset/supersetctl).

Everything comes from the environment that supersetctl exports, so the server and the CLI agree:
`UF_SUPERSET_STATE` (metadata DB and state folder), `SUPERSET_SECRET_KEY`.

Why the non-defaults below:
- Analytics engines must never pool connections. DuckDB caches one database instance per path in a
  process; a pooled connection keeps the instance of the *old* `serving.duckdb` open after a publish
  (`os.replace` of a new file), so charts would keep showing old figures. Superset 6.1 builds a new
  engine per query with `NullPool` (`Database._get_sqla_engine(nullpool=True)`); the connection
  mutator below enforces it for DuckDB whatever a caller or the database's `extra` asks, and forces
  `read_only` too, so a reader can never take the writer's lock (tests/integration/test_superset.py
  proves that a publish while Superset runs changes what a chart returns).
- No data cache: a cached chart result would outlive a publish. DuckDB over the serving file answers
  in milliseconds; production (Redis) must invalidate caches on publish instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy.pool import NullPool

_STATE = Path(os.environ.get("UF_SUPERSET_STATE") or Path.cwd() / "var" / "superset")

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
SQLALCHEMY_DATABASE_URI = f"sqlite:///{_STATE / 'superset.db'}?check_same_thread=false"
DATA_DIR = str(_STATE)

# Caches: metadata and chart data not cached (see the module docstring); explore/filter state in
# the metadata database (Superset's own default when no cache server is configured).
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}

# Local and offline: no examples, no telemetry, no outside map tiles.
SUPERSET_LOAD_EXAMPLES = False
SCARF_ANALYTICS = False
TALISMAN_ENABLED = False
CONTENT_SECURITY_POLICY_WARNING = False

FEATURE_FLAGS = {
    "DASHBOARD_RBAC": True,
    "ENABLE_TEMPLATE_PROCESSING": False,
    "EMBEDDED_SUPERSET": False,
}

# Anonymous users get nothing (the login page).
PUBLIC_ROLE_LIKE = None

# supersetctl sync/export run with WARNING; the server logs INFO to $UF_VAR_DIR/superset/logs.
LOG_LEVEL = os.environ.get("UF_SUPERSET_LOG_LEVEL", "INFO")

ROW_LIMIT = 50_000
SQLLAB_TIMEOUT = 120
SUPERSET_WEBSERVER_TIMEOUT = 120


def _duckdb_reader(
    sqlalchemy_url: Any,
    engine_kwargs: dict[str, Any],
    effective_username: str | None,
    security_manager: Any,
    source: Any,
) -> tuple[Any, dict[str, Any]]:
    """Every DuckDB engine Superset builds: no pool, read-only (see the module docstring)."""
    if sqlalchemy_url.get_backend_name() == "duckdb":
        engine_kwargs["poolclass"] = NullPool
        engine_kwargs.pop("pool_size", None)
        engine_kwargs.pop("max_overflow", None)
        engine_kwargs.setdefault("connect_args", {})["read_only"] = True
    return sqlalchemy_url, engine_kwargs


DB_CONNECTION_MUTATOR = _duckdb_reader
