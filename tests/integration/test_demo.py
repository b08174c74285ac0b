"""`urbanflow demo` end to end on the real broker: everything lands, is published, and a re-run
sends nothing new."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import duckdb
import pytest

from connectors.samples.sdmx_feeds import INDICATORS, YEARS, load_cities, series_values
from connectors.settings import SOURCE_TREE as REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

URBANFLOW = REPO_ROOT / ".venv" / "bin" / "urbanflow"
SOURCES = (
    "sdmx",
    "worldbank",
    "unsdg",
    "iati",
    "gdacs",
    "hxl displacement-cities",
    "utilities kpi",
    "utilities stream",
    "partner results",
)
ROW = re.compile(r"^(?P<label>[a-z][a-z -]+?)\s{2,}(?P<sent>[\d,]+)\s+(?P<rejected>[\d,]+)\b")


def _sample_grains() -> int:
    """City x series x sex x year in the SDMX sample feeds: the grain dbt deduplicates to."""
    return sum(
        len(series_values(city, indicator)) * len(YEARS)
        for city in load_cities()
        for indicator in INDICATORS
    )


def _run_demo(env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(URBANFLOW), "demo"], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


def _sent(summary: str) -> dict[str, tuple[int, int]]:
    table = summary.split("summary", 1)[1]
    rows = {}
    for line in table.splitlines():
        if match := ROW.match(line.strip()):
            rows[match["label"]] = (
                int(match["sent"].replace(",", "")),
                int(match["rejected"].replace(",", "")),
            )
    return rows


def _mart_rows(serving: Path) -> tuple[int, int]:
    with duckdb.connect(str(serving), read_only=True) as con:
        rows, cities = con.execute(
            "select count(*), count(distinct city_code) from marts.fct_city_indicator"
        ).fetchone()
    return rows, cities


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    var = tmp_path / "var"
    return {
        **os.environ,
        "UF_KAFKA_BOOTSTRAP": os.environ.get("UF_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
        "UF_VAR_DIR": str(var),
        "UF_WAREHOUSE_PATH": str(var / "warehouse.duckdb"),
        "UF_STATE_DIR": str(tmp_path / "state"),
        "UF_SINK_GROUP": f"test-demo-{uuid.uuid4().hex[:8]}",
        "COLUMNS": "200",
    }


def test_demo_publishes_the_sample_world_and_a_rerun_sends_nothing(
    demo_env: dict[str, str],
) -> None:
    serving = Path(demo_env["UF_VAR_DIR"]) / "serving.duckdb"

    first = _run_demo(demo_env)
    sent = _sent(first)

    assert set(sent) == set(SOURCES), first
    assert sent["sdmx"] == (_sample_grains(), 0)  # one event per observation
    assert sent["worldbank"] == (136, 0)
    assert sent["unsdg"] == (153, 0)
    assert sent["iati"] == (880, 0)  # activities, transactions (with co-financing), results
    assert sent["gdacs"] == (204, 0)  # every episode of sample_data/hazards, none rejected
    assert sent["hxl displacement-cities"] == (448, 0)
    assert sent["utilities kpi"] == (1056, 0)
    # the stream runs for 3 s of wall time: how much it sends depends on the machine, not whether
    assert sent["utilities stream"][0] > 0
    assert sent["utilities stream"][1] == 0
    assert sent["partner results"] == (224, 0)
    assert "quality gate passed" in first
    assert f"serving   : {serving}" in first
    assert "data docs :" in first and "urbanflow api serve" in first
    rows, cities = _mart_rows(serving)
    # Other runs may have put more SDMX events on the shared topic; dbt keeps one row per grain.
    assert rows >= _sample_grains() - 17  # the sample's 17 reported-missing values may be dropped
    assert cities >= 44

    second = _run_demo(demo_env)

    assert {label: counts[0] for label, counts in _sent(second).items()} == dict.fromkeys(
        SOURCES, 0
    )
    assert "utilities stream: skipped" in second
    assert _mart_rows(serving) == (rows, cities)
