"""GDACS GeoJSON event feeds to hazard-event episodes (contract hazard.event.v1), placed on cities.

Pure functions over bytes already read. A payload that is not a GeoJSON FeatureCollection is
refused whole; a single feature that cannot become an event (unknown event type, bad date, no
place, a people count that is not a count ...) is returned as a `Refused` for the dead-letter
topic with the reason, and the rest of the feed loads.

Placing an episode: a `city_code` property names the city outright (enriched feeds, the sample
world); otherwise the feature's Point goes to the nearest programme city of the event's countries
within `radius_km`; otherwise the episode stays at country level with `city_code` null.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from connectors.errors import SourceFormatError
from connectors.reference import City
from connectors.refusals import Refused
from connectors.sources.gdacs.settings import (
    AFFECTED_SENDAI_NAME,
    ALERT_LEVELS,
    CITY_CODE_PROPERTY,
    EARTH_RADIUS_KM,
    HAZARD_TYPES,
)

_ISO3_RE = re.compile(r"^[A-Z]{3}$")
_COUNT_RE = re.compile(r"^\d+$")


class _BadFeature(Exception):
    """Why one feature cannot become an event (becomes the dead letter's reason)."""


@dataclass(frozen=True)
class HazardEpisode:
    """One good feature: its event (the message key), where it was placed, its episode, its data."""

    event_key: str  # GDACS's own spelling, type + id: "FL1102683"
    place: str  # the city code, or the country ISO3 at country level
    episode_id: int
    data: dict[str, Any]

    @property
    def cursor_key(self) -> str:
        """Episodes are counted per event and place: a cyclone's later episode may hit another
        city, which must not hide that city's earlier ones."""
        return f"{self.event_key}|{self.place}"


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def nearest_city(
    latitude: float, longitude: float, cities: Sequence[City], radius_km: float
) -> tuple[City, float] | None:
    """The closest of `cities` to the point and its distance, if within `radius_km`."""
    found = min(
        ((c, haversine_km(latitude, longitude, c.latitude, c.longitude)) for c in cities),
        key=lambda pair: pair[1],
        default=None,
    )
    return found if found is not None and found[1] <= radius_km else None


def gdacs_time(value: Any) -> str | None:
    """A GDACS date-time (naive means UTC: "2024-05-01T00:00:00") as ISO 8601 UTC with Z."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError:  # year 1 or 9999 shifted out of range to UTC
        return None


def _text(node: Any, name: str) -> str:
    value = node.get(name) if isinstance(node, dict) else None
    return str(value).strip() if value is not None else ""


#: The largest count or id kept: a BIGINT, what events (orjson) and the warehouse can hold.
MAX_COUNT = 2**63 - 1


def _count(value: Any) -> int | None:
    """A whole number 0 to MAX_COUNT, sent as a number or as digits; None for anything else."""
    digits = isinstance(value, str) and _COUNT_RE.match(value.strip()) and len(value.strip()) < 20
    if digits or (isinstance(value, float) and value.is_integer() and 0 <= value <= MAX_COUNT):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
        return value
    return None


def _whole(props: dict[str, Any], name: str) -> int:
    """A positive id."""
    value = _count(props.get(name))
    if not value:
        raise _BadFeature(f"{name} {props.get(name)!r} is not a positive whole number")
    return value


def _number(node: dict[str, Any], name: str) -> float | None:
    """An optional finite number: missing or null is None, anything else is refused."""
    value = node.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _BadFeature(f"{name} {value!r} is not a number")
    return float(value)


def _time(props: dict[str, Any], name: str) -> str:
    if (parsed := gdacs_time(props.get(name))) is None:
        raise _BadFeature(f"{name} {props.get(name)!r} is not a date-time")
    return parsed


def _point(geometry: Any) -> tuple[float, float] | None:
    """(latitude, longitude) of a Point geometry; other geometries carry no single point."""
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        return None
    coordinates = geometry.get("coordinates")
    if (
        isinstance(coordinates, list)
        and len(coordinates) >= 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in coordinates[:2])
        and -180 <= coordinates[0] <= 180
        and -90 <= coordinates[1] <= 90
    ):
        return float(coordinates[1]), float(coordinates[0])
    raise _BadFeature(f"geometry coordinates {coordinates!r} are not a [longitude, latitude]")


def people_affected(sendai: Any) -> int | None:
    """Sum of the `sendai` entries named "affected" (only those flagged latest when any is);
    None when the episode reports none."""
    if sendai is None:
        return None
    if not isinstance(sendai, list) or not all(isinstance(e, dict) for e in sendai):
        raise _BadFeature("sendai is not an array of objects")
    entries = [e for e in sendai if _text(e, "sendainame").lower() == AFFECTED_SENDAI_NAME]
    if any(e.get("latest") is True for e in entries):
        entries = [e for e in entries if e.get("latest") is True]
    if not entries:
        return None
    total = 0
    for entry in entries:
        value = _count(entry.get("sendaivalue"))
        if value is None:
            raise _BadFeature(f"sendai affected value {entry.get('sendaivalue')!r} is not a count")
        total += value
    if total > MAX_COUNT:
        raise _BadFeature(f"sendai affected values add up to {total}, more than a count holds")
    return total


def _countries(props: dict[str, Any]) -> set[str]:
    """ISO3 codes of the event: `iso3` and `affectedcountries`."""
    affected = props.get("affectedcountries") or []
    if not isinstance(affected, list):
        raise _BadFeature("affectedcountries is not an array")
    codes = {_text(props, "iso3").upper(), *(_text(c, "iso3").upper() for c in affected)}
    codes.discard("")
    if bad := sorted(c for c in codes if not _ISO3_RE.match(c)):
        shown = ", ".join(c if c.isprintable() else repr(c) for c in bad)  # one line
        raise _BadFeature(f"country code(s) {shown} are not ISO 3166-1 alpha-3")
    return codes


def _place(
    props: dict[str, Any],
    point: tuple[float, float] | None,
    cities: dict[str, City],
    radius_km: float,
) -> dict[str, Any]:
    """The contract's place fields: by city code, else nearest city, else country."""
    countries = _countries(props)
    if code := _text(props, CITY_CODE_PROPERTY).upper():
        city = cities.get(code)
        if city is None:
            raise _BadFeature(f"{CITY_CODE_PROPERTY} {code!r} is not one of our cities")
        if countries and city.country_iso3 not in countries:
            raise _BadFeature(
                f"{CITY_CODE_PROPERTY} {code} is in {city.country_iso3}, "
                f"not in the event's countries ({', '.join(sorted(countries))})"
            )
        return {"country_iso3": city.country_iso3, "city_code": code, "place_match": "city_code"}
    if point is not None:
        candidates = [c for c in cities.values() if not countries or c.country_iso3 in countries]
        if found := nearest_city(*point, candidates, radius_km):
            city, distance = found
            return {
                "country_iso3": city.country_iso3,
                "city_code": city.code,
                "place_match": "nearest_city",
                "distance_km": round(distance, 1),
            }
    country = _text(props, "iso3").upper() or (min(countries) if len(countries) == 1 else "")
    if not country:
        raise _BadFeature(
            f"no {CITY_CODE_PROPERTY}, no point within {radius_km:g} km of one of our cities "
            "and no iso3 country"
        )
    return {"country_iso3": country, "city_code": None, "place_match": "country"}


def _episode(feature: Any, cities: dict[str, City], radius_km: float) -> HazardEpisode:
    if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
        raise _BadFeature("not a GeoJSON Feature with properties")
    props = feature["properties"]
    hazard = _text(props, "eventtype").upper()
    if hazard not in HAZARD_TYPES:
        known = ", ".join(HAZARD_TYPES)
        raise _BadFeature(f"eventtype {props.get('eventtype')!r} is not one of {known}")
    event_id, episode_id = _whole(props, "eventid"), _whole(props, "episodeid")
    alert = _text(props, "alertlevel").lower()
    if alert not in ALERT_LEVELS:
        raise _BadFeature(f"alertlevel {props.get('alertlevel')!r} is not Green, Orange or Red")
    from_time, to_time = _time(props, "fromdate"), _time(props, "todate")
    if to_time < from_time:
        raise _BadFeature(f"todate {props['todate']!r} is before fromdate {props['fromdate']!r}")
    point = _point(feature.get("geometry"))
    severity = props.get("severitydata") if isinstance(props.get("severitydata"), dict) else {}
    data: dict[str, Any] = {
        "hazard_type": hazard,
        "hazard_event_id": event_id,
        "episode_id": episode_id,
        "name": (
            _text(props, "name")
            or _text(props, "eventname")
            or f"{HAZARD_TYPES[hazard].capitalize()} {hazard}{event_id}"
        )[:300],
        "alert_level": alert,
        "alert_score": _number(props, "alertscore"),
        "from_time": from_time,
        "to_time": to_time,
        **_place(props, point, cities, radius_km),
        "latitude": point[0] if point else None,
        "longitude": point[1] if point else None,
        "people_affected": people_affected(props.get("sendai")),
        "severity": _number(severity, "severity"),
    }
    if props.get("datemodified"):
        data["modified_time"] = _time(props, "datemodified")
    optional = (
        ("severity_unit", _text(severity, "severityunit")[:100]),
        ("severity_text", _text(severity, "severitytext")[:1000]),
        ("glide", _text(props, "glide")[:50]),
    )
    data.update((name, value) for name, value in optional if value)
    place = data["city_code"] or data["country_iso3"]
    return HazardEpisode(f"{hazard}{event_id}", place, episode_id, data)


def _feature_key(feature: Any) -> str:
    """A rejected feature's message key: its event as far as it can be read."""
    props = feature.get("properties") if isinstance(feature, dict) else None
    key = f"{_text(props, 'eventtype').upper()}{_text(props, 'eventid')}"
    return key or "unknown"


def parse_feed(
    payload: bytes, origin: str, cities: Sequence[City], radius_km: float
) -> list[HazardEpisode | Refused]:
    """One feed (a file or a response) to episodes and bad features; refuses a malformed feed."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise SourceFormatError(origin, f"not JSON: {exc}") from None
    if not (
        isinstance(message, dict)
        and message.get("type") == "FeatureCollection"
        and isinstance(message.get("features"), list)
    ):
        raise SourceFormatError(origin, "not a GeoJSON FeatureCollection with a features array")
    by_code = {city.code: city for city in cities}
    parsed: list[HazardEpisode | Refused] = []
    for index, feature in enumerate(message["features"]):
        try:
            parsed.append(_episode(feature, by_code, radius_km))
        except _BadFeature as problem:
            key = _feature_key(feature)
            shown = key if key.isprintable() else repr(key)  # a reason stays one line
            reason = f"{origin}: features[{index}] ({shown}): {problem}"
            parsed.append(Refused(reason, key=key, payload=orjson.dumps(feature)))
    return parsed
