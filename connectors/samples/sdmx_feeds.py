"""Bundled SDMX sample feeds: one message per national statistics office, seeded and deterministic.

`python -m connectors.samples.sdmx_feeds [--out DIR]` reads the city reference list
(`ref_cities.csv` in UF_REFERENCE_DIR) and writes city-level SDG series (11.1.1 slums,
6.1.1 water, 6.2.1 sanitation, 7.1.1 electricity, 1.4.2 secure tenure, 11.6.1 waste collection)
for 2018-2023, alternating SDMX-JSON 2.0 and SDMX-CSV 2.0 (some CSV in `CODE: Name` label mode),
so the demo and tests exercise every format offline. The values are synthetic but plausible, and
a city's tenure and waste figures follow its slum and service levels; re-running gives
byte-identical files.
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

from connectors.errors import ConfigError
from connectors.reference import City, load_cities
from connectors.settings import Settings

SEED = "urbanflow-sdmx-samples-v1"
YEARS = tuple(range(2018, 2024))
PROVISIONAL_YEAR = YEARS[-1]  # latest year published as estimates (OBS_STATUS=E)
DATAFLOW_ID = "DF_CITY_SDG"
DATAFLOW_VERSION = "1.0"
DATAFLOW_NAME = "City-level SDG indicators"
PREPARED = "2024-06-30T00:00:00Z"
JSON_SCHEMA_URL = (
    "https://raw.githubusercontent.com/sdmx-twg/sdmx-json/master/data-message/tools/schemas/"
    "2.0.0/sdmx-json-data-schema.json"
)

# Code lists shared by the JSON structure names and the CSV label mode.
COMPONENT_NAMES = {
    "FREQ": "Frequency",
    "REF_AREA": "Reference area",
    "CITY": "City",
    "SERIES": "SDG series",
    "SEX": "Sex",
    "TIME_PERIOD": "Time period",
    "OBS_VALUE": "Observation value",
    "UNIT_MEASURE": "Unit of measure",
    "UNIT_MULT": "Unit multiplier",
    "OBS_STATUS": "Observation status",
    "SOURCE_DETAIL": "Source details",
}
FREQ = ("A", "Annual")
UNIT_MEASURE = ("PT", "Percent")
UNIT_MULT = ("0", "Units")
SEX_NAMES = {"_T": "Total", "F": "Female", "M": "Male"}
OBS_STATUS_NAMES = {"A": "Normal value", "E": "Estimated value", "M": "Missing value"}


@dataclass(frozen=True, slots=True)
class Office:
    """A national statistics office: the SDMX agency that publishes one country's feed."""

    agency: str
    name: str


OFFICES: dict[str, Office] = {
    "BGD": Office("BBS", "Bangladesh Bureau of Statistics"),
    "ETH": Office("ESS_ET", "Ethiopian Statistics Service"),
    "GHA": Office("GSS", "Ghana Statistical Service"),
    "HND": Office("INE_HN", "Instituto Nacional de Estadística (Honduras)"),
    "IND": Office("MOSPI", "Ministry of Statistics and Programme Implementation (India)"),
    "KEN": Office("KNBS", "Kenya National Bureau of Statistics"),
    "KHM": Office("NIS_KH", "National Institute of Statistics (Cambodia)"),
    "MOZ": Office("INE_MZ", "Instituto Nacional de Estatística (Mozambique)"),
    "NGA": Office("NBS_NG", "National Bureau of Statistics (Nigeria)"),
    "PER": Office("INEI", "Instituto Nacional de Estadística e Informática (Peru)"),
    "PHL": Office("PSA", "Philippine Statistics Authority"),
    "RWA": Office("NISR", "National Institute of Statistics of Rwanda"),
    "SLE": Office("SSL", "Statistics Sierra Leone"),
    "SOM": Office("SNBS", "Somalia National Bureau of Statistics"),
    "TZA": Office("NBS_TZ", "National Bureau of Statistics (Tanzania)"),
    "UGA": Office("UBOS", "Uganda Bureau of Statistics"),
    "ZMB": Office("ZAMSTAT", "Zambia Statistics Agency"),
}


@dataclass(frozen=True, slots=True)
class Indicator:
    """An SDG series and the range its synthetic values are drawn from.

    With `follows`, a city's 2018 level is the weighted sum of its 2018 totals of those series plus
    a draw from `start`, so related indicators of one city agree (tenure with slums, waste
    collection with the other services)."""

    code: str
    name: str
    bounds: tuple[float, float]  # plausible range for a city, in percent
    start: tuple[float, float]  # 2018 level for a capital or megacity (offset when `follows`)
    trend: tuple[float, float]  # percentage points per year
    secondary_shift: float  # secondary cities start this far from the capital's level
    female_gap: float  # female minus total, times 0.4-2.0, when by sex; 0 = total only
    source: str
    follows: tuple[tuple[str, float], ...] = ()  # (series code, weight) of the same city


INDICATORS = (
    Indicator(
        "EN_LND_SLUM",
        "Proportion of urban population living in slums (SDG 11.1.1)",
        (20.0, 70.0),
        (28.0, 58.0),
        (-1.2, -0.3),
        6.0,
        1.0,
        "household survey, UN-Habitat slum household definition",
    ),
    Indicator(
        "SH_H2O_SAFE",
        "Proportion of population using safely managed drinking water services (SDG 6.1.1)",
        (20.0, 90.0),
        (35.0, 80.0),
        (0.4, 1.8),
        -9.0,
        0.0,
        "household survey, WHO/UNICEF JMP drinking water ladder",
    ),
    Indicator(
        "SH_SAN_SAFE",
        "Proportion of population using safely managed sanitation services (SDG 6.2.1)",
        (10.0, 70.0),
        (18.0, 58.0),
        (0.3, 1.5),
        -7.0,
        0.0,
        "household survey, WHO/UNICEF JMP sanitation ladder",
    ),
    Indicator(
        "EG_ELC_ACCS",
        "Proportion of population with access to electricity (SDG 7.1.1)",
        (40.0, 99.0),
        (62.0, 94.0),
        (0.8, 2.4),
        -10.0,
        -1.0,
        "household survey and utility connection records",
    ),
    Indicator(
        "SP_LGL_LNDDOC",
        "Proportion of adults with legally recognized documentation of their rights to land "
        "(SDG 1.4.2)",
        (15.0, 90.0),
        (78.0, 92.0),
        (0.3, 1.2),
        0.0,
        -3.0,
        "household survey and land registry records, SDG 1.4.2 methodology",
        follows=(("EN_LND_SLUM", -0.8),),
    ),
    Indicator(
        "SP_LGL_LNDSTR",
        "Proportion of adults who perceive their rights to land as secure (SDG 1.4.2)",
        (20.0, 95.0),
        (6.0, 16.0),
        (0.2, 0.9),
        0.0,
        -2.0,
        "household survey, SDG 1.4.2 perception module",
        follows=(("SP_LGL_LNDDOC", 1.0),),
    ),
    Indicator(
        "EN_REF_WASCOL",
        "Proportion of municipal solid waste collected and managed in controlled facilities "
        "(SDG 11.6.1)",
        (10.0, 90.0),
        (-12.0, 0.0),
        (0.5, 2.0),
        -4.0,
        0.0,
        "municipal solid waste records, UN-Habitat Waste Wise Cities Tool",
        follows=(("SH_H2O_SAFE", 0.35), ("SH_SAN_SAFE", 0.35), ("EG_ELC_ACCS", 0.3)),
    ),
)
INDICATORS_BY_CODE = {indicator.code: indicator for indicator in INDICATORS}
SLUM, WATER, ELECTRICITY = (
    INDICATORS_BY_CODE[code] for code in ("EN_LND_SLUM", "SH_H2O_SAFE", "EG_ELC_ACCS")
)


@dataclass(frozen=True, slots=True)
class DataPoint:
    """One generated data point, before it is written as JSON or CSV."""

    city: City
    indicator: Indicator
    sex: str
    year: int
    value: float | None
    status: str


def series_values(city: City, indicator: Indicator) -> dict[str, list[float]]:
    """Yearly values (one per YEARS) by sex code: a city-specific level and trend, small noise,
    clipped to bounds. Public so other sample sources can agree with these feeds."""
    rng = random.Random(f"{SEED}:{city.code}:{indicator.code}")
    low, high = indicator.bounds
    level = rng.uniform(*indicator.start) + (indicator.secondary_shift if city.is_secondary else 0)
    level += sum(
        weight * series_values(city, INDICATORS_BY_CODE[code])["_T"][0]
        for code, weight in indicator.follows
    )
    slope = rng.uniform(*indicator.trend)

    def clip(value: float) -> float:
        return round(min(high, max(low, value)), 1)

    totals = [level + slope * i + rng.uniform(-0.4, 0.4) for i in range(len(YEARS))]
    values = {"_T": [clip(total) for total in totals]}
    if indicator.female_gap:
        gap = indicator.female_gap * rng.uniform(0.4, 2.0)
        values["F"] = [clip(total + gap) for total in totals]
        values["M"] = [clip(total - gap) for total in totals]
    return values


def _observations(office: Office, cities: list[City]) -> list[DataPoint]:
    """All observations of one office, in file order, with one reported-missing value."""
    observations = []
    for city in cities:
        for indicator in INDICATORS:
            for sex, values in series_values(city, indicator).items():
                for year, value in zip(YEARS, values, strict=True):
                    status = "E" if year == PROVISIONAL_YEAR else "A"
                    observations.append(DataPoint(city, indicator, sex, year, value, status))
    rng = random.Random(f"{SEED}:{office.agency}:missing")
    missing = rng.choice([o for o in observations if o.sex == "_T" and o.year != YEARS[0]])
    return [
        DataPoint(o.city, o.indicator, o.sex, o.year, None, "M") if o is missing else o
        for o in observations
    ]


def _dataflow(office: Office) -> str:
    return f"{office.agency}:{DATAFLOW_ID}({DATAFLOW_VERSION})"


def _source_detail(office: Office, indicator: Indicator) -> str:
    return f"{office.name}, {indicator.source}"


def _coded(code: str, name: str) -> dict[str, str]:
    return {"id": code, "name": name}


def _dimension(dim_id: str, position: int, values: list[dict[str, str]]) -> dict[str, Any]:
    dimension: dict[str, Any] = {
        "id": dim_id,
        "name": COMPONENT_NAMES[dim_id],
        "keyPosition": position,
        "values": values,
    }
    if dim_id == "TIME_PERIOD":
        dimension["roles"] = ["TIME_PERIOD"]
    return dimension


def _attribute(
    attr_id: str, relationship: dict[str, Any], values: list[dict[str, str]] | None
) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "id": attr_id,
        "name": COMPONENT_NAMES[attr_id],
        "relationship": relationship,
    }
    if values is not None:  # without `values` the data carries the text inline
        attribute["values"] = values
    return attribute


def render_json(office: Office, country: City, observations: list[DataPoint]) -> str:
    """SDMX-JSON 2.0, series-keyed (dimensionAtObservation=TIME_PERIOD), with names.

    `country` is any city of the country, for its ISO3 code and name.
    """
    cities = list(dict.fromkeys(o.city for o in observations))
    indicators = list(dict.fromkeys(o.indicator for o in observations))
    sexes = list(SEX_NAMES)
    statuses = list(OBS_STATUS_NAMES)
    urn = f"urn:sdmx:org.sdmx.infomodel.datastructure.Dataflow={_dataflow(office)}"
    links = [{"rel": "dataflow", "urn": urn}]
    structure = {
        "name": f"{DATAFLOW_NAME} - {country.country_name}",
        "links": links,
        "dimensions": {
            "dataSet": [
                _dimension("FREQ", 0, [_coded(*FREQ)]),
                _dimension("REF_AREA", 1, [_coded(country.country_iso3, country.country_name)]),
            ],
            "series": [
                _dimension("CITY", 2, [_coded(c.code, c.name) for c in cities]),
                _dimension("SERIES", 3, [_coded(i.code, i.name) for i in indicators]),
                _dimension("SEX", 4, [_coded(s, SEX_NAMES[s]) for s in sexes]),
            ],
            "observation": [
                _dimension("TIME_PERIOD", 5, [_coded(str(y), str(y)) for y in YEARS]),
            ],
        },
        "measures": {"observation": [{"id": "OBS_VALUE", "name": COMPONENT_NAMES["OBS_VALUE"]}]},
        "attributes": {
            "dataSet": [
                _attribute("UNIT_MEASURE", {"dataflow": {}}, [_coded(*UNIT_MEASURE)]),
                _attribute("UNIT_MULT", {"dataflow": {}}, [_coded(*UNIT_MULT)]),
            ],
            "series": [
                _attribute("SOURCE_DETAIL", {"dimensions": ["CITY", "SERIES", "SEX"]}, None),
            ],
            "observation": [
                _attribute(
                    "OBS_STATUS",
                    {"observation": {}},
                    [_coded(code, name) for code, name in OBS_STATUS_NAMES.items()],
                ),
            ],
        },
    }
    series: dict[str, dict[str, Any]] = {}
    for o in observations:
        key = f"{cities.index(o.city)}:{indicators.index(o.indicator)}:{sexes.index(o.sex)}"
        entry = series.setdefault(
            key, {"attributes": [_source_detail(office, o.indicator)], "observations": {}}
        )
        entry["observations"][str(YEARS.index(o.year))] = [o.value, statuses.index(o.status)]
    message = {
        "meta": {
            "schema": JSON_SCHEMA_URL,
            "id": f"{office.agency}_{DATAFLOW_ID}_SAMPLE",
            "test": True,
            "prepared": PREPARED,
            "contentLanguages": ["en"],
            "sender": {"id": office.agency, "name": office.name},
        },
        "data": {
            "structures": [structure],
            "dataSets": [
                {
                    "structure": 0,
                    "action": "Information",
                    "links": links,
                    "attributes": [0, 0],
                    "series": series,
                }
            ],
        },
    }
    return json.dumps(message, indent=2, ensure_ascii=False) + "\n"


def render_csv(office: Office, observations: list[DataPoint], *, labels: bool) -> str:
    """SDMX-CSV 2.0; with `labels`, headers read `ID: Name` and coded cells `CODE: Name`."""

    def coded(code: str, name: str) -> str:
        return f"{code}: {name}" if labels else code

    components = list(COMPONENT_NAMES)  # already in column order
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["STRUCTURE", "STRUCTURE_ID", "ACTION"] + [coded(c, COMPONENT_NAMES[c]) for c in components]
    )
    structure_id = coded(_dataflow(office), DATAFLOW_NAME)
    for o in observations:
        writer.writerow(
            [
                "dataflow",
                structure_id,
                "I",
                coded(*FREQ),
                coded(o.city.country_iso3, o.city.country_name),
                coded(o.city.code, o.city.name),
                coded(o.indicator.code, o.indicator.name),
                coded(o.sex, SEX_NAMES[o.sex]),
                str(o.year),
                "" if o.value is None else f"{o.value:.1f}",
                coded(*UNIT_MEASURE),
                coded(*UNIT_MULT),
                coded(o.status, OBS_STATUS_NAMES[o.status]),
                _source_detail(office, o.indicator),
            ]
        )
    return buffer.getvalue()


def render_feeds(cities: Sequence[City]) -> dict[str, tuple[str, int]]:
    """File name -> (content, observation count), one file per country's statistics office.

    Countries in ISO3 order alternate JSON and CSV; every second CSV file uses label mode.
    """
    by_country: dict[str, list[City]] = {}
    for city in sorted(cities, key=lambda c: (c.country_iso3, c.code)):
        by_country.setdefault(city.country_iso3, []).append(city)
    feeds: dict[str, tuple[str, int]] = {}
    for index, (iso3, country_cities) in enumerate(by_country.items()):
        office = OFFICES.get(iso3)
        if office is None:
            raise ConfigError(
                f"city list: no statistics office configured for country {iso3} "
                "(add it to OFFICES in connectors/samples/sdmx_feeds.py)"
            )
        observations = _observations(office, country_cities)
        stem = f"{iso3.lower()}_{office.agency.lower()}"
        if index % 2 == 0:
            feeds[f"{stem}.json"] = (
                render_json(office, country_cities[0], observations),
                len(observations),
            )
        else:
            text = render_csv(office, observations, labels=index % 4 == 3)
            feeds[f"{stem}.csv"] = (text, len(observations))
    return feeds


def write_feeds(out_dir: Path, cities: Sequence[City] | None = None) -> dict[Path, int]:
    """Write every feed under `out_dir` (default cities: the reference list); returns each path
    with its observation count."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, (text, count) in render_feeds(load_cities() if cities is None else cities).items():
        path = out_dir / name
        path.write_bytes(text.encode("utf-8"))
        written[path] = count
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    settings = Settings.from_env()
    parser.add_argument(
        "--out", type=Path, default=settings.sample_data_dir / "sdmx", help="output directory"
    )
    parser.add_argument(
        "--reference-dir",
        type=Path,
        default=settings.reference_dir,
        help="folder of the reference seeds (ref_cities.csv ...)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    written = write_feeds(args.out, load_cities(args.reference_dir))
    print(
        f"wrote {len(written)} SDMX feeds ({sum(written.values())} observations) "
        f"to {args.out} in {time.perf_counter() - started:.2f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
