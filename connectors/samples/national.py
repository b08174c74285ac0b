"""National urban levels of the sample world: what the World Bank and UN SDG pages publish.

A country's urban slum share and urban electricity access are the population-weighted means of
its cities' SDMX values (`connectors.samples.sdmx_feeds`), a little off as national figures are,
so the national APIs and the city feeds of the sample world agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connectors.reference import City
from connectors.samples.common import cities_by_country, seeded
from connectors.samples.sdmx_feeds import (
    ELECTRICITY,
    INDICATORS_BY_CODE,
    SLUM,
    YEARS,
    series_values,
)


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
    for iso3, members in cities_by_country(cities).items():
        rng = seeded(seed, "national", iso3)
        slum_offset, gap, elc_offset = rng.uniform(1, 4), rng.uniform(0.5, 2.0), rng.uniform(0, 2)
        for year in SLUM_YEARS:
            total = round(min(75.0, national_share(members, SLUM.code, year) + slum_offset), 1)
            slum[iso3, year] = (total, round(total + gap, 1), round(total - gap, 1))
        for year in ELECTRICITY_YEARS:
            share = national_share(members, ELECTRICITY.code, year) + elc_offset
            electricity[iso3, year] = round(min(100.0, share), 1)
    return NationalSeries(slum, electricity)
