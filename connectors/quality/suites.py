"""The quality gate's suites, read from the versioned quality/expectations.yml.

Suites live in one YAML file rather than in GE's own store so that they are reviewed like code,
apply generically (one raw batch per raw.<topic> table) and need no GE project directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from connectors.errors import ConfigError
from connectors.settings import Settings

READS = ("warehouse", "candidate")


@dataclass(frozen=True)
class Expectation:
    """One GE expectation: its snake_case type and keyword arguments (variables resolved)."""

    type: str
    kwargs: dict[str, Any]

    @property
    def column(self) -> str | None:
        """The column(s) it checks, as shown in results: `a`, `a+b` (compound) or `a=b` (pair)."""
        if "column" in self.kwargs:
            return self.kwargs["column"]
        if "column_list" in self.kwargs:
            return "+".join(self.kwargs["column_list"])
        if "column_A" in self.kwargs:
            return f"{self.kwargs['column_A']}={self.kwargs['column_B']}"
        return None


@dataclass(frozen=True)
class Batch:
    """Rows to validate (a SQL query) and the expectations they must meet."""

    suite: str
    name: str
    query: str
    reads: str
    expectations: list[Expectation] = field(default_factory=list)

    @property
    def suite_name(self) -> str:
        return f"{self.suite}.{self.name}"


def load_vars(spec: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """The file's `vars`, each overridable by UF_QUALITY_<NAME>, plus the computed current_year."""
    env = os.environ if env is None else env
    resolved: dict[str, Any] = {"current_year": datetime.now(UTC).year}
    for name, default in (spec.get("vars") or {}).items():
        raw = env.get(f"UF_QUALITY_{name.upper()}")
        if raw in (None, ""):
            resolved[name] = default
            continue
        try:
            resolved[name] = type(default)(raw)
        except ValueError:
            raise ConfigError(
                f"UF_QUALITY_{name.upper()}={raw!r} is not a {type(default).__name__}"
            ) from None
    return resolved


def _resolve(value: Any, variables: dict[str, Any], where: str) -> Any:
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        name = value[2:-1]
        if name not in variables:
            raise ConfigError(f"{where}: unknown variable {value} (known: {sorted(variables)})")
        return variables[name]
    return value


def load_batches(
    raw_tables: list[str],
    path: Path | None = None,
    env: dict[str, str] | None = None,
) -> list[Batch]:
    """Every batch of every suite; `per_raw_table` batches repeat for each of `raw_tables`.

    `path` defaults to the UF_EXPECTATIONS_FILE setting.
    """
    path = path or Settings.from_env().expectations_file
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read quality suites {path}: {exc}") from None
    variables = load_vars(spec, env)
    batches = []
    for suite, suite_spec in spec["suites"].items():
        for item in suite_spec["batches"]:
            where = f"{path}: suite {suite}, batch {item.get('name')}"
            reads = item.get("reads", "candidate")
            if reads not in READS:
                raise ConfigError(f"{where}: reads={reads!r} must be one of {READS}")
            expectations = [
                Expectation(
                    type=exp["type"],
                    kwargs={
                        k: _resolve(v, variables, where) for k, v in exp.items() if k != "type"
                    },
                )
                for exp in item["expectations"]
            ]
            tables = raw_tables if item.get("per_raw_table") else [None]
            for table in tables:
                name = item["name"].format(table=table)
                query = item.get("query") or f"select * from {name}"
                batches.append(
                    Batch(suite, name, query.format(table=table), reads, list(expectations))
                )
    return batches
