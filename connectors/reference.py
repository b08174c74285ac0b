"""Reference data every layer shares: partner slugs, and the cities and countries of the programme.

Cities and countries are read from the dbt seeds (`ref_cities.csv`, `ref_countries.csv`) in
`Settings.reference_dir` (UF_REFERENCE_DIR), so the sources, the API, the warehouse and the
sample generators all know the same list. Each file is read once per path and process.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

from connectors.errors import ConfigError
from connectors.settings import Settings

#: A partner's slug: lowercase letters, digits and hyphens, 2-40 characters, not starting with
#: a hyphen. It names the partner in API keys and in its sources' URNs (`urn:partner:<slug>`).
PARTNER_SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,39}$"
PARTNER_SLUG_RE = re.compile(PARTNER_SLUG_PATTERN)

T = TypeVar("T")

CITIES_FILE = "ref_cities.csv"
COUNTRIES_FILE = "ref_countries.csv"
SECTOR_THEMES_FILE = "ref_iati_sector_themes.csv"


def slugify(text: str) -> str:
    """A partner slug made from free text (an IATI organisation reference, a name)."""
    cleaned = "".join(c if c.isascii() and c.isalnum() else "-" for c in text.lower())
    return "-".join(part for part in cleaned.split("-") if part)


@dataclass(frozen=True, slots=True)
class City:
    """One programme city (a row of `ref_cities`), keyed by its UN/LOCODE."""

    code: str
    name: str
    country_iso3: str
    country_iso2: str
    country_name: str
    population: int
    is_secondary: bool
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Country:
    """One programme country (a row of `ref_countries`), keyed by its ISO 3166 alpha-3 code."""

    iso3: str
    iso2: str
    m49: str  # as the seed writes it, with leading zeros ("050")
    name: str
    un_region: str
    un_subregion: str


def reference_path(name: str, reference_dir: Path | None = None) -> Path:
    """A seed file in `reference_dir`, by default `Settings.from_env().reference_dir`."""
    return (reference_dir or Settings.from_env().reference_dir) / name


def _rows(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """The seed's rows; a missing file or column names the file and the setting to fix."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError(f"reference file {path} lacks the column(s) {', '.join(missing)}")
            return list(reader)
    except FileNotFoundError:
        raise ConfigError(
            f"reference file {path} not found: set UF_REFERENCE_DIR to the folder of the dbt "
            "seeds (dbt_project/seeds)"
        ) from None


#: Each reference type's fields, the seed column each comes from, and how its text is read.
CITY_COLUMNS: dict[str, tuple[str, Callable[[str], object]]] = {
    "code": ("city_code", str),
    "name": ("city_name", str),
    "country_iso3": ("country_iso3", str),
    "country_iso2": ("country_iso2", str),
    "country_name": ("country_name", str),
    "population": ("population", int),
    "is_secondary": ("is_secondary_city", lambda text: text == "true"),
    "latitude": ("latitude", float),
    "longitude": ("longitude", float),
}
COUNTRY_COLUMNS: dict[str, tuple[str, Callable[[str], object]]] = {
    "iso3": ("country_iso3", str),
    "iso2": ("country_iso2", str),
    "m49": ("country_m49", str),
    "name": ("country_name", str),
    "un_region": ("un_region", str),
    "un_subregion": ("un_subregion", str),
}


def _records(path: Path, kind: Callable[..., T], columns: dict) -> tuple[T, ...]:
    """Every row of a seed as `kind`, its fields read from their columns (see CITY_COLUMNS)."""
    records = []
    for line, row in enumerate(_rows(path, tuple(c for c, _ in columns.values())), start=2):
        fields = {}
        for name, (column, read) in columns.items():
            try:
                fields[name] = read(row[column])
            except (TypeError, ValueError):  # TypeError: a short row has None for its last cells
                message = f"reference file {path}:{line} {column}: {row[column]!r} is not valid"
                raise ConfigError(message) from None
        records.append(kind(**fields))
    return tuple(records)


@cache
def read_cities(path: Path) -> tuple[City, ...]:
    """Every city of a `ref_cities` CSV, in file order."""
    return _records(path, City, CITY_COLUMNS)


@cache
def read_countries(path: Path) -> tuple[Country, ...]:
    """Every country of a `ref_countries` CSV, in file order."""
    return _records(path, Country, COUNTRY_COLUMNS)


def load_cities(reference_dir: Path | None = None) -> tuple[City, ...]:
    """The programme cities, from `ref_cities.csv` in `reference_dir` (default: the setting)."""
    return read_cities(reference_path(CITIES_FILE, reference_dir))


def load_countries(reference_dir: Path | None = None) -> tuple[Country, ...]:
    """The programme countries, from `ref_countries.csv` in `reference_dir`."""
    return read_countries(reference_path(COUNTRIES_FILE, reference_dir))


def city_countries(reference_dir: Path | None = None) -> dict[str, str]:
    """UN/LOCODE -> ISO3 country of every programme city."""
    return {city.code: city.country_iso3 for city in load_cities(reference_dir)}


def load_sector_themes(reference_dir: Path | None = None) -> dict[str, list[tuple[str, str]]]:
    """theme -> [(DAC purpose code, name)], from the seed dbt maps IATI sectors to themes with."""
    path = reference_path(SECTOR_THEMES_FILE, reference_dir)
    themes: dict[str, list[tuple[str, str]]] = {}
    for row in _rows(path, ("theme_code", "sector_code", "sector_name")):
        themes.setdefault(row["theme_code"], []).append((row["sector_code"], row["sector_name"]))
    return themes
