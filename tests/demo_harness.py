"""Running `urbanflow demo` from tests: the session's one sample-world run (conftest's
`sample_world_demo`) and test_demo's re-run share these."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class DemoRun:
    """One `urbanflow demo` on the embedded sample world: its environment and what it printed."""

    env: dict[str, str]
    stdout: str

    @property
    def serving(self) -> Path:
        return Path(self.env["UF_VAR_DIR"]) / "serving.duckdb"


def demo_env(base: Path, kafka_bootstrap: str) -> dict[str, str]:
    """A demo of its own under `base`: var dir, warehouse, state and consumer group."""
    return {
        **os.environ,
        "UF_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "UF_VAR_DIR": str(base / "var"),
        "UF_WAREHOUSE_PATH": str(base / "var" / "warehouse.duckdb"),
        "UF_STATE_DIR": str(base / "state"),
        "UF_SINK_GROUP": f"test-demo-{uuid.uuid4().hex[:8]}",
        "COLUMNS": "200",
    }


def run_demo(env: dict[str, str]) -> str:
    """`urbanflow demo` in `env`; its summary (stdout), or the test fails with its output."""
    result = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "urbanflow"), "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout
