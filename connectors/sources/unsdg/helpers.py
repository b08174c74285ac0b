"""UN SDG API v1 (`/v1/sdg/Series/Data`) JSON pages to observations (stats.observation.v1).

A page is an object with `pageNumber`/`totalPages`, code lists (`dimensions`, `attributes`:
each code with its description and SDMX code) and `data` records. Codes are translated to the
SDMX codes the lists give (FEMALE -> F, PERCENT -> PT), so these observations line up with the
SDMX feeds in the warehouse. Values arrive as strings; "NaN" and empty mean missing.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from connectors.errors import SourceFormatError
from connectors.refusals import Refused
from connectors.sources.common import NUMBER_RE
from connectors.sources.observations import AttributeValue, Observation, ObservationPage

#: The API's dimension names to SDMX dimension ids (others: upper case, spaces to "_").
DIMENSION_IDS = {"Location": "URBANISATION", "Reporting Type": "REPORTING_TYPE"}
MISSING_VALUES = frozenset({"", "nan", "n", "na"})

CodeList = dict[str, dict[str, tuple[str, str]]]  # concept -> code -> (sdmx code, description)


def dimension_id(name: str) -> str:
    return DIMENSION_IDS.get(name) or re.sub(r"\W+", "_", name.strip()).upper()


def parse_value(raw: object) -> float | None:
    """The API's value string as a number; None for its missing markers; ValueError otherwise
    (bounded values such as ">95" are not numbers the warehouse can add up)."""
    if raw is None:
        return None
    text = str(raw).strip()
    if text.lower() in MISSING_VALUES:
        return None
    if not NUMBER_RE.match(text) or not math.isfinite(number := float(text)):
        raise ValueError(raw)
    return number


def _code_lists(lists: object) -> CodeList:
    """`[{"id": "Sex", "codes": [{"code": "FEMALE", "sdmx": "F", "description": ...}]}]`."""
    result: CodeList = {}
    for concept in lists if isinstance(lists, list) else []:
        if not isinstance(concept, dict) or not isinstance(concept.get("codes"), list):
            continue
        result[str(concept.get("id"))] = {
            str(c["code"]): (str(c.get("sdmx") or c["code"]), str(c.get("description") or ""))
            for c in concept["codes"]
            if isinstance(c, dict) and c.get("code") is not None
        }
    return result


def _coded(codes: CodeList, concept: str, code: str) -> tuple[str, str]:
    """(SDMX code, description) of an API code; the code itself when the list lacks it."""
    return codes.get(concept, {}).get(code, (code, ""))


def _year(raw: object) -> str:
    """timePeriodStart (2018.0) as "2018"."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(raw)
    number = float(raw)
    if not number.is_integer() or not 1000 <= number <= 9999:
        raise ValueError(raw)
    return str(int(number))


def _bound(raw: object) -> float | None:
    try:
        return parse_value(raw)
    except ValueError:
        return None


def _observation(
    item: dict[str, Any], dataflow: str, dims: CodeList, atts: CodeList
) -> Observation | str:
    series, area = item.get("series"), item.get("geoAreaCode")
    if not series or area in (None, ""):
        return "no series or geoAreaCode"
    try:
        period = _year(item.get("timePeriodStart"))
    except (ValueError, OverflowError):
        return f"timePeriodStart {item.get('timePeriodStart')!r} is not a year"
    try:
        value = parse_value(item.get("value"))
    except ValueError:
        return f"value {item.get('value')!r} is not a number"
    dimensions = {"SERIES": str(series), "REF_AREA": str(area)}
    labels = {
        "SERIES": str(item.get("seriesDescription") or ""),
        "REF_AREA": str(item.get("geoAreaName") or ""),
    }
    record_dims = item.get("dimensions") if isinstance(item.get("dimensions"), dict) else {}
    for name in sorted(record_dims, key=dimension_id):
        code, description = _coded(dims, name, str(record_dims[name]))
        dimensions[dimension_id(name)] = code
        labels[dimension_id(name)] = description
    attributes: dict[str, AttributeValue] = {}
    record_atts = item.get("attributes") if isinstance(item.get("attributes"), dict) else {}
    for name, attribute_id in (("Units", "UNIT_MEASURE"), ("Nature", "NATURE")):
        if record_atts.get(name):
            attributes[attribute_id] = _coded(atts, name, str(record_atts[name]))[0]
    indicators = item.get("indicator")
    if indicators:
        attributes["SDG_INDICATOR"] = (
            ",".join(map(str, indicators)) if isinstance(indicators, list) else str(indicators)
        )
    for name, attribute_id in (("lowerBound", "LOWER_BOUND"), ("upperBound", "UPPER_BOUND")):
        if (bound := _bound(item.get(name))) is not None:
            attributes[attribute_id] = bound
    if item.get("source"):
        attributes["SOURCE_DETAIL"] = str(item["source"])
    if footnotes := [str(f) for f in item.get("footnotes") or [] if f]:
        attributes["COMMENT_OBS"] = "; ".join(footnotes)
    return Observation(
        dataflow=dataflow,
        series_key=".".join(dimensions.values()),
        dimensions=dimensions,
        attributes=attributes,
        labels={k: v for k, v in labels.items() if v},
        time_period=period,
        value=value,
        line=None,
    )


def _page_number(message: dict[str, Any], name: str, origin: str) -> int:
    value = message.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SourceFormatError(origin, f"{name!r} is missing or not a whole number")
    return value


def parse_sdg_page(payload: bytes, origin: str, dataflow: str) -> ObservationPage:
    """One Series/Data response (a file or a fetched page); refuses a malformed page."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise SourceFormatError(origin, f"not JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("data"), list):
        raise SourceFormatError(origin, "expected a Series/Data object with a 'data' array")
    number = _page_number(message, "pageNumber", origin)
    count = _page_number(message, "totalPages", origin)
    dims, atts = _code_lists(message.get("dimensions")), _code_lists(message.get("attributes"))
    page = ObservationPage(number, count)
    for index, item in enumerate(message["data"]):
        parsed = (
            _observation(item, dataflow, dims, atts) if isinstance(item, dict) else "not an object"
        )
        if isinstance(parsed, str):
            key = (
                f"{item.get('series')}.{item.get('geoAreaCode')}" if isinstance(item, dict) else ""
            )
            reason = f"{origin}: data[{index}]: {parsed}"
            page.refused.append(Refused(reason, key=key, payload=orjson.dumps(item)))
        else:
            page.observations.append(parsed)
    return page
