"""The partner push API from tests: `urbanflow api serve` on a free port (`ApiServer`), its
environment and a valid partner-result event. Shared by the API suites and the Airflow suite
(events pushed through the API reach serving.duckdb)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from connectors.api.checks import RESULT_EXAMPLE

CLI = str(Path(sys.executable).with_name("urbanflow"))
WAIT_S = 120.0


def result_event(event_id: str, source: str, **data: Any) -> dict[str, Any]:
    return {
        **RESULT_EXAMPLE,
        "id": event_id,
        "source": source,
        "data": {**RESULT_EXAMPLE["data"], **data},
    }


def api_env(bootstrap: str, folder: Path, topics_file: Path, **settings: str) -> dict[str, str]:
    """Environment of an API under test: its broker, topics file and partners database."""
    return {
        "UF_KAFKA_BOOTSTRAP": bootstrap,
        "UF_TOPICS_FILE": str(topics_file),
        "UF_VAR_DIR": str(folder),
        "UF_WAREHOUSE_PATH": str(folder / "warehouse.duckdb"),
        "UF_PARTNERS_DB": str(folder / "partners.sqlite"),
        **settings,
    }


@dataclass
class ApiServer:
    """`urbanflow api serve` on a free loopback port, logging to a file."""

    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None
    url: str = ""

    def start(self) -> ApiServer:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [CLI, "api", "serve", "--port", str(port)],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/openapi.json", timeout=WAIT_S).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        state = "exited" if self.proc.poll() is not None else f"no answer after {WAIT_S:.0f} s"
        raise AssertionError(
            f"the API at {self.url} did not serve /openapi.json ({state}):\n"
            f"{self.log_path.read_text()}"
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def post(self, key: str | None, json: Any = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(
            f"{self.url}/v1/events", json=json, headers=headers, timeout=WAIT_S, **kwargs
        )
