"""Sample hazard events for the sample world: GDACS-style GeoJSON feeds, one file per year.

Floods, tropical cyclones, droughts and heat waves hit the programme cities in 2022-2024, each
event in one or two cities of a country that plausibly sees that hazard, with one to three
episodes whose people affected are revised upwards to a final share of the city's population.
Floods, cyclones and droughts are placed as GDACS places them, by a point near the city (within a
few km, so the connector's nearest-city match finds it); heat waves, which GDACS does not cover,
come as a partner's enriched features naming the city by `city_code`. Some droughts also carry a
country-wide feature whose point is far from every city: it stays at country level.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.reference import City
from connectors.sources.gdacs.helpers import haversine_km
from connectors.sources.gdacs.settings import CITY_CODE_PROPERTY, HAZARD_TYPES

HAZARD_YEARS = (2022, 2023, 2024)
#: Hazards each country's cities plausibly see (GDACS types; HW heat wave from a partner).
COUNTRY_HAZARDS = {
    "BGD": ("FL", "TC", "HW"),
    "ETH": ("DR", "FL"),
    "GHA": ("FL", "HW"),
    "HND": ("TC", "FL", "DR"),
    "IND": ("FL", "TC", "HW"),
    "KEN": ("DR", "FL"),
    "KHM": ("FL", "DR", "HW"),
    "MOZ": ("TC", "FL", "DR"),
    "NGA": ("FL", "HW"),
    "PER": ("FL", "DR"),
    "PHL": ("TC", "FL"),
    "RWA": ("FL",),
    "SLE": ("FL",),
    "SOM": ("DR", "FL"),
    "TZA": ("FL", "DR"),
    "UGA": ("FL", "DR"),
    "ZMB": ("DR", "FL"),
}


@dataclass(frozen=True, slots=True)
class HazardProfile:
    """How long a hazard lasts (days), what share of a city it affects, how GDACS measures it."""

    days: tuple[int, int]
    share: tuple[float, float]
    severity: tuple[float, float]
    severity_unit: str
    severity_text: str  # formatted with the severity
    source: str
    first_event_id: int


PROFILES = {
    "FL": HazardProfile(
        (3, 21), (0.005, 0.06), (0.5, 2.5), "", "Magnitude {:.1f}", "GLOFAS", 1100001
    ),
    "TC": HazardProfile(
        (2, 6),
        (0.02, 0.15),
        (90, 240),
        "km/h",
        "Maximum wind speed of {:.0f} km/h",
        "JTWC",
        1000901,
    ),
    "DR": HazardProfile(
        (60, 240),
        (0.01, 0.10),
        (20_000, 250_000),
        "km2",
        "Drought over {:,.0f} km2",
        "JRC",
        1016001,
    ),
    "HW": HazardProfile(
        (4, 15), (0.05, 0.25), (38, 47), "C", "Maximum temperature of {:.0f} C", "partner", 9100001
    ),
}
CYCLONE_NAMES = ("AMPHAN", "MOCHA", "FREDDY", "ETA", "IOTA", "RAI", "NORU", "REMAL", "GOMBE")
ALERTS = ("Green", "Orange", "Red")
#: Points near a city: up to this many degrees off its centre (a few km).
NEAR_CITY_DEGREES = 0.05
#: A country-wide drought's point is at least this far from every city of the country (km).
COUNTRY_POINT_MIN_KM = 100.0
TWO_CITY_PROBABILITY = 0.3
COUNTRY_WIDE_DROUGHT_PROBABILITY = 0.5


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(map(str, ("urbanflow-hazards", seed, *parts))))


def _alert(share: float) -> int:
    """Index into ALERTS of a final impact: red from 10 % of the city, orange from 3 %."""
    return 2 if share >= 0.10 else 1 if share >= 0.03 else 0


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _far_point(city: City, members: Sequence[City]) -> tuple[float, float]:
    """A point in the countryside: the first of a fixed set of offsets from `city` that is far
    from every city of the country."""
    for step in range(1, 20):
        for dlat, dlon in ((step, 0), (-step, 0), (0, step), (0, -step)):
            lat = max(-89.0, min(89.0, city.latitude + 0.5 * dlat))
            lon = city.longitude + 0.5 * dlon
            if all(
                haversine_km(lat, lon, c.latitude, c.longitude) >= COUNTRY_POINT_MIN_KM
                for c in members
            ):
                return round(lat, 4), round(lon, 4)
    raise ValueError(f"no point {COUNTRY_POINT_MIN_KM} km from the cities of {city.country_iso3}")


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """One event: what, when, where (cities, or None for the country-wide feature) and impact."""

    hazard: str
    event_id: int
    name: str
    start: datetime
    days: int
    episodes: int
    severity: float
    places: tuple[tuple[City | None, int, tuple[float, float]], ...]  # (city, people, point)
    country: City  # a city of the country, for its names and codes

    @property
    def final_alert(self) -> int:
        """GDACS alerts per event, not per place: the worst-hit city's share decides."""
        return max(_alert(people / city.population) for city, people, _ in self.places if city)


def plan_events(cities: Sequence[City], seed: int) -> list[PlannedEvent]:
    """One or two events per country and year, in a deterministic order."""
    by_country: dict[str, list[City]] = {}
    for city in sorted(cities, key=lambda c: (c.country_iso3, c.code)):
        by_country.setdefault(city.country_iso3, []).append(city)
    next_id = {hazard: profile.first_event_id for hazard, profile in PROFILES.items()}
    events = []
    for year in HAZARD_YEARS:
        for iso3, members in by_country.items():
            rng = _rng(seed, iso3, year)
            for _ in range(rng.randint(1, 2)):
                hazard = rng.choice(COUNTRY_HAZARDS.get(iso3, ("FL",)))
                profile = PROFILES[hazard]
                count = 2 if len(members) > 1 and rng.random() < TWO_CITY_PROBABILITY else 1
                places: list[tuple[City | None, int, tuple[float, float]]] = []
                for city in rng.sample(members, count):
                    people = round(city.population * rng.uniform(*profile.share), -2)
                    point = (
                        round(city.latitude + rng.uniform(-1, 1) * NEAR_CITY_DEGREES, 4),
                        round(city.longitude + rng.uniform(-1, 1) * NEAR_CITY_DEGREES, 4),
                    )
                    places.append((city, int(people), point))
                if hazard == "DR" and rng.random() < COUNTRY_WIDE_DROUGHT_PROBABILITY:
                    people = sum(c.population for c in members) * rng.uniform(0.01, 0.05)
                    places.append((None, int(round(people, -3)), _far_point(members[0], members)))
                name = (
                    f"Tropical Cyclone {rng.choice(CYCLONE_NAMES)}-{year % 100:02d}"
                    if hazard == "TC"
                    else f"{HAZARD_TYPES[hazard].capitalize()} in {members[0].country_name}"
                )
                events.append(
                    PlannedEvent(
                        hazard=hazard,
                        event_id=next_id[hazard],
                        name=name,
                        start=datetime(year, 1, 1) + timedelta(days=rng.randrange(0, 330)),
                        days=rng.randint(*profile.days),
                        episodes=rng.randint(1, 3),
                        severity=rng.uniform(*profile.severity),
                        places=tuple(places),
                        country=members[0],
                    )
                )
                next_id[hazard] += 1
    return events


def _feature(event: PlannedEvent, episode: int, place: tuple) -> dict:
    """One episode of `event` in one place, as GDACS's events API writes a feature."""
    city, final_people, (lat, lon) = place
    profile = PROFILES[event.hazard]
    region = city.name if city else event.country.country_name
    people = round(final_people * (episode / event.episodes) ** 0.5, -2)
    alert = ALERTS[max(0, event.final_alert - (event.episodes - episode))]
    end = event.start + timedelta(days=max(1, round(event.days * episode / event.episodes)))
    country = event.country
    properties = {
        "eventtype": event.hazard,
        "eventid": event.event_id,
        "episodeid": episode,
        "eventname": event.name.rsplit(" ", 1)[-1] if event.hazard == "TC" else "",
        "glide": "",
        "name": event.name,
        "description": event.name,
        "alertlevel": alert,
        "alertscore": float(ALERTS.index(alert) + 1),
        "episodealertlevel": alert,
        "istemporary": "false",
        "iscurrent": "false",
        "country": country.country_name,
        "fromdate": _stamp(event.start),
        "todate": _stamp(end),
        "datemodified": _stamp(end + timedelta(hours=6)),
        "iso3": country.country_iso3,
        "source": profile.source,
        "affectedcountries": [
            {
                "iso2": country.country_iso2,
                "iso3": country.country_iso3,
                "countryname": country.country_name,
            }
        ],
        "severitydata": {
            "severity": round(event.severity, 1),
            "severitytext": profile.severity_text.format(event.severity),
            "severityunit": profile.severity_unit,
        },
        "sendai": [
            {
                "latest": True,
                "sendaitype": "B",
                "sendainame": "affected",
                "sendaivalue": str(int(people)),
                "country": country.country_name,
                "region": region,
                "dateinsert": _stamp(end + timedelta(hours=6)),
                "description": f"{int(people):,} people affected in {region}",
            }
        ],
    }
    if event.hazard == "HW" and city is not None:
        properties[CITY_CODE_PROPERTY] = city.code
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": properties,
    }


def render_hazards(cities: Sequence[City], seed: int) -> dict[str, str]:
    """`hazards/gdacs_events_<year>.geojson` per year: every episode of the year's events."""
    by_year: dict[int, list[dict]] = {year: [] for year in HAZARD_YEARS}
    for event in plan_events(cities, seed):
        for episode in range(1, event.episodes + 1):
            for place in event.places:
                by_year[event.start.year].append(_feature(event, episode, place))
    return {
        f"hazards/gdacs_events_{year}.geojson": json.dumps(
            {"type": "FeatureCollection", "features": features}, indent=1, ensure_ascii=False
        )
        + "\n"
        for year, features in by_year.items()
    }
