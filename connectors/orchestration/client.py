"""A small client of Airflow's REST API (`/api/v2`) as the admin user: what `urbanflow demo
--airflow`, the benchmark and the Airflow integration tests need, standard library only (no
Airflow import, so it works against any Airflow the settings point at).

SQLite metadata shared by four processes answers "database is locked" (HTTP 5xx) now and then, so
every call retries a few times; POSTs carry their own ids, so a retried POST whose first attempt
did land comes back as 409 and counts as done.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from connectors.errors import UrbanFlowError
from connectors.settings import OrchestrationSettings

ADMIN_USER = "admin"


class AirflowError(UrbanFlowError):
    """Airflow is not reachable, refused our login, or a call failed; names the URL and the fix."""


def admin_password(settings: OrchestrationSettings) -> str:
    """UF_AIRFLOW_ADMIN_PASSWORD, else the password airflowctl generated into var/airflow/."""
    password = os.environ.get("UF_AIRFLOW_ADMIN_PASSWORD")
    if password:
        return password
    path = settings.airflow_admin_password_file
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    raise AirflowError(
        f"no Airflow admin password: {path} does not exist and UF_AIRFLOW_ADMIN_PASSWORD is not "
        "set; `make up` (infra/airflow/airflowctl start) generates it"
    )


#: Task instances per API page (Airflow's default maximum page size).
TASK_PAGE = 100


class AirflowClient:
    """The admin's REST session; `call` returns the decoded JSON answer."""

    def __init__(self, base: str, password: str, timeout_s: float = 30.0, attempts: int = 5):
        self.base = base.rstrip("/")
        self._password = password
        self.timeout_s = timeout_s
        self.attempts = attempts
        self._token: str | None = None

    @classmethod
    def from_settings(cls, settings: OrchestrationSettings | None = None) -> AirflowClient:
        settings = settings or OrchestrationSettings.from_env()
        return cls(settings.airflow_url, admin_password(settings))

    # --- transport ------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """`/api/v2/monitor/health` (no login); raises AirflowError when nothing answers."""
        try:
            with urllib.request.urlopen(
                f"{self.base}/api/v2/monitor/health", timeout=self.timeout_s
            ) as response:
                return json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise AirflowError(
                f"no Airflow at {self.base} ({exc}); start it with `make up` "
                "(infra/airflow/airflowctl start) or set UF_AIRFLOW_PORT / UF_AIRFLOW_URL"
            ) from None

    def login(self) -> str:
        request = urllib.request.Request(
            f"{self.base}/auth/token",
            data=json.dumps({"username": ADMIN_USER, "password": self._password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                self._token = json.load(response)["access_token"]
        except urllib.error.HTTPError as exc:
            raise AirflowError(
                f"Airflow at {self.base} refused the admin login (HTTP {exc.code}); the password "
                "comes from UF_AIRFLOW_ADMIN_PASSWORD or var/airflow/admin_password"
            ) from None
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            raise AirflowError(f"could not log in to Airflow at {self.base}: {exc}") from None
        return self._token

    def call(self, path: str, body: Any = None, method: str | None = None) -> Any:
        """GET `path` under /api/v2 (POST `body` when given, or `method`); 5xx retried."""
        data = None if body is None else json.dumps(body).encode()
        method = method or ("GET" if body is None else "POST")
        relogged = False
        for attempt in range(self.attempts):
            token = self._token or self.login()
            request = urllib.request.Request(
                f"{self.base}/api/v2/{path}",
                data=data,
                method=method,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return json.load(response)
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and not relogged:  # token expired: log in again, once
                    self._token, relogged = None, True
                    continue
                if exc.code == 409 and method == "POST" and attempt > 0:
                    return {"conflict": True}
                if exc.code < 500 or attempt == self.attempts - 1:
                    detail = exc.read().decode(errors="replace")[:500]
                    raise AirflowError(
                        f"Airflow {method} {self.base}/api/v2/{path} answered {exc.code}: {detail}"
                    ) from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt == self.attempts - 1:
                    raise AirflowError(
                        f"Airflow {method} {self.base}/api/v2/{path} failed: {exc}"
                    ) from None
            time.sleep(2)
        raise AirflowError(f"Airflow {method} {self.base}/api/v2/{path}: no answer")

    # --- what we use ----------------------------------------------------------------------

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.call("dags?limit=1000")["dags"]}

    def unpause(self, dag_id: str) -> None:
        self.call(f"dags/{_q(dag_id)}", {"is_paused": False}, method="PATCH")

    def pause(self, dag_id: str) -> None:
        self.call(f"dags/{_q(dag_id)}", {"is_paused": True}, method="PATCH")

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None) -> None:
        """A manual run with our own id (so a retried POST cannot start two)."""
        self.call(
            f"dags/{_q(dag_id)}/dagRuns",
            {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}},
        )

    def runs(self, dag_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The DAG's runs, newest first (by run_after)."""
        runs = self.call(f"dags/{_q(dag_id)}/dagRuns?limit={limit}&order_by=-run_after")
        return runs["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.call(f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, page by page (the transform DAG has one per dbt node,
        more than the API's page of 100)."""
        path = f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances"
        found: list[dict[str, Any]] = []
        while True:
            page = self.call(f"{path}?limit={TASK_PAGE}&offset={len(found)}")
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page.get("total_entries", 0):
                return found

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        path = f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}"
        return self.call(path).get("state")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id)}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """A task's XCom value (the callables in `tasks` return small JSON-able dicts)."""
        path = (
            f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}"
            f"/xcomEntries/{_q(key)}?deserialize=true"
        )
        value = self.call(path).get("value")
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def asset_events(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first."""
        return self.call(f"assets/events?limit={limit}&order_by=-timestamp")["asset_events"]


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")
