"""The sample world: deterministic, broad enough, parseable by every source, consistent."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

import pytest

from connectors.api.checks import RESULT_TYPE
from connectors.api.files import read_table as read_result_table
from connectors.contracts import get_contract
from connectors.reference import city_countries, load_cities, load_sector_themes
from connectors.samples import world
from connectors.samples.hxl import HXL_ROUNDS
from connectors.samples.partners import PARTNERS, THEMES
from connectors.samples.unsdg import m49_codes
from connectors.samples.utilities import latest_sdmx_share
from connectors.settings import Settings
from connectors.sources.gdacs.helpers import HazardEpisode, parse_feed
from connectors.sources.hxl.helpers import HxlRow, parse_rows
from connectors.sources.iati.helpers import IatiFile, parse_iati_activities
from connectors.sources.unsdg.helpers import parse_sdg_page
from connectors.sources.utilities import known_cities
from connectors.sources.utilities.helpers import parse_kpi_csv
from connectors.sources.worldbank.helpers import parse_worldbank_page
from connectors.tables import table_rows

SAMPLES = Settings.from_env().sample_data_dir
CITIES = {city.code: city for city in load_cities()}


def _files(folder: str, pattern: str) -> list[Path]:
    files = sorted((SAMPLES / folder).glob(pattern))
    assert files, f"no {pattern} in sample_data/{folder}"
    return files


def _iati() -> list[IatiFile]:
    return [parse_iati_activities(p.read_bytes(), str(p)) for p in _files("iati", "*.xml")]


def _hxl_rows(path: Path) -> list:
    table = list(table_rows(str(path), path.read_bytes()))
    return list(parse_rows(table, str(path), path.name, city_countries()))


def test_generator_is_deterministic_and_matches_the_committed_files(tmp_path: Path) -> None:
    first = world.write_world(tmp_path / "first")
    world.write_world(tmp_path / "second")

    assert len(first) == 48
    for path in first:
        relative = path.relative_to(tmp_path / "first")
        assert path.read_bytes() == (tmp_path / "second" / relative).read_bytes()
        assert path.read_bytes() == (SAMPLES / relative).read_bytes(), (
            f"sample_data/{relative} is stale: run python -m connectors.samples.world"
        )


def test_another_seed_changes_the_figures_but_not_the_files_written(tmp_path: Path) -> None:
    default = world.render_world(list(CITIES.values()))
    other = world.render_world(list(CITIES.values()), seed=7)

    assert sorted(default) == sorted(other)
    assert default["iati/urban-futures.xml"] != other["iati/urban-futures.xml"]


def test_generator_cli_reports_what_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.main(["--out", str(tmp_path), "--seed", "2026"]) == 0

    summary = capsys.readouterr().out
    assert summary.startswith("wrote 48 sample files (")
    assert f"to {tmp_path} with seed 2026" in summary


def test_programmes_cover_at_least_24_cities_in_10_countries_and_all_six_themes() -> None:
    activities = [a for f in _iati() for a in f.activities]
    sector_themes = {
        code: theme for theme, codes in load_sector_themes().items() for code, _ in codes
    }
    themes = {sector_themes[s["code"]] for a in activities for s in a.data["sectors"]}
    cities = {a.city_code for a in activities}

    assert len(activities) == 56
    assert len(cities) == 44 and len({CITIES[c].country_iso3 for c in cities}) == 17
    assert themes == set(THEMES)


def test_every_iati_file_parses_with_zero_rejected_activities() -> None:
    files = _iati()

    assert [Path(f.origin).stem for f in files] == sorted(p.slug for p in PARTNERS)
    assert all(f.version == "2.03" and not f.rejected for f in files)
    assert all(a.last_updated and a.city_code for f in files for a in f.activities)


def test_iati_disbursements_never_exceed_the_commitment_of_their_activity() -> None:
    for activity in (a for f in _iati() for a in f.activities):
        commitments = [t["value"] for t in activity.transactions if t["type_code"] == "2"]
        disbursed = sum(t["value"] for t in activity.transactions if t["type_code"] == "3")
        assert len(commitments) == 1 and 500_000 <= commitments[0] <= 20_000_000
        assert 0 < disbursed <= commitments[0], activity.identifier


def test_people_reached_per_city_and_year_is_half_to_five_percent_of_its_population() -> None:
    reached: dict[tuple[str, str], float] = defaultdict(float)
    for activity in (a for f in _iati() for a in f.activities):
        for row in activity.results:
            if row["indicator_title"] == "Number of people reached" and row["measurement"] == (
                "actual"
            ):
                assert row["sex"] in {"female", "male"}
                reached[row["city_code"], row["period_start"][:4]] += row["value"]

    assert len(reached) == 44 * 2
    for (city, year), people in reached.items():
        assert 0.005 <= people / CITIES[city].population <= 0.05, (city, year, people)


def test_women_reached_equals_the_female_people_reached_of_the_same_activity() -> None:
    checked = 0
    for activity in (a for f in _iati() for a in f.activities):
        actuals = [r for r in activity.results if r["measurement"] == "actual"]
        women = {r["period_start"]: r["value"] for r in actuals if r["indicator_index"] == 2}
        female = {
            r["period_start"]: r["value"]
            for r in actuals
            if r["indicator_index"] == 1 and r["sex"] == "female"
        }
        if women:
            assert women == female
            checked += 1
    assert checked > 0


def test_every_hxl_file_parses_with_zero_bad_rows_and_resolves_every_city() -> None:
    for path in _files("hxl", "*.csv"):
        rows = _hxl_rows(path)

        assert all(isinstance(row, HxlRow) for row in rows)
        assert len(rows) == 14 * len(HXL_ROUNDS)
        assert all(r["city_code"] in CITIES for row in rows for r in row.records)


def test_hxl_totals_equal_female_plus_male_counts() -> None:
    checked = 0
    for path in _files("hxl", "*.csv"):
        for row in _hxl_rows(path):
            by_group: dict[str, dict[str, float]] = defaultdict(dict)
            for record in row.records:
                if record["age_group"] == "all":
                    by_group[record["population_group"]][record["sex"]] = record["value"]
            for group, values in by_group.items():
                if {"female", "male"} <= set(values):
                    assert values["total"] == values["female"] + values["male"], (group, row.row)
                    checked += 1
    assert checked > 0, "no HXL row had female, male and total counts to compare"


def test_world_bank_pages_parse_with_one_aggregate_skipped_per_indicator() -> None:
    pages = [
        parse_worldbank_page(p.read_bytes(), str(p), "WB:WDI(1.0)")
        for p in _files("worldbank", "*.json")
    ]

    assert not any(page.refused for page in pages)
    assert sum(page.skipped for page in pages) == 2
    assert sum(len(page.observations) for page in pages) == 17 * (3 + 5)


def test_un_sdg_pages_parse_and_match_the_world_bank_slum_totals() -> None:
    pages = [
        parse_sdg_page(p.read_bytes(), str(p), "UNSD:DF_SDG_GLH(1.0)")
        for p in _files("unsdg", "*.json")
    ]
    observations = [o for page in pages for o in page.observations]
    wb = {
        (o.dimensions["REF_AREA"], o.time_period): o.value
        for p in _files("worldbank", "en_pop_slum*.json")
        for o in parse_worldbank_page(p.read_bytes(), str(p), "WB:WDI(1.0)").observations
    }
    m49 = {v: k for k, v in m49_codes().items()}
    totals = {
        (m49[o.dimensions["REF_AREA"]], o.time_period): o.value
        for o in observations
        if o.dimensions["SEX"] == "_T"
    }

    assert not any(page.refused for page in pages)
    assert len(observations) == 17 * 3 * 3
    assert totals == wb


def test_kpi_files_parse_with_zero_rejects_and_a_row_per_city_and_service() -> None:
    files = _files("utilities", "kpi_*.csv")
    assert len(files) == 12
    for path in files:
        rows, rejects = parse_kpi_csv(path.read_text(encoding="utf-8"), str(path), known_cities())

        assert rejects == []
        assert sorted((r["city_code"], r["service"]) for r in rows) == sorted(
            (code, service) for code in CITIES for service in ("water", "electricity")
        )


def test_kpi_coverage_agrees_with_the_city_sdmx_water_and_electricity_shares() -> None:
    path = SAMPLES / "utilities" / "kpi_2024_01.csv"
    rows, _ = parse_kpi_csv(path.read_text(encoding="utf-8"), str(path), known_cities())

    assert {row["service"] for row in rows} == {"water", "electricity"}
    for row in rows:
        city = CITIES[row["city_code"]]
        if row["service"] == "water":
            safe = latest_sdmx_share(city, "SH_H2O_SAFE")
            assert safe + 3.5 <= row["coverage_pct"] <= min(99.5, safe + 14.5), row
        else:
            access = latest_sdmx_share(city, "EG_ELC_ACCS")
            assert access - 2.5 <= row["coverage_pct"] <= access + 1.5, row


def test_partner_result_files_pass_the_upload_contract_with_other_indicators_than_iati() -> None:
    contract = get_contract(RESULT_TYPE)
    activity_ids = {a.identifier for f in _iati() for a in f.activities}
    for path in _files("partner_results", "*.csv"):
        rows = read_result_table(path.name, path.read_bytes())

        for _, data in rows:
            contract.validate_data(data)
        assert {d["activity_id"] for _, d in rows} <= activity_ids
        assert "people_reached" not in {d["indicator"] for _, d in rows}
        assert "women_reached" not in {d["indicator"] for _, d in rows}
        assert "funds_leveraged_usd" in {d["indicator"] for _, d in rows}


def test_partner_result_header_is_the_upload_column_format() -> None:
    for path in _files("partner_results", "*.csv"):
        header = next(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
        assert header == [
            "activity_id",
            "city_code",
            "theme",
            "indicator",
            "period",
            "value",
            "unit",
            "sex",
        ]


def test_hazard_feeds_parse_with_zero_rejects_and_affect_a_plausible_share_of_each_city() -> None:
    episodes = [
        item
        for path in _files("hazards", "gdacs_events_*.geojson")
        for item in parse_feed(path.read_bytes(), str(path), list(CITIES.values()), 30.0)
    ]
    latest: dict[tuple[str, str], HazardEpisode] = {}
    for episode in episodes:
        assert isinstance(episode, HazardEpisode), episode
        if episode.episode_id > getattr(
            latest.get((episode.event_key, episode.place)), "episode_id", 0
        ):
            latest[episode.event_key, episode.place] = episode

    assert {e.data["hazard_type"] for e in episodes} == {"FL", "TC", "DR", "HW"}
    assert {e.data["from_time"][:4] for e in episodes} == {"2022", "2023", "2024"}
    assert {e.data["place_match"] for e in episodes} == {"nearest_city", "city_code", "country"}
    for (_, place), episode in latest.items():
        if place in CITIES:
            share = episode.data["people_affected"] / CITIES[place].population
            assert 0.004 <= share <= 0.25, (episode.event_key, place, share)
