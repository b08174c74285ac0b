"""UN SDG API Series/Data pages of the sample world: urban slum shares by sex (EN_LND_SLUM)."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.reference import City, load_countries
from connectors.samples.common import json_text, paginate
from connectors.samples.national import NationalSeries
from connectors.samples.sdmx_feeds import SLUM

SDG_PAGE_SIZE = 60
SDG_SEXES = (("BOTHSEX", "_T", "Both sexes"), ("FEMALE", "F", "Female"), ("MALE", "M", "Male"))
SDG_SOURCE = "UN-Habitat Urban Indicators Database, based on census and household survey data"


def m49_codes() -> dict[str, str]:
    """ISO3 -> M49 as the SDG API writes it (no leading zeros: Bangladesh is "50")."""
    return {country.iso3: str(int(country.m49)) for country in load_countries()}


def render_unsdg(cities: Sequence[City], series: NationalSeries) -> dict[str, str]:
    """UN SDG API Series/Data pages for EN_LND_SLUM (urban, by sex): the same totals as the
    World Bank's EN.POP.SLUM.UR.ZS, which the Bank takes from UN-Habitat."""
    m49 = m49_codes()
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
    pages = paginate(records, SDG_PAGE_SIZE)
    return {
        f"unsdg/en_lnd_slum_p{number}.json": json_text(
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
