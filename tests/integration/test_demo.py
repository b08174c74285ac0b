"""`urbanflow demo` end to end on the real broker: everything lands, is published, and a re-run
sends nothing new."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from demo_harness import DemoRun, run_demo

from connectors.samples.sdmx_feeds import INDICATORS, YEARS, load_cities, series_values

pytestmark = [pytest.mark.integration, pytest.mark.slow]

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


def test_demo_publishes_the_sample_world_and_a_rerun_sends_nothing(
    sample_world_demo: DemoRun,
) -> None:
    serving, first = sample_world_demo.serving, sample_world_demo.stdout
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

    second = run_demo(sample_world_demo.env)

    assert {label: counts[0] for label, counts in _sent(second).items()} == dict.fromkeys(
        SOURCES, 0
    )
    assert "utilities stream: skipped" in second
    assert _mart_rows(serving) == (rows, cities)
