"""The reference data every layer shares: cities and countries from the dbt seeds, partner slugs."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from connectors import reference
from connectors.errors import ConfigError
from connectors.reference import City, Country, load_cities, load_countries, slugify
from connectors.settings import Settings

SEEDS = Settings.from_env().reference_dir


def _write(folder: Path, name: str, rows: list[list[str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


CITY_HEADER = [
    "city_code",
    "city_name",
    "country_iso3",
    "country_iso2",
    "country_name",
    "population",
    "is_secondary_city",
    "latitude",
    "longitude",
]


def test_cities_are_read_from_the_seed_with_typed_fields() -> None:
    cities = {city.code: city for city in load_cities()}
    assert cities["KENBO"] == City(
        code="KENBO",
        name="Nairobi",
        country_iso3="KEN",
        country_iso2="KE",
        country_name="Kenya",
        population=cities["KENBO"].population,
        is_secondary=False,
        latitude=cities["KENBO"].latitude,
        longitude=cities["KENBO"].longitude,
    )
    assert cities["KENBO"].population > 1_000_000
    assert -2 < cities["KENBO"].latitude < -1 and 36 < cities["KENBO"].longitude < 37
    assert cities["BDCGP"].is_secondary


def test_every_city_is_in_a_reference_country() -> None:
    countries = {country.iso3: country for country in load_countries()}
    assert countries["BGD"] == Country("BGD", "BD", "050", "Bangladesh", "Asia", "Southern Asia")
    for city in load_cities():
        country = countries[city.country_iso3]
        assert (city.country_iso2, city.country_name) == (country.iso2, country.name)


def test_the_reference_folder_comes_from_uf_reference_dir_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = ["XXAAA", "Aville", "XXX", "XX", "Xland", "60000", "false", "1.0000", "2.0000"]
    _write(tmp_path, "ref_cities.csv", [CITY_HEADER, row])
    monkeypatch.setenv("UF_REFERENCE_DIR", str(tmp_path))

    (city,) = load_cities()

    assert (city.code, city.population, city.latitude, city.longitude) == ("XXAAA", 60000, 1, 2)
    assert reference.city_countries() == {"XXAAA": "XXX"}
    assert len(load_cities(SEEDS)) > 1  # an explicit folder wins over the setting


def test_a_missing_reference_file_names_the_file_and_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ref_cities\.csv not found: set UF_REFERENCE_DIR"):
        load_cities(tmp_path)


def test_a_bad_reference_row_names_the_file_line_and_column(tmp_path: Path) -> None:
    row = ["XXAAA", "Aville", "XXX", "XX", "Xland", "many", "false", "1.0", "2.0"]
    _write(tmp_path, "ref_cities.csv", [CITY_HEADER, row])
    with pytest.raises(ConfigError, match=r"ref_cities\.csv:2 population: 'many' is not valid"):
        load_cities(tmp_path)


def test_a_reference_file_without_a_column_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "ref_countries.csv", [["country_iso3", "country_name"], ["XXX", "Xland"]])
    with pytest.raises(ConfigError, match=r"lacks the column\(s\) country_iso2, country_m49"):
        load_countries(tmp_path)


def test_sector_themes_map_each_theme_to_dac_codes() -> None:
    themes = reference.load_sector_themes()
    assert themes and all(
        re.fullmatch(r"\d{5}", code) and name for codes in themes.values() for code, name in codes
    )


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("GB-CHC-1180001", "gb-chc-1180001"),
        ("  Urban  Futures / Partnership ", "urban-futures-partnership"),
        ("XI-IATI-EC_INTPA", "xi-iati-ec-intpa"),
        ("Águas da Região", "guas-da-regi-o"),
    ],
)
def test_slugify_makes_partner_slugs(text: str, slug: str) -> None:
    assert slugify(text) == slug
    assert reference.PARTNER_SLUG_RE.match(slug)


def test_city_reference_list_has_unique_locodes_in_many_countries() -> None:
    with reference.reference_path(reference.CITIES_FILE).open(
        encoding="utf-8", newline=""
    ) as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        assert reader.fieldnames == CITY_HEADER
    codes = [row["city_code"] for row in rows]

    assert len(rows) >= 28
    assert len({row["country_iso3"] for row in rows}) >= 12
    assert len(codes) == len(set(codes))
    for row in rows:
        assert re.fullmatch(r"[A-Z]{5}", row["city_code"])
        assert row["city_code"].startswith(row["country_iso2"])
        assert int(row["population"]) > 50_000
        assert row["is_secondary_city"] in {"true", "false"}
        assert re.fullmatch(r"-?\d{1,3}\.\d{4}", row["latitude"])
        assert re.fullmatch(r"-?\d{1,3}\.\d{4}", row["longitude"])
