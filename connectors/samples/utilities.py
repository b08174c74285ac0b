"""Monthly utility KPI drops of the sample world: each city's water and electricity utility.

Coverage is in line with the SDMX water and electricity shares of the city, supply hours and
losses vary a little month to month.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connectors.reference import City
from connectors.samples.common import csv_text, seeded
from connectors.samples.sdmx_feeds import ELECTRICITY, INDICATORS_BY_CODE, WATER, series_values
from connectors.sources.utilities.settings import KPI_OPTIONAL_COLUMNS, KPI_REQUIRED_COLUMNS

KPI_YEAR = 2024

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
        rng = seeded(seed, "kpi", city.code)
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
            rng = seeded(seed, "kpi", plan.city.code, plan.service, month)
            coverage = min(99.5, plan.coverage_pct + 0.05 * (month - 1) + rng.uniform(-0.2, 0.2))
            hours = min(plan.max_hours, plan.hours + rng.uniform(-1.5, 1.0))
            losses = plan.non_revenue_water_pct
            connections = round(plan.city.population * coverage / 100 / plan.people_per_connection)
            nrw = "" if losses is None else f"{losses + rng.uniform(-1.5, 1.5):.1f}"
            row = (plan.city.code, plan.utility, plan.service, f"{KPI_YEAR}-{month:02d}")
            rows.append((*row, f"{coverage:.1f}", f"{hours:.1f}", connections, nrw))
        files[f"utilities/kpi_{KPI_YEAR}_{month:02d}.csv"] = csv_text(KPI_HEADER, rows)
    return files
