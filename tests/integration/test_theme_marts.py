"""Fixture files -> real Kafka -> sink -> `dbt build` -> theme marts, checked against figures
computed here straight from the fixture files.

The real topics hold whatever earlier runs sent, so the IATI and HXL fixtures are re-published under
a partner of this test's own and the assertions filter on it; marts that aggregate across partners
(strategic progress, utility KPIs) are checked on figures every copy of the fixtures agrees on.
"""

from __future__ import annotations

import csv
import uuid
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import apply_topics, load_topics
from connectors.sdk import load_config, run_source
from connectors.sdk.state import StateStore
from connectors.settings import Settings
from connectors.sink import Sink
from connectors.sources import iati
from connectors.sources.registry import get_source
from connectors.transform import refresh_warehouse, run_dbt

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds"
FIXTURE_PUBLISHER = "GB-CHC-1180001"
HXL_FILE = "dtm_som_idp_sites_2024-03.csv"
#: Tables rebuilt from `now()` (freshness, last-24h counts) differ between any two builds.
TIME_DEPENDENT = {"fct_source_health"}  # counts dead letters of the last 24 h at build time
BUILD_TIME_COLUMNS = {"staged_at", "measured_at", "freshness_hours"}


def _sector_themes() -> dict[str, str]:
    with (SEEDS / "ref_iati_sector_themes.csv").open(encoding="utf-8") as f:
        return {row["sector_code"]: row["theme_code"] for row in csv.DictReader(f)}


def _dac_shares(parent: ET.Element) -> list[tuple[str, float]]:
    """(sector code, share) of the vocabulary-1 sectors of an activity or transaction."""
    sectors = [s for s in parent.findall("sector") if s.get("vocabulary", "1") == "1"]
    return [
        (
            s.get("code"),
            float(s.get("percentage")) / 100 if s.get("percentage") else 1 / len(sectors),
        )
        for s in sectors
    ]


def expected_flows(xml: Path, type_code: str) -> dict[tuple[str, str], float]:
    """Sum of one transaction type per (theme, currency), split by sector share, from the XML."""
    themes = _sector_themes()
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for activity in ET.parse(xml).getroot().iter("iati-activity"):
        for transaction in activity.findall("transaction"):
            if transaction.find("transaction-type").get("code") != type_code:
                continue
            value = transaction.find("value")
            currency = value.get("currency") or activity.get("default-currency")
            shares = _dac_shares(transaction) or _dac_shares(activity) or [(None, 1.0)]
            for code, share in shares:
                totals[(themes.get(code, "unassigned"), currency)] += float(value.text) * share
    return {key: round(total, 2) for key, total in totals.items()}


def expected_results_by_sex(xml: Path, sex: str) -> dict[str, float]:
    """Sum of the count (measure 1) actuals for one sex per activity, from the XML."""
    totals: dict[str, float] = defaultdict(float)
    for activity in ET.parse(xml).getroot().iter("iati-activity"):
        identifier = activity.findtext("iati-identifier").strip()
        for indicator in activity.iter("indicator"):
            if indicator.get("measure") != "1":
                continue
            for actual in indicator.iter("actual"):
                dims = {d.get("name"): d.get("value") for d in actual.findall("dimension")}
                if dims.get("sex") == sex:
                    totals[identifier] += float(actual.get("value"))
    return dict(totals)


def expected_kiosk_users_2023(xml: Path) -> float:
    """Female + male users of the Nairobi water kiosks in 2023: the fixture's people reached."""
    total = 0.0
    for indicator in ET.parse(xml).getroot().iter("indicator"):
        if (
            indicator.findtext("title/narrative") or ""
        ).strip() != "Number of residents using a cooperative water kiosk":
            continue
        for period in indicator.findall("period"):
            if period.find("period-start").get("iso-date").startswith("2023"):
                total += sum(float(a.get("value")) for a in period.findall("actual"))
    return total


def expected_idps_by_city(path: Path) -> dict[str, float]:
    """#affected+idps per #loc+code (without its space; '' when blank) from the HXL CSV."""
    with path.open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    tags = rows[1]
    loc, idps = tags.index("#loc+code"), tags.index("#affected+idps")
    totals: dict[str, float] = defaultdict(float)
    for row in rows[2:]:
        if len(row) > idps and row[idps].strip():
            totals[row[loc].replace(" ", "")] += float(row[idps].replace(",", ""))
    return dict(totals)


@pytest.fixture
def fixture_copies(tmp_path: Path) -> tuple[str, Path, str, Path]:
    """The IATI fixture under a fresh publisher ref, and the HXL fixture under a fresh partner."""
    publisher = f"GB-CHC-{uuid.uuid4().int % 10**9:09d}"
    xml = tmp_path / "urban_programmes.xml"
    text = (FIXTURES / "iati" / "urban_programmes.xml").read_text(encoding="utf-8")
    xml.write_text(text.replace(FIXTURE_PUBLISHER, publisher), encoding="utf-8")
    partner = f"dtm-test-{uuid.uuid4().hex[:8]}"
    return publisher, xml, partner, FIXTURES / "hxl" / HXL_FILE


def _send(settings: Settings, runs: list[tuple[str, dict]]) -> None:
    """Run the sources on their inputs through the real broker, then let the sink catch up."""
    topics = load_topics(settings.topics_file)
    apply_topics(settings.kafka_bootstrap, topics)
    with EventProducer(settings.kafka_bootstrap) as producer:
        for name, overrides in runs:
            source = get_source(name)
            config = load_config(name, source.config, overrides=overrides)
            run_source(source, config, producer, StateStore(settings.state_dir, name))
    Sink(settings, [t for t in topics if t.sink]).run(until_caught_up=True)


def _write_youth_feed(path: Path, dar_2021: float) -> None:
    """The SDMX CSV fixture disaggregated by age (15-24): series keys no other test sends."""
    rows = list(csv.reader((FIXTURES / "sdmx" / "csv_v1.csv").open(encoding="utf-8")))
    sex = rows[0].index("SEX")
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*rows[0][: sex + 1], "AGE", *rows[0][sex + 1 :]])
        for row in rows[1:]:
            if row[3] == "TZDAR" and row[6] == "2021":
                row[7] = str(dar_2021)
            writer.writerow([*row[: sex + 1], "Y15T24", *row[sex + 1 :]])


def _youth_sanitation(settings: Settings) -> list[tuple]:
    return _query(
        settings,
        """select city_code, period, value from marts.fct_city_indicator
           where series_code = 'SH_SAN_SAFE' and age_group = '15-24' and city_code like 'TZ%'
           order by all""",
    )


def _query(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _model_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return con.execute(
        """select table_schema, table_name from information_schema.tables
           where table_schema in ('staging', 'intermediate', 'marts')
             and table_type = 'BASE TABLE'
           order by all"""
    ).fetchall()


def _comparable_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str:
    """Every column but those that record when a row was built or measured, not what it says."""
    rows = con.execute(
        """select column_name from information_schema.columns
           where table_schema = ? and table_name = ? order by ordinal_position""",
        [schema, table],
    ).fetchall()
    return ", ".join(f'"{name}"' for (name,) in rows if name not in BUILD_TIME_COLUMNS)


def test_theme_marts_match_the_fixture_files_and_incremental_equals_full_refresh(
    settings, fixture_copies, tmp_path
):
    publisher, xml, partner, hxl_csv = fixture_copies
    partner_urn = iati.source_urn(publisher)
    youth_csv = tmp_path / "youth_sanitation.csv"
    _write_youth_feed(youth_csv, dar_2021=31.4)
    _send(
        settings,
        [
            ("iati", {"inputs": [str(xml)]}),
            ("hxl", {"partner": partner, "inputs": [str(hxl_csv)]}),
            ("worldbank", {"inputs": [str(FIXTURES / "worldbank")]}),
            ("sdmx", {"inputs": [str(youth_csv)]}),
            (
                "utilities",
                {"mode": "kpi", "inputs": [str(FIXTURES / "utilities" / "kpi_2025_01.csv")]},
            ),
        ],
    )
    # Strategic progress aggregates across partners, and other runs (the demo's sample world) put
    # their own people-reached results on the shared topic: keep only this test's in its warehouse.
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("delete from raw.partner_iati_result_v1 where source <> ?", [partner_urn])
    assert refresh_warehouse(settings, capture=True).plan.selectors is None  # first: everything

    # Economy & investments: commitments and disbursements per theme and currency.
    for column, type_code in (("commitments", "2"), ("disbursements", "3")):
        rows = _query(
            settings,
            f"""select theme_code, currency, round(sum({column}), 2) from marts.fct_investment_flows
                where partner_urn = ? and {column} <> 0 group by all""",
            [partner_urn],
        )
        assert {(t, c): v for t, c, v in rows} == expected_flows(xml, type_code), column

    # Women & gender equality: women and men reached per activity (count indicators).
    for sex in ("female", "male"):
        rows = _query(
            settings,
            f"""select activity_id, sum({sex}_value) from marts.fct_gender_results
                where source_urn = ? and unit <> 'percent' group by all""",
            [partner_urn],
        )
        assert dict(rows) == expected_results_by_sex(xml, sex), sex

    # Strategic: people reached in basic services, 2023 (the kiosk users), counted once however
    # many partners published the same fixture.
    people = _query(
        settings,
        """select achieved from marts.fct_strategic_progress
           where target_code = 'people_reached' and theme_code = 'basic_services'
             and period_year = 2023""",
    )
    assert people == [(expected_kiosk_users_2023(xml),)] == [(20320.0,)]

    # Migration & cities: IDPs per city from the HXL table.
    idps = _query(
        settings,
        """select city_code, sum(people) from marts.fct_displacement
           where partner_urn = ? and measure = '#affected' and population_group = 'idps'
             and sex = 'total' and age_group = 'all' and city_code is not null
           group by all""",
        [f"urn:partner:{partner}"],
    )
    with (SEEDS / "ref_cities.csv").open(encoding="utf-8") as f:
        our_cities = {row["city_code"] for row in csv.DictReader(f)}
    by_location = expected_idps_by_city(hxl_csv)
    assert dict(idps) == {code: n for code, n in by_location.items() if code in our_cities}
    all_idps = _query(
        settings,
        """select sum(people) from marts.fct_displacement
           where partner_urn = ? and measure = '#affected' and population_group = 'idps'
             and sex = 'total' and age_group = 'all'""",
        [f"urn:partner:{partner}"],
    )
    assert all_idps == [(sum(by_location.values()),)]

    # Basic services: the KPI file's rows, one per city x service x utility x month.
    with (FIXTURES / "utilities" / "kpi_2025_01.csv").open(encoding="utf-8") as f:
        kpis = {
            (r["city_code"], r["service"], r["utility"]): float(r["coverage_pct"])
            for r in csv.DictReader(f)
        }
    levels = _query(
        settings,
        """select city_code, service, utility_name, coverage_pct
           from marts.fct_utility_service_levels where month = '2025-01'""",
    )
    assert {(c, s, u): v for c, s, u, v in levels if (c, s, u) in kpis} == kpis

    # Slum upgrading: Kenya 2020 from the World Bank is the latest revision on the (shared) topic:
    # each event's first copy (lowest offset) counts, then the latest event time wins.
    copies = _query(
        settings,
        """select event_id, kafka_partition, kafka_offset, event_time, kafka_timestamp,
                  (data->>'value')::double
           from raw.stats_worldbank_observation_v1
           where data->>'series_key' = 'EN.POP.SLUM.UR.ZS.KEN' and data->>'time_period' = '2020'""",
    )
    first_copies: dict[str, tuple] = {}
    for event_id, partition, offset, event_time, timestamp, value in sorted(copies):
        first_copies.setdefault(event_id, (event_time, timestamp, partition, offset, value))
    assert 45.6 in {copy[-1] for copy in first_copies.values()}
    assert _query(
        settings,
        """select slum_population_pct from marts.fct_slum_indicators
           where data_source = 'worldbank' and country_iso3 = 'KEN' and period = '2020'""",
    ) == [(max(first_copies.values())[-1],)]

    # Age disaggregation: the 15-24 rows keep their own age group (a missing value stays null).
    assert _youth_sanitation(settings) == [
        ("TZDAR", "2021", 31.4),
        ("TZDAR", "2022", None),
        ("TZMWZ", "2022", 22.9),
    ]

    # New events (a revised activity: newer last-updated, bigger commitment; a revised SDMX
    # observation), a refresh of what they feed, then a full refresh: same staging and marts.
    revised = xml.read_text(encoding="utf-8").replace(
        'last-updated-datetime="2024-03-28T14:05:00Z"',
        'last-updated-datetime="2024-05-01T00:00:00Z"',
    )
    revised = revised.replace(
        '<value currency="USD" value-date="2023-01-15">2500000</value>',
        '<value currency="USD" value-date="2023-01-15">2600000</value>',
    )
    xml.write_text(revised, encoding="utf-8")
    _write_youth_feed(youth_csv, dar_2021=33.0)
    _send(settings, [("iati", {"inputs": [str(xml)]}), ("sdmx", {"inputs": [str(youth_csv)]})])
    refresh = refresh_warehouse(settings, capture=True)
    assert refresh.plan.selectors is not None
    assert "source:iati.partner_iati_transaction_v1+" in refresh.plan.selectors
    assert "source:sdmx.stats_sdmx_observation_v1+" in refresh.plan.selectors
    assert "source:hxl.partner_hxl_record_v1+" not in refresh.plan.selectors
    assert ("TZDAR", "2021", 33.0) in _youth_sanitation(settings)
    commitments = _query(
        settings,
        """select theme_code, currency, round(sum(commitments), 2) from marts.fct_investment_flows
           where partner_urn = ? and commitments <> 0 group by all""",
        [partner_urn],
    )
    assert {(t, c): v for t, c, v in commitments} == expected_flows(xml, "2")

    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema incremental_copy")
        tables = [(s, t) for s, t in _model_tables(con) if t not in TIME_DEPENDENT]
        for schema, table in tables:
            con.execute(
                f"create table incremental_copy.{schema}__{table} as select * from {schema}.{table}"
            )
    run_dbt(settings, ["build", "--full-refresh"], capture=True)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert ("staging", "stg_iati__transactions") in tables
        assert ("intermediate", "int_indicators__observations") in tables
        for schema, table in tables:
            copy = f"incremental_copy.{schema}__{table}"
            columns = _comparable_columns(con, schema, table)
            for left, right in ((copy, f"{schema}.{table}"), (f"{schema}.{table}", copy)):
                diff = con.execute(
                    f"select count(*) from (select {columns} from {left}"
                    f" except all select {columns} from {right})"
                ).fetchone()[0]
                assert diff == 0, f"{schema}.{table}: incremental differs from full refresh"
