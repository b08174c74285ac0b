"""Full vs incremental `dbt build` on a warehouse with millions of raw events.

    .venv/bin/python bench/dbt_incremental.py --events 5000000 --new 10000

Fills raw.stats_sdmx_observation_v1 of a scratch warehouse directly in DuckDB (the sink is
benchmarked elsewhere) with contract-shaped observations for the programme cities, times a full
`dbt build`, appends `--new` events at the next offsets and times the incremental build. Target
(Theme marts issue): incremental <= 15 % of full.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import duckdb

from connectors.settings import Settings
from connectors.sink.loader import ensure_schema
from connectors.transform import run_dbt

SERIES = ["EN_LND_SLUM", "SH_H2O_SAFE", "SH_SAN_SAFE", "EG_ELC_ACCS"]


def append_events(warehouse: Path, first_offset: int, count: int) -> None:
    """Observation events whose (city, series, sex, year) grain repeats: revisions, as in life."""
    with duckdb.connect(str(warehouse)) as con:
        ensure_schema(con, ["stats_sdmx_observation_v1"])
        con.execute(
            f"""
            insert into raw.stats_sdmx_observation_v1
            with cities as (
                select city_code, country_iso3, row_number() over () - 1 as n
                from read_csv('dbt_project/seeds/ref_cities.csv')
            ),
            numbered as (
                select i, i % (select count(*) from cities) as city_n,
                       {SERIES}[1 + (i // 44) % 4] as series,
                       ['_T', 'F', 'M'][1 + (i // 176) % 3] as sex,
                       1990 + (i // 528) % 34 as year
                from range({first_offset}, {first_offset + count}) r(i)
            )
            select
                'bench-' || i, 'urn:nso:bench', 'org.urbanflow.stats.observation.v1',
                c.city_code, timestamptz '2026-01-01' + to_seconds(i), '1.0',
                'https://urbanflow.org/contracts/org.urbanflow.stats.observation.v1.json',
                json_object(
                    'dataflow', 'BENCH:DF_CITY_SDG(1.0)',
                    'series_key', concat_ws('.', 'A', c.country_iso3, c.city_code, series, sex),
                    'dimensions', json_object('FREQ', 'A', 'REF_AREA', c.country_iso3,
                                              'CITY', c.city_code, 'SERIES', series, 'SEX', sex),
                    'attributes', json_object('UNIT_MEASURE', 'PT', 'UNIT_MULT', '0',
                                              'OBS_STATUS', 'A'),
                    'time_period', year::varchar,
                    'value', round((i * 7.31) % 100, 1)
                ),
                series, 'stats.sdmx.observation.v1', (i % 3)::integer, i,
                timestamptz '2026-01-01' + to_seconds(i), now()
            from numbered join cities c on c.n = numbered.city_n
            """
        )


def timed_build(settings: Settings, *extra: str) -> float:
    started = time.monotonic()
    run_dbt(settings, ["build", "--quiet", *extra], capture=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--new", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="uf-dbt-bench-") as tmp:
        settings = dataclasses.replace(
            Settings.from_env(), warehouse_path=Path(tmp) / "warehouse.duckdb"
        )
        print(f"loading {args.events:,} raw events ...", flush=True)
        append_events(settings.warehouse_path, 0, args.events)
        full = timed_build(settings, "--full-refresh")
        print(f"full build       : {full:6.1f} s", flush=True)
        append_events(settings.warehouse_path, args.events, args.new)
        incremental = timed_build(settings)
        print(f"incremental build: {incremental:6.1f} s after {args.new:,} new events")
        ratio = incremental / full
        verdict = "met" if ratio <= 0.15 else "NOT met"
        print(f"incremental/full : {ratio:.0%} (target <= 15%: {verdict})")


if __name__ == "__main__":
    main()
