"""Full vs incremental `dbt build` on a warehouse with millions of raw events.

    .venv/bin/python bench/dbt_incremental.py --events 5000000 --new 10000

Fills raw.stats_sdmx_observation_v1 of a scratch warehouse directly in DuckDB (the sink is
benchmarked elsewhere) with contract-shaped observations for the programme cities, and the sink's
offsets with it; times a full build (`urbanflow refresh --full-refresh`), appends `--new` events at
the next offsets and times the refresh that follows (`urbanflow refresh`: what the new events
feed, incremental models reading only new rows), median of `--rounds` such rounds. Both
exclude unit tests, as production builds do. Target (Theme marts issue): incremental <= 15 % of
full.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from connectors.settings import Settings
from connectors.sink.loader import OFFSETS_TABLE, ensure_schema
from connectors.transform import WAREHOUSE_BUILD, refresh_warehouse, run_dbt

SERIES = ["EN_LND_SLUM", "SH_H2O_SAFE", "SH_SAN_SAFE", "EG_ELC_ACCS"]
SEXES = ["_T", "F", "M"]
#: One code per age group of seeds/ref_age.csv, so every observation has its own mart row.
AGES = ["_T", "Y0T14", "Y15T24", "Y15T64", "Y25T64", "Y_GE15", "Y_GE65"]
#: Monthly periods 1990-01 .. 2026-12.
MONTHS = 37 * 12


def append_events(warehouse: Path, first_offset: int, count: int) -> None:
    """Monthly city observations by series, sex and age: event i describes observation
    i mod (44 cities x 4 series x 3 sexes x 7 ages x 444 months = 1.64M), so 5M events hold each
    observation about three times (the original and its revisions), and new events revise
    observations spread over the whole table, as a statistics office's revision round does."""
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
                select i, g % 44 as city_n,
                       {SERIES}[1 + (g // 44) % 4] as series,
                       {SEXES}[1 + (g // 176) % 3] as sex,
                       {AGES}[1 + (g // 528) % 7] as age,
                       1990 + (g // 3696) % {MONTHS} // 12 as year,
                       1 + (g // 3696) % {MONTHS} % 12 as month
                from (
                    select i, i % (44 * 4 * 3 * 7 * {MONTHS}) as g
                    from range({first_offset}, {first_offset + count}) r(i)
                )
            )
            select
                'bench-' || i, 'urn:nso:bench', 'org.urbanflow.stats.observation.v1',
                c.city_code, timestamptz '2026-01-01' + to_seconds(i), '1.0',
                'https://urbanflow.org/contracts/org.urbanflow.stats.observation.v1.json',
                json_object(
                    'dataflow', 'BENCH:DF_CITY_SDG(1.0)',
                    'series_key',
                    concat_ws('.', 'M', c.country_iso3, c.city_code, series, sex, age),
                    'dimensions', json_object('FREQ', 'M', 'REF_AREA', c.country_iso3,
                                              'CITY', c.city_code, 'SERIES', series, 'SEX', sex,
                                              'AGE', age),
                    'attributes', json_object('UNIT_MEASURE', 'PT', 'UNIT_MULT', '0',
                                              'OBS_STATUS', 'A'),
                    'time_period', printf('%d-%02d', year, month),
                    'value', round((i * 7.31) % 100, 1)
                ),
                series, 'stats.sdmx.observation.v1', (i % 3)::integer, i,
                timestamptz '2026-01-01' + to_seconds(i), now()
            from numbered join cities c on c.n = numbered.city_n
            """
        )
        # what the sink commits with each batch: the next offset per partition
        con.execute(
            f"""
            insert or replace into {OFFSETS_TABLE}
            select kafka_topic, kafka_partition, max(kafka_offset) + 1, now()
            from raw.stats_sdmx_observation_v1
            group by kafka_topic, kafka_partition
            """
        )


def timed_dbt(settings: Settings, args: list[str]) -> float:
    started = time.monotonic()
    run_dbt(settings, args, capture=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--new", type=int, default=10_000)
    parser.add_argument(
        "--rounds", type=int, default=3, help="incremental builds, each after --new events"
    )
    parser.add_argument(
        "--keep", type=Path, help="directory to keep the warehouse in (default: a temporary one)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here (make bench)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="uf-dbt-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        settings = dataclasses.replace(
            Settings.from_env(), warehouse_path=folder / "warehouse.duckdb"
        )
        settings.warehouse_path.unlink(missing_ok=True)
        print(f"loading {args.events:,} raw events ...", flush=True)
        append_events(settings.warehouse_path, 0, args.events)
        full = refresh_warehouse(settings, full_refresh=True, capture=True).seconds
        print(f"full build                  : {full:6.1f} s", flush=True)
        offset, rounds = args.events, []
        for _ in range(args.rounds):
            append_events(settings.warehouse_path, offset, args.new)
            offset += args.new
            refresh = refresh_warehouse(settings, capture=True)
            rounds.append(refresh.seconds)
        incremental = statistics.median(rounds)
        print(
            f"incremental build           : {incremental:6.1f} s after {args.new:,} new events "
            f"(median of {', '.join(f'{r:.1f}' for r in rounds)}; {refresh.plan.reason}: "
            f"dbt build --select {' '.join(refresh.plan.selectors or [])})"
        )
        append_events(settings.warehouse_path, offset, args.new)
        whole = timed_dbt(settings, [*WAREHOUSE_BUILD, "--quiet"])
        print(
            f"  for reference, whole project: {whole:6.1f} s after {args.new:,} more "
            "(every model and test; incremental models still read only new rows)"
        )
        ratio = incremental / full
        verdict = "met" if ratio <= 0.15 else "NOT met"
        print(f"incremental/full            : {ratio:.0%} (target <= 15%: {verdict})")
        if args.json:
            figures = {
                "events": args.events,
                "new": args.new,
                "full_s": round(full, 2),
                "refresh_s": round(incremental, 2),
                "rounds_s": [round(r, 2) for r in rounds],
                "whole_project_s": round(whole, 2),
                "ratio": ratio,  # unrounded: verdicts read it
            }
            args.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
