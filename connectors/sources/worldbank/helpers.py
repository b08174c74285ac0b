"""World Bank Indicators API v2 JSON pages to observations (contract stats.observation.v1).

A page is `[meta, observations]`: meta says which page of how many; an error is a one-element
array `[{"message": [...]}]`. A page that is not that shape is refused whole; a single
observation that cannot become an event is returned as a `Refused` for the dead-letter topic.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from connectors.errors import SourceFormatError
from connectors.refusals import Refused
from connectors.sources.observations import AttributeValue, Observation, ObservationPage

# The API's period notations: 2020, 2020Q1, 2020M03 (and 2020-03 from some databases).
_DATE_RE = re.compile(r"^(\d{4})(?:Q([1-4])|M(\d{2})|-(\d{2}))?$")


def time_period(date: str) -> str | None:
    """The API's `date` as an SDMX period (2020M03 -> 2020-03, 2020Q1 -> 2020-Q1), or None."""
    match = _DATE_RE.match(date.strip())
    if match is None:
        return None
    year, quarter, month, dashed_month = match.groups()
    month = month or dashed_month
    if quarter:
        return f"{year}-Q{quarter}"
    if month:
        return f"{year}-{month}" if 1 <= int(month) <= 12 else None
    return year


def _int(meta: dict[str, Any], name: str, origin: str) -> int:
    """Page counters arrive as numbers or as strings depending on the endpoint."""
    try:
        return int(meta[name])
    except (KeyError, TypeError, ValueError):
        raise SourceFormatError(origin, f"page metadata has no whole-number {name!r}") from None


def _text(node: Any, name: str) -> str:
    """`node[name]` as a stripped string ('' when missing or null)."""
    value = node.get(name) if isinstance(node, dict) else None
    return str(value).strip() if value is not None else ""


def _observation(item: dict[str, Any], dataflow: str) -> Observation | str:
    """The observation, or why it cannot be one."""
    indicator = _text(item.get("indicator"), "id")
    iso3 = _text(item, "countryiso3code").upper()
    if not indicator:
        return "no indicator.id"
    period = time_period(_text(item, "date"))
    if period is None:
        return f"date {item.get('date')!r} is not a year, YYYYQn or YYYYMmm"
    value = item.get("value")
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        return f"value {value!r} is not a number"
    attributes: dict[str, AttributeValue] = {}
    if unit := _text(item, "unit"):
        attributes["UNIT_MEASURE"] = unit
    if status := _text(item, "obs_status"):
        attributes["OBS_STATUS"] = status
    if isinstance(item.get("decimal"), int | float) and not isinstance(item["decimal"], bool):
        attributes["DECIMALS"] = item["decimal"]
    labels = {
        k: v
        for k, v in (
            ("INDICATOR", _text(item.get("indicator"), "value")),
            ("REF_AREA", _text(item.get("country"), "value")),
        )
        if v
    }
    return Observation(
        dataflow=dataflow,
        series_key=f"{indicator}.{iso3}",
        dimensions={"INDICATOR": indicator, "REF_AREA": iso3},
        attributes=attributes,
        labels=labels,
        time_period=period,
        value=None if value is None else float(value),
        line=None,
    )


def parse_worldbank_page(payload: bytes, origin: str, dataflow: str) -> ObservationPage:
    """One API response (a file or a fetched page) to observations; refuses a malformed page."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise SourceFormatError(origin, f"not JSON: {exc}") from None
    if isinstance(message, list) and len(message) == 1 and isinstance(message[0], dict):
        errors = message[0].get("message") or []
        detail = "; ".join(
            f"{e.get('key', '')} ({e.get('id', '')}): {e.get('value', '')}"
            for e in errors
            if isinstance(e, dict)
        )
        raise SourceFormatError(origin, f"World Bank API error: {detail or message[0]}")
    if not (isinstance(message, list) and len(message) == 2 and isinstance(message[0], dict)):
        raise SourceFormatError(origin, "expected a 2-element array [page metadata, observations]")
    meta, items = message
    if items is None:  # the API sends null for a query without results
        items = []
    if not isinstance(items, list):
        raise SourceFormatError(origin, "the second element is not an array of observations")
    number, pages = _int(meta, "page", origin), _int(meta, "pages", origin)
    observations: list[Observation] = []
    refused: list[Refused] = []
    aggregates = 0
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            reason = f"{origin}: [1][{index}] not an object"
            refused.append(Refused(reason, key=origin, payload=orjson.dumps(item)))
            continue
        if not _text(item, "countryiso3code"):
            aggregates += 1
            continue
        parsed = _observation(item, dataflow)
        if isinstance(parsed, str):
            key = f"{_text(item.get('indicator'), 'id')}.{_text(item, 'countryiso3code')}"
            reason = f"{origin}: [1][{index}]: {parsed}"
            refused.append(Refused(reason, key=key, payload=orjson.dumps(item)))
        else:
            observations.append(parsed)
    return ObservationPage(number, pages, observations, refused, skipped=aggregates)
