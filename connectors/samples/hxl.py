"""HXL files of the sample world: the displacement partner's IOM-DTM-style counts per city."""

from __future__ import annotations

import random
from collections.abc import Sequence

from connectors.reference import City
from connectors.samples.common import cities_by_country, csv_text, seeded
from connectors.samples.partners import PARTNERS

HXL_ROUNDS = ("2024-03-31", "2024-06-30", "2024-09-30", "2024-12-31")

#: Displacement in a city, as shares of its population: (IDPs, refugees) ranges per country.
DISPLACEMENT_SHARES = {
    "SOM": ((0.10, 0.22), (0.0005, 0.002)),
    "ETH": ((0.01, 0.04), (0.005, 0.02)),
    "NGA": ((0.01, 0.03), (0.0005, 0.002)),
    "KEN": ((0.002, 0.008), (0.005, 0.02)),
    "UGA": ((0.002, 0.01), (0.01, 0.05)),
}
MIGRANT_SHARE = (0.002, 0.01)

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
    by_country = cities_by_country(cities)
    files = {}
    for partner in (p for p in PARTNERS if p.reports_displacement):
        rows = []
        for iso3 in partner.countries:
            idp_share, refugee_share = DISPLACEMENT_SHARES[iso3]
            for city in by_country[iso3]:
                rng = seeded(seed, "hxl", partner.slug, city.code)
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
        text = csv_text(header, [[tag for _, tag in HXL_COLUMNS], *rows])
        files[f"hxl/{partner.slug}.csv"] = text
    return files
