"""World Bank API v2 pages of the sample world: national urban slum and electricity shares."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.reference import City
from connectors.samples.common import json_text, paginate
from connectors.samples.national import NationalSeries

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
        pages = paginate(items, WB_PER_PAGE)
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
            files[f"worldbank/{stem}_p{number}.json"] = json_text([meta, page])
    return files
