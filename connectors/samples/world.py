"""The sample world behind `make demo`: seeded, deterministic feeds for every connector.

`python -m connectors.samples.world [--out sample_data] [--seed 2026]` reads the city reference
list (`dbt_project/seeds/ref_cities.csv`, 44 cities in 17 countries) and writes, from one set of
city populations and one set of partners, so that the sources agree with each other:

* `sdmx/` - the national statistics offices' city feeds (`connectors.samples.sdmx_feeds`);
* `worldbank/`, `unsdg/` - national urban slum shares (and urban electricity access), the
  population-weighted means of the SDMX city values, as World Bank API v2 and UN SDG API pages;
* `iati/<partner>.xml` - each partner's programmes, one per city of its countries, with
  commitments, disbursements, the donor's grant and, for about half of them, co-financing from
  city governments, development banks and private investors (incoming commitments, funds and
  pledges with their provider-org), and sex-disaggregated people/women reached (0.5-5 % of a
  city's population a year, whatever the number of partners there);
* `hxl/<partner>.csv` - the displacement partner's IOM-DTM-style counts per city and round;
* `utilities/kpi_<yyyy_mm>.csv` - monthly KPIs of each city's water and electricity utility,
  coverage in line with the SDMX water and electricity shares of the city;
* `partner_results/<partner>.csv` - partner.result.v1 uploads with indicators the IATI files do
  not carry (households upgraded, funds leveraged ...), so nothing is counted twice.

The figures are synthetic but plausible; the same seed gives byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from connectors.samples.hazards import render_hazards
from connectors.samples.sdmx_feeds import (
    CITIES_CSV,
    INDICATORS_BY_CODE,
    YEARS,
    City,
    load_cities,
    series_values,
    write_feeds,
)
from connectors.settings import REPO_ROOT
from connectors.sources.utilities.settings import KPI_OPTIONAL_COLUMNS, KPI_REQUIRED_COLUMNS

DEFAULT_OUT = REPO_ROOT / "sample_data"
DEFAULT_SEED = 2026
SEEDS_DIR = REPO_ROOT / "dbt_project" / "seeds"
SECTOR_THEMES_CSV = SEEDS_DIR / "ref_iati_sector_themes.csv"
COUNTRIES_CSV = SEEDS_DIR / "ref_countries.csv"

RESULT_YEARS = (2023, 2024)
KPI_YEAR = 2024
HXL_ROUNDS = ("2024-03-31", "2024-06-30", "2024-09-30", "2024-12-31")
#: Share of a city's population all partners together reach in a year (the brief's 0.5-5 %).
REACH_SHARE = (0.005, 0.05)
#: Commitment per activity in USD: at least this, at most this (and ~2 USD per resident).
COMMITMENT_USD = (500_000, 20_000_000)
HOUSEHOLD_SIZE = 4.6

SLUM, WATER, ELECTRICITY = (
    INDICATORS_BY_CODE[code] for code in ("EN_LND_SLUM", "SH_H2O_SAFE", "EG_ELC_ACCS")
)


@dataclass(frozen=True, slots=True)
class Partner:
    """A programme partner: who it is in IATI, where it works, which themes it runs."""

    slug: str
    ref: str  # IATI organisation identifier of the reporting org
    name: str
    org_type: str  # IATI OrganisationType
    countries: tuple[str, ...]  # ISO3
    themes: tuple[str, ...]  # cycled over its cities in code order
    funder: tuple[str, str, str]  # (ref, type, name) of the donor
    humanitarian: bool = False
    reports_displacement: bool = False  # publishes an HXL displacement file


PARTNERS = (
    Partner(
        "urban-futures",
        "GB-CHC-1180001",
        "Urban Futures Partnership",
        "21",
        ("ETH", "KEN", "RWA", "TZA", "UGA"),
        ("basic_services", "women_gender_equality", "slum_upgrading_housing"),
        ("GB-GOV-1", "10", "Foreign, Commonwealth and Development Office"),
    ),
    Partner(
        "habitat-asia",
        "NL-KVK-41234567",
        "Habitat Asia Collective",
        "21",
        ("BGD", "IND", "KHM", "PHL"),
        ("slum_upgrading_housing", "resilience_climate", "basic_services"),
        ("XI-IATI-EC_INTPA", "15", "European Commission - International Partnerships"),
    ),
    Partner(
        "resilient-cities-fund",
        "US-EIN-521234567",
        "Resilient Cities Fund",
        "60",
        ("GHA", "HND", "MOZ", "NGA", "PER", "SLE", "ZMB"),
        ("resilience_climate", "economy_investments", "basic_services"),
        ("GB-GOV-1", "10", "Foreign, Commonwealth and Development Office"),
    ),
    Partner(
        "displacement-cities",
        "XI-IATI-CDPN",
        "Cities for Displaced People Network",
        "22",
        ("ETH", "KEN", "NGA", "SOM", "UGA"),
        ("migration_cities", "women_gender_equality"),
        ("XI-IATI-EC_INTPA", "15", "European Commission - International Partnerships"),
        humanitarian=True,
        reports_displacement=True,
    ),
)

#: Title and description of a programme of each theme, and the partner-result indicator
#: (id, unit, share of the people reached it counts) the partner reports outside IATI.
THEMES: dict[str, tuple[str, str, tuple[str, str, float]]] = {
    "slum_upgrading_housing": (
        "Incremental housing and slum upgrading",
        "Secure tenure, incremental home improvements and community savings in informal "
        "settlements.",
        ("households_upgraded", "households", 0.25 / HOUSEHOLD_SIZE),
    ),
    "basic_services": (
        "Water, sanitation and energy for informal settlements",
        "Water kiosks, shared sanitation blocks and prepaid electricity connections run with "
        "residents' committees.",
        ("households_connected", "households", 0.2 / HOUSEHOLD_SIZE),
    ),
    "resilience_climate": (
        "Flood resilience and climate adaptation",
        "Drainage, early warning and flood-proofed homes in the most exposed neighbourhoods.",
        ("households_flood_protected", "households", 0.3 / HOUSEHOLD_SIZE),
    ),
    "economy_investments": (
        "Jobs and small-business finance",
        "Credit lines, market infrastructure and training for informal-economy enterprises.",
        ("jobs_created", "jobs", 0.04),
    ),
    "women_gender_equality": (
        "Safe public spaces and livelihoods for women",
        "Lighting, safe markets and savings groups for women traders and residents.",
        ("women_led_enterprises_supported", "enterprises", 0.03),
    ),
    "migration_cities": (
        "Services for displaced people and host communities",
        "Shelter, documentation and access to city services for displaced people and their hosts.",
        ("displaced_households_assisted", "households", 0.3 / HOUSEHOLD_SIZE),
    ),
}
#: ref_themes codes that the partner.result.v1 contract spells differently.
RESULT_THEME_CODES = {"resilience_climate": "resilience_climate_change"}

#: Water utility per city and electricity distributor per city or country (ISO3).
WATER_UTILITIES = {
    "BDCGP": "Chattogram Water Supply and Sewerage Authority",
    "BDDAC": "Dhaka Water Supply and Sewerage Authority",
    "BDKHL": "Khulna Water Supply and Sewerage Authority",
    "ETADD": "Addis Ababa Water and Sewerage Authority",
    "ETDIR": "Dire Dawa Water Supply and Sewerage Authority",
    "HNSAP": "Aguas de San Pedro",
    "INBOM": "Brihanmumbai Municipal Corporation Hydraulic Engineering Department",
    "KEKIS": "Kisumu Water and Sewerage Company",
    "KEMBA": "Mombasa Water Supply and Sanitation Company",
    "KENBO": "Nairobi City Water and Sewerage Company",
    "KHPNH": "Phnom Penh Water Supply Authority",
    "MZMPM": "Águas da Região de Maputo",
    "NGLOS": "Lagos Water Corporation",
    "PEAQP": "SEDAPAR",
    "PELIM": "SEDAPAL",
    "PETRU": "SEDALIB",
    "PHCEB": "Metropolitan Cebu Water District",
    "PHDVO": "Davao City Water District",
    "PHMNL": "Maynilad Water Services",
    "SLFNA": "Guma Valley Water Company",
    "SOHGA": "Hargeisa Water Agency",
    "TZARK": "Arusha Urban Water Supply and Sanitation Authority",
    "TZDAR": "Dar es Salaam Water Supply and Sanitation Authority",
    "TZMWZ": "Mwanza Urban Water Supply and Sanitation Authority",
    "ZMKIW": "Nkana Water Supply and Sanitation Company",
    "ZMLUN": "Lusaka Water Supply, Sanitation and Sewerage Company",
    "ZMNLA": "Kafubu Water and Sewerage Company",
    "GHA": "Ghana Water Limited",
    "RWA": "Water and Sanitation Corporation",
    "UGA": "National Water and Sewerage Corporation",
}
ELECTRICITY_UTILITIES = {
    "INBOM": "Brihanmumbai Electric Supply and Transport Undertaking",
    "NGKAN": "Kano Electricity Distribution Company",
    "NGLOS": "Eko Electricity Distribution Company",
    "NGPHC": "Port Harcourt Electricity Distribution Company",
    "PHCEB": "Visayan Electric Company",
    "PHDVO": "Davao Light and Power Company",
    "PHMNL": "Manila Electric Company",
    "BGD": "Bangladesh Power Development Board",
    "ETH": "Ethiopian Electric Utility",
    "GHA": "Electricity Company of Ghana",
    "HND": "Empresa Nacional de Energía Eléctrica",
    "KEN": "Kenya Power and Lighting Company",
    "KHM": "Electricité du Cambodge",
    "MOZ": "Electricidade de Moçambique",
    "RWA": "Rwanda Energy Group",
    "SLE": "Electricity Distribution and Supply Authority",
    "TZA": "Tanzania Electric Supply Company",
    "UGA": "Umeme",
    "ZMB": "ZESCO Limited",
}

#: Displacement in a city, as shares of its population: (IDPs, refugees) ranges per country.
DISPLACEMENT_SHARES = {
    "SOM": ((0.10, 0.22), (0.0005, 0.002)),
    "ETH": ((0.01, 0.04), (0.005, 0.02)),
    "NGA": ((0.01, 0.03), (0.0005, 0.002)),
    "KEN": ((0.002, 0.008), (0.005, 0.02)),
    "UGA": ((0.002, 0.01), (0.01, 0.05)),
}
MIGRANT_SHARE = (0.002, 0.01)


def _rng(seed: int, *parts: object) -> random.Random:
    """One generator per fact, so adding a city or a partner leaves the others' values alone."""
    return random.Random(":".join(map(str, ("urbanflow-world", seed, *parts))))


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False) + "\n"


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _by_country(cities: Sequence[City]) -> dict[str, list[City]]:
    grouped: dict[str, list[City]] = {}
    for city in sorted(cities, key=lambda c: (c.country_iso3, c.code)):
        grouped.setdefault(city.country_iso3, []).append(city)
    return grouped


# ------------------------------------------------------------------ national statistics (APIs)


def national_share(cities: Sequence[City], indicator_code: str, year: int) -> float:
    """Population-weighted mean of the SDMX city values (sex total): the country's urban level."""
    weights = sum(c.population for c in cities)
    index = YEARS.index(year)
    indicator = INDICATORS_BY_CODE[indicator_code]
    total = sum(series_values(c, indicator)["_T"][index] * c.population for c in cities)
    return total / weights


@dataclass(frozen=True, slots=True)
class NationalSeries:
    """Urban slum share (sex total, female, male) and urban electricity access per country."""

    slum: dict[tuple[str, int], tuple[float, float, float]]
    electricity: dict[tuple[str, int], float]


SLUM_YEARS = (2018, 2020, 2022)  # UN-Habitat publishes slum shares every second year
ELECTRICITY_YEARS = (2018, 2019, 2020, 2021, 2022)


def national_series(cities: Sequence[City], seed: int) -> NationalSeries:
    """Slightly above the big cities' mean for slums (smaller towns fare worse), slightly above
    for electricity (the grid reaches most urban areas), with a sex gap like the SDMX feeds."""
    slum: dict[tuple[str, int], tuple[float, float, float]] = {}
    electricity: dict[tuple[str, int], float] = {}
    for iso3, members in _by_country(cities).items():
        rng = _rng(seed, "national", iso3)
        slum_offset, gap, elc_offset = rng.uniform(1, 4), rng.uniform(0.5, 2.0), rng.uniform(0, 2)
        for year in SLUM_YEARS:
            total = round(min(75.0, national_share(members, SLUM.code, year) + slum_offset), 1)
            slum[iso3, year] = (total, round(total + gap, 1), round(total - gap, 1))
        for year in ELECTRICITY_YEARS:
            share = national_share(members, ELECTRICITY.code, year) + elc_offset
            electricity[iso3, year] = round(min(100.0, share), 1)
    return NationalSeries(slum, electricity)


def _pages(items: list[Any], per_page: int) -> list[list[Any]]:
    return [items[i : i + per_page] for i in range(0, len(items), per_page)] or [[]]


WB_INDICATORS = {
    "EN.POP.SLUM.UR.ZS": "Population living in slums (% of urban population)",
    "EG.ELC.ACCS.UR.ZS": "Access to electricity, urban (% of urban population)",
}
WB_PER_PAGE = 50
WB_LAST_UPDATED = "2024-12-16"
WB_AGGREGATE = ("XM", "Low income")


def render_worldbank(cities: Sequence[City], series: NationalSeries) -> dict[str, str]:
    """World Bank API v2 pages (`[meta, observations]`), per indicator, newest year first per
    country as the API sorts them, with one income-group aggregate row (no ISO3 code)."""
    countries = {c.country_iso3: c for c in cities}
    files = {}
    for code, name in WB_INDICATORS.items():
        values: dict[tuple[str, int], float] = (
            {key: triple[0] for key, triple in series.slum.items()}
            if code.startswith("EN.POP.SLUM")
            else series.electricity
        )
        items = []
        for (iso3, year), value in sorted(values.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
            country = countries[iso3]
            items.append(
                {
                    "indicator": {"id": code, "value": name},
                    "country": {"id": country.country_iso2, "value": country.country_name},
                    "countryiso3code": iso3,
                    "date": str(year),
                    "value": value,
                    "unit": "",
                    "obs_status": "",
                    "decimal": 1,
                }
            )
        latest = max(year for _, year in values)
        mean = sum(v for (_, year), v in values.items() if year == latest) / len(countries)
        items.append(
            {
                "indicator": {"id": code, "value": name},
                "country": {"id": WB_AGGREGATE[0], "value": WB_AGGREGATE[1]},
                "countryiso3code": "",
                "date": str(latest),
                "value": round(mean, 1),
                "unit": "",
                "obs_status": "",
                "decimal": 1,
            }
        )
        pages = _pages(items, WB_PER_PAGE)
        stem = code.lower().replace(".", "_")
        for number, page in enumerate(pages, start=1):
            meta = {
                "page": number,
                "pages": len(pages),
                "per_page": WB_PER_PAGE,
                "total": len(items),
                "sourceid": "2",
                "sourcename": "World Development Indicators",
                "lastupdated": WB_LAST_UPDATED,
            }
            files[f"worldbank/{stem}_p{number}.json"] = _json([meta, page])
    return files


SDG_PAGE_SIZE = 60
SDG_SEXES = (("BOTHSEX", "_T", "Both sexes"), ("FEMALE", "F", "Female"), ("MALE", "M", "Male"))
SDG_SOURCE = "UN-Habitat Urban Indicators Database, based on census and household survey data"


def _m49_codes() -> dict[str, str]:
    """ISO3 -> M49 as the SDG API writes it (no leading zeros: Bangladesh is "50")."""
    with COUNTRIES_CSV.open(encoding="utf-8", newline="") as handle:
        return {row["country_iso3"]: str(int(row["country_m49"])) for row in csv.DictReader(handle)}


def render_unsdg(cities: Sequence[City], series: NationalSeries) -> dict[str, str]:
    """UN SDG API Series/Data pages for EN_LND_SLUM (urban, by sex): the same totals as the
    World Bank's EN.POP.SLUM.UR.ZS, which the Bank takes from UN-Habitat."""
    m49 = _m49_codes()
    countries = {c.country_iso3: c for c in cities}
    records = []
    for (iso3, year), values in sorted(series.slum.items()):
        for (api_code, _, _), value in zip(SDG_SEXES, values, strict=True):
            records.append(
                {
                    "goal": ["11"],
                    "target": ["11.1"],
                    "indicator": ["11.1.1"],
                    "series": SLUM.code,
                    "seriesDescription": "Proportion of urban population living in slums (%)",
                    "seriesCount": str(len(series.slum) * len(SDG_SEXES)),
                    "geoAreaCode": m49[iso3],
                    "geoAreaName": countries[iso3].country_name,
                    "timePeriodStart": float(year),
                    "value": f"{value:.1f}",
                    "valueType": "Float",
                    "time_detail": None,
                    "timeCoverage": None,
                    "upperBound": None,
                    "lowerBound": None,
                    "basePeriod": None,
                    "source": SDG_SOURCE,
                    "geoInfoUrl": None,
                    "footnotes": [],
                    "attributes": {"Nature": "C", "Units": "PERCENT"},
                    "dimensions": {"Location": "URBAN", "Reporting Type": "G", "Sex": api_code},
                }
            )
    code_lists = {
        "attributes": [
            {"id": "Nature", "codes": [{"code": "C", "description": "Country data", "sdmx": "C"}]},
            {
                "id": "Units",
                "codes": [{"code": "PERCENT", "description": "Percentage", "sdmx": "PT"}],
            },
        ],
        "dimensions": [
            {"id": "Location", "codes": [{"code": "URBAN", "description": "Urban", "sdmx": "U"}]},
            {
                "id": "Reporting Type",
                "codes": [{"code": "G", "description": "Global", "sdmx": "G"}],
            },
            {
                "id": "Sex",
                "codes": [
                    {"code": api, "description": name, "sdmx": sdmx}
                    for api, sdmx, name in SDG_SEXES
                ],
            },
        ],
    }
    pages = _pages(records, SDG_PAGE_SIZE)
    return {
        f"unsdg/en_lnd_slum_p{number}.json": _json(
            {
                "size": SDG_PAGE_SIZE,
                "totalElements": len(records),
                "totalPages": len(pages),
                "pageNumber": number,
                **code_lists,
                "data": page,
            }
        )
        for number, page in enumerate(pages, start=1)
    }


# ------------------------------------------------------------------------------- programmes


def load_sector_themes(path: Path = SECTOR_THEMES_CSV) -> dict[str, list[tuple[str, str]]]:
    """theme -> [(DAC purpose code, name)], from the seed dbt maps IATI sectors with."""
    themes: dict[str, list[tuple[str, str]]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            themes.setdefault(row["theme_code"], []).append(
                (row["sector_code"], row["sector_name"])
            )
    return themes


#: IATI OrganisationType codes of the co-financiers an activity may attract besides its donor.
LOCAL_GOVERNMENT, MULTILATERAL, PRIVATE_SECTOR = "11", "40", "70"
#: Regional development banks (IATI ref, name) by the ISO3 codes they lend in; AfDB elsewhere.
DEVELOPMENT_BANKS = (
    (("BGD", "IND", "KHM", "PHL"), "46004", "Asian Development Bank"),
    (("HND", "PER"), "XI-IATI-IADB", "Inter-American Development Bank"),
    ((), "46002", "African Development Bank"),
)
PRIVATE_INVESTORS = (
    ("GB-COH-11223344", "Inclusive Cities Impact Fund"),
    ("NL-KVK-87654321", "Shelter Finance Partners"),
)
#: Share of activities with co-financing, and a co-financier's commitment as a share of the
#: partner's own (development banks lend more than city budgets or investors can).
CO_FINANCED_SHARE = 0.5
CO_FINANCING_SHARES = {
    LOCAL_GOVERNMENT: (0.05, 0.3),
    MULTILATERAL: (0.3, 1.2),
    PRIVATE_SECTOR: (0.05, 0.4),
}


@dataclass(frozen=True, slots=True)
class IncomingTransaction:
    """Money coming into an activity: IATI transaction type 1 incoming funds, 11 incoming
    commitment or 13 incoming pledge, with its provider-org (ref, type, name)."""

    type_code: str
    date: str
    value: int
    provider: tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Activity:
    """One partner's programme in one city, with the figures every file about it shares."""

    partner: Partner
    city: City
    theme: str
    identifier: str
    sectors: tuple[tuple[str, int], ...]  # (DAC code, percentage)
    start: str
    end: str
    last_updated: str
    commitment: int
    disbursements: tuple[tuple[str, int], ...]  # (date, USD)
    reached: dict[int, tuple[int, int]]  # year -> (female, male)
    incoming: tuple[IncomingTransaction, ...] = ()  # the donor's grant, then any co-financing


def _incoming(
    partner: Partner, city: City, commitment: int, start: str, seed: int
) -> tuple[IncomingTransaction, ...]:
    """The donor's grant (the partner's own funding, not leveraged) and, for about half of the
    activities, co-financing from the city government, a development bank or private investors:
    incoming commitments, two tranches of incoming funds (together sometimes above the
    commitment) and, from banks, pledges of more."""
    donor = IncomingTransaction("1", start, commitment, partner.funder)
    rng = _rng(seed, "co-financing", partner.slug, city.code)
    if rng.random() >= CO_FINANCED_SHARE:
        return (donor,)
    _, bank_ref, bank_name = next(
        b for b in DEVELOPMENT_BANKS if city.country_iso3 in b[0] or not b[0]
    )
    investor_ref, investor_name = rng.choice(PRIVATE_INVESTORS)
    candidates = (
        (f"{city.country_iso2}-LG-{city.code}", LOCAL_GOVERNMENT, f"{city.name} City Government"),
        (bank_ref, MULTILATERAL, bank_name),
        (investor_ref, PRIVATE_SECTOR, investor_name),
    )
    incoming = [donor]
    for provider in rng.sample(candidates, k=rng.randint(1, len(candidates))):
        low, high = CO_FINANCING_SHARES[provider[1]]
        committed = int(round(commitment * rng.uniform(low, high), -3))
        if provider[1] != PRIVATE_SECTOR:  # investors pay in without committing first
            date = f"2023-{rng.randint(1, 6):02d}-15"
            incoming.append(IncomingTransaction("11", date, committed, provider))
        for year, (first, last) in ((2023, (7, 12)), (2024, (1, 9))):
            tranche = int(round(committed * rng.uniform(0.3, 0.6), -3))
            date = f"{year}-{rng.randint(first, last):02d}-01"
            incoming.append(IncomingTransaction("1", date, tranche, provider))
        if provider[1] == MULTILATERAL and rng.random() < 0.5:
            pledge = int(round(committed * rng.uniform(0.2, 0.5), -3))
            date = f"2024-{rng.randint(6, 11):02d}-30"
            incoming.append(IncomingTransaction("13", date, pledge, provider))
    return tuple(incoming)


def plan_activities(cities: Sequence[City], seed: int) -> list[Activity]:
    """One activity per partner and city of its countries; reach is split between the partners
    working in a city so that together they reach 0.5-5 % of its people a year."""
    sector_themes = load_sector_themes()
    by_country = _by_country(cities)
    per_city: dict[str, int] = {}
    for partner in PARTNERS:
        for iso3 in partner.countries:
            for city in by_country[iso3]:
                per_city[city.code] = per_city.get(city.code, 0) + 1
    activities = []
    for number, partner in enumerate(PARTNERS):
        mine = [c for iso3 in partner.countries for c in by_country[iso3]]
        for index, city in enumerate(sorted(mine, key=lambda c: c.code)):
            rng = _rng(seed, "activity", partner.slug, city.code)
            theme = partner.themes[index % len(partner.themes)]
            options = sector_themes[theme]
            chosen = rng.sample(options, k=min(2, len(options)))
            main = rng.choice((60, 70, 80, 100)) if len(chosen) > 1 else 100
            sectors = ((chosen[0][0], main),) + (
                ((chosen[1][0], 100 - main),) if main < 100 else ()
            )
            low, high = COMMITMENT_USD
            cap = min(high, max(2 * low, 2 * city.population))
            commitment = round(rng.uniform(low, cap), -3)
            paid_share = rng.uniform(0.45, 0.9)
            weights = [rng.uniform(1, 3) for _ in range(3)]
            paid = [int(commitment * paid_share * w / sum(weights)) for w in weights]
            dates = ("2023-03-15", "2023-10-02", "2024-05-20")
            low_share, high_share = (bound / per_city[city.code] for bound in REACH_SHARE)
            share = rng.uniform(low_share * 1.02, high_share * 0.98)  # margin for rounding
            reached = {}
            for year in RESULT_YEARS:
                people = city.population * min(high_share * 0.98, share)
                female = round(people * rng.uniform(0.5, 0.58))
                reached[year] = (female, round(people) - female)
                share *= rng.uniform(1.05, 1.3)
            start = f"2022-{rng.randint(7, 12):02d}-01"
            activities.append(
                Activity(
                    partner=partner,
                    city=city,
                    theme=theme,
                    identifier=f"{partner.ref}-{city.code}-{index + 1:02d}",
                    sectors=sectors,
                    start=start,
                    end=f"{rng.choice((2025, 2026, 2027))}-12-31",
                    last_updated=(
                        f"2025-01-{10 + number:02d}T{rng.randint(8, 17):02d}:"
                        f"{rng.randint(0, 59):02d}:00Z"
                    ),
                    commitment=int(commitment),
                    disbursements=tuple(zip(dates, paid, strict=True)),
                    reached=reached,
                    incoming=_incoming(partner, city, int(commitment), start, seed),
                )
            )
    return activities


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k.replace("_", "-"): v for k, v in attributes.items()})
    if text is not None:
        ET.SubElement(element, "narrative").text = text
    return element


def _measure(parent: ET.Element, kind: str, value: int, city: str, sex: str | None) -> None:
    element = _sub(parent, kind, value=str(value))
    _sub(element, "location", ref=city)
    if sex:
        _sub(element, "dimension", name="sex", value=sex)


def _activity_xml(root: ET.Element, activity: Activity) -> None:
    partner, city = activity.partner, activity.city
    title, description, _ = THEMES[activity.theme]
    element = _sub(
        root,
        "iati-activity",
        last_updated_datetime=activity.last_updated,
        default_currency="USD",
        humanitarian="1" if partner.humanitarian else "0",
        hierarchy="1",
    )
    element.set("xml:lang", "en")
    ET.SubElement(element, "iati-identifier").text = activity.identifier
    _sub(element, "reporting-org", partner.name, ref=partner.ref, type=partner.org_type)
    _sub(element, "title", f"{title}, {city.name}")
    _sub(element, "description", description, type="1")
    funder_ref, funder_type, funder_name = partner.funder
    _sub(element, "participating-org", funder_name, ref=funder_ref, type=funder_type, role="1")
    _sub(
        element, "participating-org", partner.name, ref=partner.ref, type=partner.org_type, role="4"
    )
    _sub(element, "activity-status", code="2")
    for date_type, date in (("1", activity.start), ("2", activity.start), ("3", activity.end)):
        _sub(element, "activity-date", type=date_type, iso_date=date)
    _sub(element, "recipient-country", code=city.country_iso2, percentage="100")
    location = _sub(element, "location", ref=city.code)
    _sub(location, "name", city.name)
    point = _sub(location, "point", srsName="http://www.opengis.net/def/crs/EPSG/0/4326")
    ET.SubElement(point, "pos").text = f"{city.latitude:.4f} {city.longitude:.4f}"
    for code, percentage in activity.sectors:
        _sub(element, "sector", vocabulary="1", code=code, percentage=str(percentage))
    transactions = [
        ("2", activity.start, activity.commitment),
        *(("3", date, value) for date, value in activity.disbursements),
    ]
    for type_code, date, value in transactions:
        transaction = _sub(element, "transaction")
        _sub(transaction, "transaction-type", code=type_code)
        _sub(transaction, "transaction-date", iso_date=date)
        ET.SubElement(transaction, "value", {"value-date": date}).text = str(value)
    for incoming in activity.incoming:
        transaction = _sub(element, "transaction")
        _sub(transaction, "transaction-type", code=incoming.type_code)
        _sub(transaction, "transaction-date", iso_date=incoming.date)
        value = ET.SubElement(transaction, "value", {"value-date": incoming.date})
        value.text = str(incoming.value)
        provider_ref, provider_type, provider_name = incoming.provider
        _sub(transaction, "provider-org", provider_name, ref=provider_ref, type=provider_type)
        _sub(transaction, "receiver-org", partner.name, ref=partner.ref, type=partner.org_type)
    result = _sub(element, "result", type="1", aggregation_status="1")
    _sub(result, "title", "People reached")
    indicators = [("Number of people reached", False)]
    if activity.theme == "women_gender_equality":
        indicators.append(("Number of women reached", True))
    for indicator_title, women_only in indicators:
        indicator = _sub(result, "indicator", measure="1", ascending="1")
        _sub(indicator, "title", indicator_title)
        for year in RESULT_YEARS:
            female, male = activity.reached[year]
            period = _sub(indicator, "period")
            _sub(period, "period-start", iso_date=f"{year}-01-01")
            _sub(period, "period-end", iso_date=f"{year}-12-31")
            target = female if women_only else female + male
            _measure(
                period,
                "target",
                int(round(target * 1.1, -1)),
                city.code,
                "female" if women_only else None,
            )
            _measure(period, "actual", female, city.code, "female")
            if not women_only:
                _measure(period, "actual", male, city.code, "male")


def render_iati(activities: Sequence[Activity]) -> dict[str, str]:
    """One IATI 2.03 activity file per partner."""
    files = {}
    for partner in PARTNERS:
        root = ET.Element(
            "iati-activities", {"version": "2.03", "generated-datetime": "2025-01-20T06:00:00Z"}
        )
        for activity in activities:
            if activity.partner is partner:
                _activity_xml(root, activity)
        ET.indent(root, space=" ")
        body = ET.tostring(root, encoding="unicode")
        files[f"iati/{partner.slug}.xml"] = f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
    return files


def render_partner_results(activities: Sequence[Activity], seed: int) -> dict[str, str]:
    """partner.result.v1 upload files: per activity and year, its theme's own indicator and the
    co-financing it leveraged, none of which the IATI results carry."""
    header = ("activity_id", "city_code", "theme", "indicator", "period", "value", "unit", "sex")
    files = {}
    for partner in PARTNERS:
        rows = []
        for activity in (a for a in activities if a.partner is partner):
            rng = _rng(seed, "results", activity.identifier)
            indicator, unit, per_person = THEMES[activity.theme][2]
            theme = RESULT_THEME_CODES.get(activity.theme, activity.theme)
            for year in RESULT_YEARS:
                people = sum(activity.reached[year])
                leveraged = round(activity.commitment * rng.uniform(0.05, 0.25), -3)
                for code, value, value_unit in (
                    (indicator, round(people * per_person * rng.uniform(0.8, 1.2)), unit),
                    ("funds_leveraged_usd", int(leveraged), "USD"),
                ):
                    row = (activity.identifier, activity.city.code, theme, code, str(year))
                    rows.append((*row, value, value_unit, "total"))
        files[f"partner_results/{partner.slug}.csv"] = _csv(header, rows)
    return files


# --------------------------------------------------------------------------- displacement (HXL)

HXL_COLUMNS = (
    ("Country", "#country+name"),
    ("Country ISO3", "#country+code"),
    ("City", "#loc+name"),
    ("City UN/LOCODE", "#loc+code"),
    ("Reporting date", "#date+reported"),
    ("IDP individuals", "#affected+idps"),
    ("IDP women and girls", "#affected+idps+f"),
    ("IDP men and boys", "#affected+idps+m"),
    ("IDP children (0-17)", "#affected+idps+children"),
    ("Refugees", "#affected+refugees"),
    ("Refugee women and girls", "#affected+refugees+f"),
    ("Refugee men and boys", "#affected+refugees+m"),
    ("Migrants", "#affected+migrants"),
    ("Round", "#meta+round"),
)


def _split(total: int, rng: random.Random, share: tuple[float, float]) -> tuple[int, int]:
    part = round(total * rng.uniform(*share))
    return part, total - part


def render_hxl(cities: Sequence[City], seed: int) -> dict[str, str]:
    """IOM-DTM-style rounds per city: IDPs and refugees by sex (female + male = total), IDP
    children, migrants; figures drift a little from round to round."""
    by_country = _by_country(cities)
    files = {}
    for partner in (p for p in PARTNERS if p.reports_displacement):
        rows = []
        for iso3 in partner.countries:
            idp_share, refugee_share = DISPLACEMENT_SHARES[iso3]
            for city in by_country[iso3]:
                rng = _rng(seed, "hxl", partner.slug, city.code)
                levels = [
                    city.population * rng.uniform(*idp_share),
                    city.population * rng.uniform(*refugee_share),
                    city.population * rng.uniform(*MIGRANT_SHARE),
                ]
                for number, date in enumerate(HXL_ROUNDS, start=1):
                    levels = [level * rng.uniform(0.96, 1.06) for level in levels]
                    idps, refugees, migrants = (round(level) for level in levels)
                    idp_f, idp_m = _split(idps, rng, (0.51, 0.56))
                    refugee_f, refugee_m = _split(refugees, rng, (0.5, 0.55))
                    children = round(idps * rng.uniform(0.5, 0.6))
                    location = f"{city.code[:2]} {city.code[2:]}"  # as UN/LOCODE prints it
                    place = (city.country_name, iso3, city.name, location, date)
                    idp = (idps, idp_f, idp_m, children)
                    rows.append((*place, *idp, refugees, refugee_f, refugee_m, migrants, number))
        header = [name for name, _ in HXL_COLUMNS]
        text = _csv(header, [[tag for _, tag in HXL_COLUMNS], *rows])
        files[f"hxl/{partner.slug}.csv"] = text
    return files


# -------------------------------------------------------------------------------- utilities

#: The columns the utilities source requires, then the optional one (water losses).
KPI_HEADER = (*KPI_REQUIRED_COLUMNS, *KPI_OPTIONAL_COLUMNS)
#: A utility's coverage (share of residents it serves) sits this far above the SDMX share of
#: safely managed water (which also requires quality and on-premises access), and this close to
#: the SDMX electricity access share.
WATER_COVERAGE_ABOVE_SAFE = (4.0, 14.0)
ELECTRICITY_COVERAGE_OFFSET = (-2.0, 1.0)


def utility_name(city: City, names: dict[str, str], service: str) -> str:
    return names.get(city.code) or names.get(city.country_iso3) or f"{city.name} {service} utility"


def latest_sdmx_share(city: City, indicator_code: str) -> float:
    """The city's latest SDMX value (sex total) for the series."""
    return series_values(city, INDICATORS_BY_CODE[indicator_code])["_T"][-1]


@dataclass(frozen=True, slots=True)
class UtilityPlan:
    """A city utility's baseline, around which its monthly figures vary."""

    city: City
    service: str
    utility: str
    coverage_pct: float
    hours: float
    max_hours: float
    non_revenue_water_pct: float | None  # water only
    people_per_connection: float


def plan_utilities(cities: Sequence[City], seed: int) -> list[UtilityPlan]:
    plans = []
    for city in sorted(cities, key=lambda c: c.code):
        rng = _rng(seed, "kpi", city.code)
        safe_water = latest_sdmx_share(city, WATER.code)
        access = latest_sdmx_share(city, ELECTRICITY.code)
        plans.append(
            UtilityPlan(
                city,
                "water",
                utility_name(city, WATER_UTILITIES, "water"),
                min(99.0, safe_water + rng.uniform(*WATER_COVERAGE_ABOVE_SAFE)),
                rng.uniform(8, 21),
                22.0,
                rng.uniform(25, 52),
                rng.uniform(6, 10),  # shared yard taps and kiosks
            )
        )
        plans.append(
            UtilityPlan(
                city,
                "electricity",
                utility_name(city, ELECTRICITY_UTILITIES, "electricity"),
                access + rng.uniform(*ELECTRICITY_COVERAGE_OFFSET),
                rng.uniform(14, 23),
                24.0,
                None,
                rng.uniform(3.5, 4.8),  # one meter per household
            )
        )
    return plans


def render_kpis(cities: Sequence[City], seed: int) -> dict[str, str]:
    """Twelve monthly drops, a water and an electricity row per city, coverage creeping up from
    the city's latest SDMX level, supply hours and losses varying a little month to month."""
    plans = plan_utilities(cities, seed)
    files = {}
    for month in range(1, 13):
        rows = []
        for plan in plans:
            rng = _rng(seed, "kpi", plan.city.code, plan.service, month)
            coverage = min(99.5, plan.coverage_pct + 0.05 * (month - 1) + rng.uniform(-0.2, 0.2))
            hours = min(plan.max_hours, plan.hours + rng.uniform(-1.5, 1.0))
            losses = plan.non_revenue_water_pct
            connections = round(plan.city.population * coverage / 100 / plan.people_per_connection)
            nrw = "" if losses is None else f"{losses + rng.uniform(-1.5, 1.5):.1f}"
            row = (plan.city.code, plan.utility, plan.service, f"{KPI_YEAR}-{month:02d}")
            rows.append((*row, f"{coverage:.1f}", f"{hours:.1f}", connections, nrw))
        files[f"utilities/kpi_{KPI_YEAR}_{month:02d}.csv"] = _csv(KPI_HEADER, rows)
    return files


# ------------------------------------------------------------------------------------ world


def render_world(cities: Sequence[City], seed: int = DEFAULT_SEED) -> dict[str, str]:
    """Relative path -> content of every generated file except the SDMX feeds."""
    series = national_series(cities, seed)
    activities = plan_activities(cities, seed)
    return {
        **render_worldbank(cities, series),
        **render_unsdg(cities, series),
        **render_iati(activities),
        **render_partner_results(activities, seed),
        **render_hxl(cities, seed),
        **render_kpis(cities, seed),
        **render_hazards(cities, seed),
    }


def write_world(
    out_dir: Path, seed: int = DEFAULT_SEED, cities_csv: Path = CITIES_CSV
) -> dict[Path, int]:
    """Write the SDMX feeds and every other sample file under `out_dir`: path -> bytes."""
    written = {path: path.stat().st_size for path in write_feeds(out_dir / "sdmx", cities_csv)}
    for name, text in render_world(load_cities(cities_csv), seed).items():
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        path.write_bytes(data)
        written[path] = len(data)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument("--cities", type=Path, default=CITIES_CSV, help="city reference CSV")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    written = write_world(args.out, args.seed, args.cities)
    folders = sorted({path.parent.name for path in written})
    print(
        f"wrote {len(written)} sample files ({sum(written.values()) / 1024:.0f} KiB; "
        f"{', '.join(folders)}) to {args.out} with seed {args.seed} "
        f"in {time.perf_counter() - started:.2f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
