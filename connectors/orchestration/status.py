"""Airflow's side of `urbanflow status`: component health and the last run of each DAG, read
from the api-server's REST API (standard library only; no Airflow import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.orchestration.client import AirflowClient, AirflowError, admin_password
from connectors.settings import OrchestrationSettings

COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


@dataclass
class AirflowStatus:
    reachable: bool
    detail: str
    components: dict[str, str] = field(default_factory=dict)  # component -> healthy/unhealthy
    last_runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # dag_id -> last run

    @property
    def healthy(self) -> bool:
        return self.reachable and all(self.components.get(name) == "healthy" for name in COMPONENTS)


def airflow_status(
    settings: OrchestrationSettings | None = None, timeout_s: float = 5.0
) -> AirflowStatus:
    """Health of scheduler, triggerer and dag-processor (no login needed) and, when the admin
    password is known (UF_AIRFLOW_ADMIN_PASSWORD or var/airflow/admin_password), the last run of
    every DAG. Never raises for a stopped Airflow: `reachable` says so."""
    settings = settings or OrchestrationSettings.from_env()
    base = settings.airflow_url.rstrip("/")
    try:
        health = AirflowClient(base, "", timeout_s=timeout_s, attempts=1).health()
    except AirflowError as exc:
        return AirflowStatus(False, str(exc))
    status = AirflowStatus(
        True,
        f"Airflow at {base}",
        {name: (health.get(name) or {}).get("status", "unknown") for name in COMPONENTS},
    )
    try:
        password = admin_password(settings)
    except AirflowError:
        status.detail += "; last runs need the admin password (UF_AIRFLOW_ADMIN_PASSWORD)"
        return status
    try:
        client = AirflowClient(base, password, timeout_s=timeout_s, attempts=1)
        runs = client.call("dags/~/dagRuns?order_by=-start_date&limit=200")["dag_runs"]
    except (AirflowError, KeyError) as exc:
        status.detail += f"; could not read DAG runs: {exc}"
        return status
    for run in runs:  # newest first: keep the first seen per DAG
        status.last_runs.setdefault(
            run["dag_id"],
            {k: run.get(k) for k in ("dag_run_id", "run_type", "state", "start_date", "end_date")},
        )
    return status
