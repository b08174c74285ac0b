"""partner.result.v1 uploads of the sample world: what partners report outside IATI.

Indicators the IATI files do not carry (households upgraded, funds leveraged ...), so nothing
is counted twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from connectors.samples.common import csv_text, seeded
from connectors.samples.iati import RESULT_YEARS, Activity
from connectors.samples.partners import PARTNERS, RESULT_THEME_CODES, THEMES


def render_partner_results(activities: Sequence[Activity], seed: int) -> dict[str, str]:
    """partner.result.v1 upload files: per activity and year, its theme's own indicator and the
    co-financing it leveraged, none of which the IATI results carry."""
    header = ("activity_id", "city_code", "theme", "indicator", "period", "value", "unit", "sex")
    files = {}
    for partner in PARTNERS:
        rows = []
        for activity in (a for a in activities if a.partner is partner):
            rng = seeded(seed, "results", activity.identifier)
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
        files[f"partner_results/{partner.slug}.csv"] = csv_text(header, rows)
    return files
