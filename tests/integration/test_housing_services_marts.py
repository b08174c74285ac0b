"""Sample SDMX feeds, partner results and the IATI fixture -> real Kafka -> sink -> `dbt build` ->
the slum upgrading and basic services marts (secure tenure, waste collection, households in
upgraded homes), checked against figures computed here straight from the files.

The real topics hold whatever earlier runs sent, so the partner results are re-published under
partners of this test's own and the IATI fixture under a fresh publisher; the SDMX sample feeds
carry the same events whoever sends them.
"""

from __future__ import annotations

import csv
import json
import uuid
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest
from rich.console import Console

from connectors.demo import send_partner_results
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import apply_topics, load_topics
from connectors.sdk import load_config, run_source
from connectors.sdk.state import StateStore
from connectors.settings import Settings
from connectors.sink import Sink
from connectors.sources import iati
from connectors.sources.registry import get_source
from connectors.transform import run_dbt

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_data"
FIXTURES = REPO / "tests" / "fixtures"
#: One SDMX-CSV and one SDMX-JSON feed: Kenya's and Bangladesh's cities.
FEEDS = ("ken_knbs.csv", "bgd_bbs.json")
TENURE_MEASURES = {"SP_LGL_LNDDOC": "documented", "SP_LGL_LNDSTR": "perceived_secure"}
WASTE = "EN_REF_WASCOL"
SEX = {"_T": "total", "F": "female", "M": "male"}
FIXTURE_PUBLISHER = "GB-CHC-1180001"
HOUSING_TITLE = "Households in upgraded homes, by sex of household head"
#: Added to every households figure of the second copy of the partner results, so it is the
#: largest figure reported in its cities.
LARGER_BY = 10

Key = tuple[str, str, str, str]  # city, series, sex, period


def feed_values(path: Path) -> dict[Key, float | None]:
    """(city, series, sex, period) -> value of an SDMX feed, read with plain csv/json."""
    values: dict[Key, float | None] = {}
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                row = {k.split(":")[0]: v.split(": ")[0] for k, v in row.items()}
                key = (row["CITY"], row["SERIES"], row["SEX"], row["TIME_PERIOD"])
                values[key] = float(row["OBS_VALUE"]) if row["OBS_VALUE"] else None
        return values
    structure_data = json.loads(path.read_text(encoding="utf-8"))["data"]
    dimensions = structure_data["structures"][0]["dimensions"]
    series_dims = [d["id"] for d in dimensions["series"]]
    periods = dimensions["observation"][0]["values"]
    for dataset in structure_data["dataSets"]:
        for series_key, series in dataset["series"].items():
            codes = {
                dim: dimensions["series"][i]["values"][int(position)]["id"]
                for i, (dim, position) in enumerate(
                    zip(series_dims, series_key.split(":"), strict=True)
                )
            }
            for position, observation in series["observations"].items():
                key = (codes["CITY"], codes["SERIES"], codes["SEX"], periods[int(position)]["id"])
                values[key] = observation[0]
    return values


def expected_iati_households(xml: Path) -> dict[tuple[str, int], tuple[float, float]]:
    """(activity, year) -> (female-headed, male-headed) households of the fixture's housing
    indicator, its half-year periods added up."""
    totals: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for activity in ET.parse(xml).getroot().iter("iati-activity"):
        identifier = activity.findtext("iati-identifier").strip()
        for indicator in activity.iter("indicator"):
            if (indicator.findtext("title/narrative") or "").strip() != HOUSING_TITLE:
                continue
            for period in indicator.findall("period"):
                year = int(period.find("period-start").get("iso-date")[:4])
                for actual in period.findall("actual"):
                    sex = actual.find("dimension").get("value")
                    totals[identifier, year][sex == "male"] += float(actual.get("value"))
    return {key: (female, male) for key, (female, male) in totals.items()}


def _households_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return [r for r in csv.DictReader(handle) if r["indicator"] == "households_upgraded"]


@pytest.fixture
def partner_uploads(tmp_path: Path) -> dict[str, list[dict[str, str]]]:
    """Partner slug -> its households rows: two copies of the sample partners' results (the
    second reporting LARGER_BY more households everywhere) and one partner that reports fewer
    households in Dhaka in 2023 than the IATI fixture's activity there."""
    folder = tmp_path / "uploads" / "partner_results"
    folder.mkdir(parents=True)
    run = uuid.uuid4().hex[:8]
    uploads: dict[str, list[dict[str, str]]] = {}
    for sample in ("habitat-asia", "urban-futures"):
        rows = _households_rows(SAMPLES / "partner_results" / f"{sample}.csv")
        larger = [{**r, "value": str(int(r["value"]) + LARGER_BY)} for r in rows]
        uploads[f"{sample}-{run}"] = rows
        uploads[f"{sample}-larger-{run}"] = larger
    dhaka = {
        "activity_id": f"BD-DAC-SAVINGS-{run}",
        "city_code": "BDDAC",
        "theme": "slum_upgrading_housing",
        "indicator": "households_upgraded",
        "period": "2023",
        "value": "600",
        "unit": "households",
        "sex": "total",
    }
    uploads[f"dhaka-savings-{run}"] = [dhaka]
    for slug, rows in uploads.items():
        with (folder / f"{slug}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return uploads


def _send(settings: Settings, sample_dir: Path, xml: Path) -> None:
    topics = load_topics(settings.topics_file)
    apply_topics(settings.kafka_bootstrap, topics)
    with EventProducer(settings.kafka_bootstrap) as producer:
        for name, inputs in (("sdmx", [SAMPLES / "sdmx" / f for f in FEEDS]), ("iati", [xml])):
            source = get_source(name)
            config = load_config(name, source.config, overrides={"inputs": list(map(str, inputs))})
            run_source(source, config, producer, StateStore(settings.state_dir, name))
        send_partner_results(settings, sample_dir, producer, Console(quiet=True))
    Sink(settings, [t for t in topics if t.sink]).run(until_caught_up=True)


def _query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def test_tenure_waste_and_households_upgraded_marts_match_the_files(
    settings, partner_uploads, tmp_path
):
    publisher = f"GB-CHC-{uuid.uuid4().int % 10**9:09d}"
    xml = tmp_path / "urban_programmes.xml"
    text = (FIXTURES / "iati" / "urban_programmes.xml").read_text(encoding="utf-8")
    xml.write_text(text.replace(FIXTURE_PUBLISHER, publisher), encoding="utf-8")
    _send(settings, tmp_path / "uploads", xml)
    run_dbt(settings, ["build"], capture=True)

    feeds: dict[Key, float | None] = {}
    for name in FEEDS:
        feeds |= feed_values(SAMPLES / "sdmx" / name)
    cities = sorted({city for city, *_ in feeds})
    tenure = {
        (city, TENURE_MEASURES[series], SEX[sex], period): value
        for (city, series, sex, period), value in feeds.items()
        if series in TENURE_MEASURES
    }
    waste = {
        (city, period): value
        for (city, series, sex, period), value in feeds.items()
        if series == WASTE and sex == "_T"
    }
    assert len(tenure) == len(cities) * 2 * 3 * 6 and len(waste) == len(cities) * 6

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        # Slum upgrading & housing: secure tenure per city x measure x sex x year, as published.
        rows = _query(
            con,
            """select city_code, tenure_measure, sex, period, secure_tenure_pct
               from marts.fct_tenure_security
               where data_source = 'sdmx' and city_code in (select unnest(?))""",
            [cities],
        )
        assert {(c, m, s, p): v for c, m, s, p, v in rows} == tenure
        nairobi = _query(
            con,
            """select city_name, country_name, secure_tenure_pct from marts.fct_tenure_security
               where city_code = 'KENBO' and tenure_measure = 'documented' and sex = 'total'
                 and period = '2023'""",
        )
        assert nairobi == [("Nairobi", "Kenya", tenure["KENBO", "documented", "total", "2023"])]

        # Basic services: waste collected and managed in controlled facilities per city x year.
        rows = _query(
            con,
            """select city_code, period, access_pct from marts.fct_service_access
               where service = 'waste' and data_source = 'sdmx' and sdg_indicator = '11.6.1'
                 and sex = 'total' and city_code in (select unnest(?))""",
            [cities],
        )
        assert dict(((c, p), v) for c, p, v in rows) == waste

        # Households upgraded, per reporter: each partner's figure per activity, city and year.
        for slug, uploaded in partner_uploads.items():
            rows = _query(
                con,
                """select activity_id, city_code, period_year, households_upgraded,
                          is_derived_total
                   from marts.fct_housing_upgraded
                   where result_source = 'partner_api' and source_urn = ?""",
                [f"urn:partner:{slug}"],
            )
            assert sorted(rows) == sorted(
                (r["activity_id"], r["city_code"], int(r["period"]), float(r["value"]), False)
                for r in uploaded
            ), slug
        # ... and the IATI activity's, by sex of household head, the total derived from them.
        rows = _query(
            con,
            """select activity_id, period_year, female_headed_households,
                      male_headed_households, households_upgraded, is_derived_total, city_name
               from marts.fct_housing_upgraded
               where result_source = 'iati' and source_urn = ?""",
            [iati.source_urn(publisher)],
        )
        iati_households = expected_iati_households(xml)
        assert sorted(rows) == sorted(
            (activity, year, female, male, female + male, True, "Dhaka")
            for (activity, year), (female, male) in iati_households.items()
        )
        assert rows and rows[0][4] == 750  # the fixture's 140 + 95 + 310 + 205

        # Counting rule: a city and year count once, at the largest figure any reporter gave.
        largest: dict[tuple[str, int], float] = defaultdict(float)
        for uploaded in partner_uploads.values():
            for r in uploaded:
                key = (r["city_code"], int(r["period"]))
                largest[key] = max(largest[key], float(r["value"]))
        for (_, year), (female, male) in iati_households.items():
            largest["BDDAC", year] = max(largest["BDDAC", year], female + male)
        counted = _query(
            con,
            """select city_code, period_year, sum(households_upgraded), count(*)
               from marts.fct_housing_upgraded
               where is_city_figure and city_code in (select unnest(?))
               group by all""",
            [sorted({city for city, _ in largest})],
        )
        assert {(c, y): (n, rows) for c, y, n, rows in counted if (c, y) in largest} == {
            key: (value, 1) for key, value in largest.items()
        }
        assert largest["BDDAC", 2023] == 750  # the IATI activity outdoes the 600 pushed
