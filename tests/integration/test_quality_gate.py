"""Write-audit-publish end to end: real dbt build on raw rows, real DuckDB, real Great Expectations.

No broker needed: raw rows are inserted the way the sink writes them, then `dbt build` runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from connectors.quality import (
    RESULTS_TABLE,
    QualityGateError,
    gate_paths,
    handover_path,
    run_gate,
    write_handover,
)
from connectors.settings import Settings
from connectors.sink.loader import ensure_schema
from connectors.transform import run_dbt
from connectors.warehouse import warehouse_lock

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).with_name("urbanflow"))
RAW_TABLE = "stats_sdmx_observation_v1"
CITIES = ("KEMBA", "BDDAC", "ETADD")
YEARS = (2020, 2021, 2022)


def _observation(city: str, series: str, sex: str, year: int, value: float) -> dict:
    country = {"KEMBA": "KEN", "BDDAC": "BGD", "ETADD": "ETH"}[city]
    series_key = f"A.{country}.{city}.{series}.{sex}"
    return {
        "dataflow": "TEST:DF_CITY_SDG(1.0)",
        "series_key": series_key,
        "dimensions": {
            "FREQ": "A",
            "REF_AREA": country,
            "CITY": city,
            "SERIES": series,
            "SEX": sex,
        },
        "attributes": {"UNIT_MEASURE": "PT", "UNIT_MULT": "0", "OBS_STATUS": "A"},
        "time_period": str(year),
        "value": value,
    }


def _observations(cities: tuple[str, ...]) -> list[dict]:
    """Slum share by sex (total between female and male) and safe water totals."""
    rows = []
    for n, (city, year) in enumerate((c, y) for c in cities for y in YEARS):
        total = 30.0 + n
        rows += [
            _observation(city, "EN_LND_SLUM", "_T", year, total),
            _observation(city, "EN_LND_SLUM", "F", year, total + 1.2),
            _observation(city, "EN_LND_SLUM", "M", year, total - 1.1),
            _observation(city, "SH_H2O_SAFE", "_T", year, 60.0 + n),
        ]
    return rows


def _build_warehouse(path: Path, cities: tuple[str, ...]) -> None:
    now = datetime.now(UTC)
    with duckdb.connect(str(path)) as con:
        ensure_schema(con, [RAW_TABLE])
        con.executemany(
            f"insert into raw.{RAW_TABLE} values "
            "(?, ?, ?, ?, ?, '1.0', ?, ?, ?, 'stats.sdmx.observation.v1', 0, ?, ?, ?)",
            [
                (
                    f"obs-{offset}",
                    "urn:nso:test",
                    "org.urbanflow.stats.observation.v1",
                    data["dimensions"]["CITY"],
                    now,
                    "https://urbanflow.org/contracts/org.urbanflow.stats.observation.v1.json",
                    json.dumps(data),
                    data["series_key"],
                    offset,
                    now,
                    now,
                )
                for offset, data in enumerate(_observations(cities))
            ],
        )
    settings = dataclasses.replace(Settings.from_env(), warehouse_path=path, var_dir=path.parent)
    run_dbt(settings, ["build"], capture=True)


@pytest.fixture(scope="module")
def built_warehouses(tmp_path_factory) -> dict[str, Path]:
    """Two dbt-built warehouses (3 cities, 2 cities), built once and copied by each test."""
    base = tmp_path_factory.mktemp("warehouses")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_TARGET_PATH", str(base / "dbt_target"))
        mp.setenv("DBT_LOG_PATH", str(base / "dbt_logs"))
        built = {}
        for name, cities in (("full", CITIES), ("small", CITIES[:2])):
            (base / name).mkdir()
            built[name] = base / name / "warehouse.duckdb"
            _build_warehouse(built[name], cities)
    return built


@pytest.fixture
def gate_settings(tmp_path, built_warehouses, monkeypatch) -> Settings:
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouses["full"], warehouse)
    return dataclasses.replace(Settings.from_env(), var_dir=tmp_path, warehouse_path=warehouse)


def _count(path: Path, sql: str) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(args: list[str], settings: Settings) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "UF_VAR_DIR": str(settings.var_dir),
        "UF_WAREHOUSE_PATH": str(settings.warehouse_path),
        "GX_ANALYTICS_ENABLED": "false",
    }
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True)


def test_good_build_publishes_the_warehouse_marts_with_every_expectation_passing(gate_settings):
    report = run_gate(gate_settings, publish=True)

    serving = gate_paths(gate_settings)["serving"]
    mart = "select count(*) from marts.fct_city_indicator"
    assert report.outcome == "published"
    assert report.statistics["evaluated_expectations"] >= 50
    assert (
        report.statistics["successful_expectations"] == report.statistics["evaluated_expectations"]
    )
    assert _count(serving, mart) == _count(gate_settings.warehouse_path, mart) == 36
    assert _count(serving, "select count(*) from seeds.ref_cities") > 0
    assert _count(serving, "select count(*) from ops.quality_results where success") == len(
        report.results
    )
    assert _count(
        gate_settings.warehouse_path,
        f"select count(*) from {RESULTS_TABLE} where outcome = 'published' and success",
    ) == len(report.results)
    assert report.data_docs == gate_settings.var_dir / "quality" / "data_docs" / "index.html"
    assert report.data_docs.is_file()
    assert list(gate_paths(gate_settings)["candidates"].glob("*.duckdb")) == []


def test_a_build_hands_its_candidate_to_its_gate_which_then_needs_no_lock(gate_settings):
    """The build's snapshot (taken under its lock) is what the gate of its run validates and
    publishes: the same expectations as a gate that copies for itself, and no warehouse lock
    wanted, so a later build holding it does not delay the publish."""
    handover = handover_path(gate_settings, "asset_triggered__2026-12-01T22:57:05+00:00_x")
    with warehouse_lock(gate_settings.warehouse_path):
        write_handover(gate_settings, handover)
    assert handover.is_file() and not list(handover.parent.glob("*.partial"))
    own_copy = run_gate(gate_settings, publish=False)
    serving = gate_paths(gate_settings)["serving"]
    # the next run's build changes the warehouse after the snapshot and holds the lock until
    # this gate has published (then the gate records its results in the warehouse)
    with duckdb.connect(str(gate_settings.warehouse_path)) as con:
        con.execute("delete from marts.fct_city_indicator where city_code = 'ETADD'")
    locked, published_under_lock = threading.Event(), threading.Event()

    def rival_build() -> None:
        with warehouse_lock(gate_settings.warehouse_path):
            locked.set()
            deadline = time.monotonic() + 300  # generous: released as soon as serving appears
            while not serving.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            if serving.exists():
                published_under_lock.set()

    rival = threading.Thread(target=rival_build)
    rival.start()
    assert locked.wait(60)
    handed = run_gate(gate_settings, publish=True, handover=handover)
    rival.join()

    assert published_under_lock.is_set()
    assert handed.outcome == "published"
    assert handed.statistics == own_copy.statistics
    assert sorted((r.batch, r.expectation_type, r.kwargs) for r in handed.results) == sorted(
        (r.batch, r.expectation_type, r.kwargs) for r in own_copy.results
    )
    assert _count(serving, "select count(*) from marts.fct_city_indicator") == 36  # the snapshot
    schemas = "select count(*) from duckdb_schemas() where schema_name like '\\_gate%' escape '\\'"
    assert _count(serving, schemas) == 0
    assert not handover.exists()  # claimed once; a second gate would copy for itself


def test_raw_suite_runs_on_every_raw_topic_table(gate_settings):
    with duckdb.connect(str(gate_settings.warehouse_path)) as con:
        ensure_schema(con, ["partner_iati_activity_v1"])
        con.execute(f"insert into raw.partner_iati_activity_v1 select * from raw.{RAW_TABLE}")

    report = run_gate(gate_settings, publish=False)

    raw_batches = {row.batch for row in report.results if row.suite == "raw"}
    assert raw_batches == {"raw.partner_iati_activity_v1", f"raw.{RAW_TABLE}"}
    assert report.success


def test_gate_command_validates_without_publishing(gate_settings):
    result = _cli(["gate"], gate_settings)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "checked:" in result.stdout
    assert f"data docs: {gate_settings.var_dir / 'quality' / 'data_docs' / 'index.html'}" in (
        result.stdout.replace("\n", "")
    )
    assert not gate_paths(gate_settings)["serving"].exists()


def _corrupt_marts(warehouse: Path) -> None:
    """A percentage of 140, a duplicated key row and a negative city population."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update marts.fct_city_indicator set value = 140 "
            "where city_code = 'KEMBA' and series_code = 'SH_H2O_SAFE' and period = '2021'"
        )
        # the dbt contract's primary key would refuse the duplicate: drop it the way a
        # model without a contract would
        con.execute(
            "create or replace table marts.fct_city_indicator as "
            "select * from marts.fct_city_indicator union all "
            "(select * from marts.fct_city_indicator where city_code = 'ETADD' limit 1)"
        )
        con.execute("update seeds.ref_cities set population = -5 where city_code = 'KEMBA'")


def test_corrupted_marts_block_publishing_name_the_failures_and_keep_serving(gate_settings):
    run_gate(gate_settings, publish=True)
    serving = gate_paths(gate_settings)["serving"]
    before = _sha256(serving)
    _corrupt_marts(gate_settings.warehouse_path)

    result = _cli(["publish"], gate_settings)

    assert result.returncode == 1
    error = " ".join(result.stderr.split())
    assert "quality gate blocked publishing: 4 of" in error
    for failure in (
        "table marts.fct_city_indicator, column value: expect_column_values_to_be_between "
        "(observed 1 of 37 rows unexpected, e.g. [140.0])",
        "table marts.fct_city_indicator, column city_indicator_key: "
        "expect_column_values_to_be_unique",
        "table marts.fct_city_indicator__totals, column mart_rows=model_rows: "
        "expect_column_pair_values_to_be_equal",
        "table seeds.ref_cities, column population: expect_column_values_to_be_between "
        "(observed 1 of 44 rows unexpected, e.g. [-5])",
    ):
        assert failure in error
    assert _sha256(serving) == before
    failed = list(gate_paths(gate_settings)["failed"].glob("serving-*.duckdb"))
    assert len(failed) == 1
    assert _count(failed[0], "select count(*) from ops.quality_results where not success") == 4
    assert (
        _count(
            gate_settings.warehouse_path,
            f"select count(distinct run_id) from {RESULTS_TABLE} where outcome = 'blocked'",
        )
        == 1
    )


def test_corrupted_candidate_raises_quality_gate_error_with_statistics(gate_settings):
    _corrupt_marts(gate_settings.warehouse_path)

    with pytest.raises(QualityGateError) as caught:
        run_gate(gate_settings, publish=True)

    stats = caught.value.report.statistics
    assert stats["evaluated_expectations"] - stats["successful_expectations"] == 4
    assert not gate_paths(gate_settings)["serving"].exists()


READER = """
import sys, time, duckdb
from pathlib import Path
path, stop, give_up = sys.argv[1], Path(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while not stop.exists() and time.monotonic() < give_up:
    try:
        with duckdb.connect(path, read_only=True) as con:
            n = con.execute("select count(*) from marts.fct_city_indicator").fetchone()[0]
        print(n, flush=True)
    except Exception as exc:
        print("ERROR", type(exc).__name__, exc, flush=True)
"""
FULL_ROWS, SMALL_ROWS = 36, 24  # fct_city_indicator rows of the 3-city and 2-city warehouses
WAIT_S = 300  # only a safety net: nothing below depends on how fast the machine is


class Reader:
    """A process that reads serving.duckdb in a loop until told to stop, and what it saw."""

    def __init__(self, serving: Path, stop: Path) -> None:
        self.stop = stop
        self.seen: list[str] = []
        self.changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-c", READER, str(serving), str(stop), str(2 * WAIT_S)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.thread = threading.Thread(target=self._collect, daemon=True)
        self.thread.start()

    def _collect(self) -> None:
        for line in self.process.stdout:
            with self.changed:
                self.seen.append(line.strip())
                self.changed.notify_all()

    def wait_for_a_read_of(self, rows: int) -> None:
        """Block until a read that started after this call returned `rows`."""
        with self.changed:
            start = len(self.seen)
            found = self.changed.wait_for(
                lambda: str(rows) in self.seen[start + 1 :] or self.process.poll() is not None,
                timeout=WAIT_S,
            )
        assert found and self.process.poll() is None, f"reader never saw {rows}: {self.seen[-5:]}"

    def finish(self) -> list[str]:
        self.stop.touch()
        self.process.wait(timeout=WAIT_S)
        self.thread.join(timeout=WAIT_S)
        return self.seen


def test_readers_see_only_whole_serving_databases_during_publishes(gate_settings, built_warehouses):
    """Four publishes alternate a 3-city and a 2-city candidate while another process reads
    serving.duckdb without pause. Each publish waits until the reader has seen its result, so
    every read overlaps a publish or its aftermath, however fast or slow the machine is."""
    run_gate(gate_settings, publish=True)
    serving = gate_paths(gate_settings)["serving"]
    small_warehouse = gate_settings.var_dir / "small" / "warehouse.duckdb"
    small_warehouse.parent.mkdir()
    shutil.copy(built_warehouses["small"], small_warehouse)
    small = dataclasses.replace(gate_settings, warehouse_path=small_warehouse)
    reader = Reader(serving, gate_settings.var_dir / "stop-reading")
    try:
        reader.wait_for_a_read_of(FULL_ROWS)
        for candidate, rows in [(small, SMALL_ROWS), (gate_settings, FULL_ROWS)] * 2:
            run_gate(candidate, publish=True)
            reader.wait_for_a_read_of(rows)
    finally:
        seen = reader.finish()

    assert reader.process.returncode == 0
    assert [line for line in seen if line.startswith("ERROR")] == []
    assert set(seen) == {str(FULL_ROWS), str(SMALL_ROWS)}
    # once replaced, a file never flips back: the reads change value exactly at each publish
    versions = [line for n, line in enumerate(seen) if n == 0 or line != seen[n - 1]]
    assert versions == [str(rows) for rows in (FULL_ROWS, SMALL_ROWS) * 2 + (FULL_ROWS,)]
