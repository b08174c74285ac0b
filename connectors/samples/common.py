"""What every part of the sample world shares: one seeded generator per fact, the file formats.

`seeded(seed, *parts)` gives each fact (a city's KPI month, a partner's activity ...) its own
generator, so adding a city or a partner leaves every other value alone.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Sequence
from typing import Any

from connectors.reference import City


def seeded(seed: int, *parts: object) -> random.Random:
    """One generator per fact, so adding a city or a partner leaves the others' values alone."""
    return random.Random(":".join(map(str, ("urbanflow-world", seed, *parts))))


def json_text(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False) + "\n"


def csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def cities_by_country(cities: Sequence[City]) -> dict[str, list[City]]:
    grouped: dict[str, list[City]] = {}
    for city in sorted(cities, key=lambda c: (c.country_iso3, c.code)):
        grouped.setdefault(city.country_iso3, []).append(city)
    return grouped


def paginate(items: list[Any], per_page: int) -> list[list[Any]]:
    return [items[i : i + per_page] for i in range(0, len(items), per_page)] or [[]]
