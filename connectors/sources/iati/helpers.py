"""IATI 2.03 activity XML to flat activity, transaction and result records.

Pure functions over bytes already read, so one parser serves files, HTTP responses and unit tests.
Two levels of failure, because a publisher's file holds many independent activities:

* a file that is not well-formed XML (or declares a DOCTYPE, whose entities could expand without
  bound: defusedxml is not available, so we refuse DTDs outright) is refused whole with a
  SourceFormatError naming the file and line;
* an activity whose content is unusable (no identifier, a value that is not a number, a date that
  is not a date ...) becomes a `Refused` carrying its original XML and the reason, and the
  rest of the file still loads.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NoReturn
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

from connectors.errors import SourceFormatError
from connectors.refusals import Refused
from connectors.sources.iati.settings import (
    ACTIVITY_DATE_KEYS,
    ACTIVITY_STATUSES,
    CITY_CODE_RE,
    DEFAULT_SECTOR_VOCABULARY,
    INDICATOR_MEASURES,
    INVALID_ACTIVITY,
    NUMERIC_MEASURES,
    RESULT_TYPES,
    SEX_DIMENSION_NAMES,
    SEX_VALUES,
    TRANSACTION_TYPES,
)

ROOT = "iati-activities"
ACTIVITY = "iati-activity"

_DECIMAL_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")  # xsd:decimal: no exponent, no commas
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:Z|[+-]\d{2}:\d{2})?$")  # xsd:date
_DATETIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$"  # xsd:dateTime
)
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_BOOLEANS = {"1": True, "true": True, "0": False, "false": False}


class _Element(Element):
    """An element that remembers its line (and, for activities, its bytes in the file)."""

    line: int
    span: tuple[int, int]


class _Invalid(Exception):
    """An activity's content is unusable; caught per activity, never escapes the module."""

    def __init__(self, element: Element, message: str):
        super().__init__(message)
        self.line = getattr(element, "line", None)
        self.message = message


def _fail(element: Element, where: str, message: str) -> NoReturn:
    raise _Invalid(element, f"{where}: {message}")


#: Children the IATI 2.0x activity schema allows at most once (maxOccurs=1): cheap to check on
#: the tree, and each breaks how we read the activity (two reporting-orgs name two partners).
SINGLE_ELEMENTS = (
    "iati-identifier",
    "reporting-org",
    "title",
    "activity-status",
    "collaboration-type",
    "default-flow-type",
    "default-finance-type",
    "default-tied-status",
    "capital-spend",
    "conditions",
    "crs-add",
    "fss",
)


def _check_single_elements(activity: Element) -> None:
    """Refuse an activity that repeats an element the schema allows once, naming the rule."""
    for name in SINGLE_ELEMENTS:
        found = activity.findall(name)
        if len(found) > 1:
            _fail(
                found[1],
                name,
                f"appears {len(found)} times; IATI schema rule: at most one {name} per activity",
            )


# ---------------------------------------------------------------------------- XML to a tree


def _parse_tree(payload: bytes, origin: str) -> _Element:
    """Build the element tree with expat directly, which tells us lines and byte offsets and lets
    us refuse a DOCTYPE before any entity in it is read."""
    builder = TreeBuilder(element_factory=_Element)
    parser = expat.ParserCreate()
    parser.buffer_text = True

    def start(tag: str, attributes: dict[str, str]) -> None:
        element = builder.start(tag, attributes)
        element.line = parser.CurrentLineNumber
        if tag == ACTIVITY:
            element.span = (parser.CurrentByteIndex, -1)

    def end(tag: str) -> None:
        element = builder.end(tag)
        if tag == ACTIVITY:
            closing = payload.index(b">", parser.CurrentByteIndex) + 1
            element.span = (element.span[0], closing)

    def refuse_doctype(*_: Any) -> NoReturn:
        raise SourceFormatError(
            origin,
            "DOCTYPE declarations are refused (their entities could expand without bound); "
            "IATI files need none",
            line=parser.CurrentLineNumber,
        )

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_doctype
    try:
        parser.Parse(payload, True)
    except expat.ExpatError as exc:
        raise SourceFormatError(
            origin,
            f"malformed XML: {expat.ErrorString(exc.code)} (column {exc.offset + 1})",
            line=exc.lineno,
        ) from None
    except LookupError as exc:  # expat asks Python for an encoding the declaration names
        raise SourceFormatError(
            origin, f"malformed XML: {exc}", line=parser.CurrentLineNumber
        ) from None
    return builder.close()


# ---------------------------------------------------------------------------- value readers


def _text(element: Element | None) -> str | None:
    """An IATI text element (its narratives) as one string: English or unmarked first."""
    if element is None:
        return None
    narratives = [n for n in element.findall("narrative") if (n.text or "").strip()]
    if not narratives:
        plain = (element.text or "").strip()
        return plain or None
    preferred = [n for n in narratives if n.get("xml:lang", "en").lower() == "en"]
    return (preferred or narratives)[0].text.strip()  # type: ignore[union-attr]


def _decimal(element: Element, where: str, raw: str | None) -> float:
    text = (raw or "").strip()
    if not _DECIMAL_RE.match(text):
        _fail(element, where, f"{raw!r} is not a decimal number")
    value = float(text)
    if not math.isfinite(value):
        _fail(element, where, f"{raw!r} is out of range")
    return value


def _optional_decimal(element: Element, where: str, raw: str | None) -> float | None:
    return None if raw is None or raw.strip() == "" else _decimal(element, where, raw)


def _percentage(element: Element, where: str) -> float | None:
    value = _optional_decimal(element, f"{where}/@percentage", element.get("percentage"))
    if value is not None and not 0 <= value <= 100:
        _fail(element, f"{where}/@percentage", f"{value} is not between 0 and 100")
    return value


def _date(element: Element, where: str, raw: str | None) -> str:
    """An xsd:date as YYYY-MM-DD (a time-zone suffix, which xsd:date allows, is dropped)."""
    match = _DATE_RE.match((raw or "").strip())
    if match is None:
        _fail(element, where, f"{raw!r} is not a date YYYY-MM-DD")
    try:
        return date(int(match[1]), int(match[2]), int(match[3])).isoformat()
    except ValueError:
        _fail(element, where, f"{raw!r} is not a calendar date")


def _optional_date(element: Element | None, where: str, attribute: str = "iso-date") -> str | None:
    if element is None or element.get(attribute) is None:
        return None
    return _date(element, f"{where}/@{attribute}", element.get(attribute))


def _datetime(element: Element, where: str, raw: str) -> str:
    """An xsd:dateTime as ISO 8601 UTC with Z; no offset means UTC (the IATI convention)."""
    match = _DATETIME_RE.match(raw.strip())
    if match is None:
        _fail(element, where, f"{raw!r} is not a date-time YYYY-MM-DDThh:mm:ss")
    fraction = (match[2] or "")[:7]  # fromisoformat takes at most microseconds
    zone = match[3] or "Z"
    try:
        parsed = datetime.fromisoformat(f"{match[1]}{fraction}{zone}").astimezone(UTC)
    except (ValueError, OverflowError):  # overflow: year 1 or 9999 shifted out of range to UTC
        _fail(element, where, f"{raw!r} is not a valid date-time")
    return parsed.isoformat().replace("+00:00", "Z")


def _boolean(element: Element, where: str, raw: str | None) -> bool | None:
    if raw is None:
        return None
    try:
        return _BOOLEANS[raw.strip().lower()]
    except KeyError:
        _fail(element, where, f"{raw!r} is not a boolean (1, 0, true or false)")


def _currency(element: Element, where: str, raw: str | None) -> str:
    if raw is None:
        _fail(element, where, "no currency: neither @currency nor iati-activity/@default-currency")
    if not _CURRENCY_RE.match(raw):
        _fail(element, where, f"{raw!r} is not an ISO 4217 currency code")
    return raw


def _code(element: Element | None) -> str | None:
    if element is None:
        return None
    code = (element.get("code") or "").strip()
    return code or None


def _org(element: Element) -> dict[str, str | None]:
    return {"ref": element.get("ref"), "type": element.get("type"), "name": _text(element)}


def _sectors(parent: Element, where: str) -> list[dict[str, Any]]:
    sectors = []
    for index, sector in enumerate(parent.findall("sector"), start=1):
        here = f"{where}sector[{index}]"
        code = _code(sector)
        if code is None:
            _fail(sector, here, "has no @code")
        sectors.append(
            {
                "vocabulary": sector.get("vocabulary") or DEFAULT_SECTOR_VOCABULARY,
                "code": code,
                "percentage": _percentage(sector, here),
            }
        )
    return sectors


def city_code(candidates: list[str | None], countries: set[str]) -> str | None:
    """The first candidate shaped like a UN/LOCODE (as in ref_cities) whose country prefix is
    one of the activity's recipient countries, when it declares any."""
    for candidate in candidates:
        if (
            candidate
            and CITY_CODE_RE.match(candidate)
            and (not countries or candidate[:2] in countries)
        ):
            return candidate
    return None


# ---------------------------------------------------------------------------- one activity


@dataclass(frozen=True, slots=True)
class IatiActivity:
    """One valid activity and what hangs off it, ready to become events."""

    identifier: str
    reporting_org_ref: str
    last_updated: str | None
    city_code: str | None
    line: int
    digest: str  # of the activity's XML: its version when it has no last-updated-datetime
    data: dict[str, Any]
    transactions: list[dict[str, Any]]
    results: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class IatiFile:
    origin: str
    version: str | None
    activities: list[IatiActivity]
    rejected: list[Refused]  # invalid activities: key, line, reason and original XML


class _ActivityReader:
    """Reads one iati-activity; every failure names the element path and raises _Invalid."""

    def __init__(self, element: Element):
        self.element = element
        self.identifier = (element.findtext("iati-identifier") or "").strip() or None
        self.default_currency = element.get("default-currency")
        self.last_updated: str | None = None
        self.countries: set[str] = set()
        self.location_cities: dict[str, str] = {}  # location/@ref -> city code
        self.city_code: str | None = None

    def read(self, digest: str) -> IatiActivity:
        activity = self.element
        _check_single_elements(activity)
        if self.identifier is None:
            _fail(activity, "iati-identifier", "missing or empty")
        raw_updated = activity.get("last-updated-datetime")
        if raw_updated is not None:
            self.last_updated = _datetime(activity, "@last-updated-datetime", raw_updated)
        reporting = activity.find("reporting-org")
        if reporting is None or not (reporting.get("ref") or "").strip():
            _fail(activity, "reporting-org/@ref", "missing (it names the partner)")
        if self.default_currency is not None:
            _currency(activity, "@default-currency", self.default_currency)
        self.countries = {
            code for c in activity.findall("recipient-country") if (code := _code(c)) is not None
        }
        data = self.activity_data(reporting)
        transactions = [
            self.transaction(element, index)
            for index, element in enumerate(activity.findall("transaction"), start=1)
        ]
        results = [
            row
            for index, element in enumerate(activity.findall("result"), start=1)
            for row in self.result(element, index)
        ]
        return IatiActivity(
            identifier=self.identifier,
            reporting_org_ref=reporting.get("ref", "").strip(),
            last_updated=self.last_updated,
            city_code=self.city_code,
            line=getattr(activity, "line", 0),
            digest=digest,
            data=data,
            transactions=transactions,
            results=results,
        )

    def common(self) -> dict[str, Any]:
        return {"iati_identifier": self.identifier, "last_updated": self.last_updated}

    # -- activity ---------------------------------------------------------------------------

    def activity_data(self, reporting: Element) -> dict[str, Any]:
        activity = self.element
        status = _code(activity.find("activity-status"))
        locations = [
            self.location(element, index)
            for index, element in enumerate(activity.findall("location"), start=1)
        ]
        self.city_code = next((loc["city_code"] for loc in locations if loc["city_code"]), None)
        return {
            **self.common(),
            "reporting_org": _org(reporting),
            "title": _text(activity.find("title")),
            "description": _text(activity.find("description")),
            "status_code": status,
            "status": ACTIVITY_STATUSES.get(status or ""),
            "default_currency": self.default_currency,
            "humanitarian": _boolean(activity, "@humanitarian", activity.get("humanitarian")),
            "dates": self.dates(),
            "recipient_countries": [
                {
                    "code": _code(country) or _fail(country, "recipient-country", "has no @code"),
                    "percentage": _percentage(country, f"recipient-country[{index}]"),
                }
                for index, country in enumerate(activity.findall("recipient-country"), start=1)
            ],
            "locations": locations,
            "city_code": self.city_code,
            "sectors": _sectors(activity, ""),
            "participating_orgs": [
                {**_org(org), "role": org.get("role"), "activity_id": org.get("activity-id")}
                for org in activity.findall("participating-org")
            ],
            "budgets": [
                self.budget(element, index)
                for index, element in enumerate(activity.findall("budget"), start=1)
            ],
        }

    def dates(self) -> dict[str, str | None]:
        dates: dict[str, str | None] = dict.fromkeys(ACTIVITY_DATE_KEYS.values())
        for index, element in enumerate(self.element.findall("activity-date"), start=1):
            key = ACTIVITY_DATE_KEYS.get(element.get("type", ""))
            if key is None:
                _fail(element, f"activity-date[{index}]/@type", f"{element.get('type')!r} unknown")
            dates[key] = _date(
                element, f"activity-date[{index}]/@iso-date", element.get("iso-date")
            )
        return dates

    def location(self, element: Element, index: int) -> dict[str, Any]:
        where = f"location[{index}]"
        lat = lon = None
        pos = element.findtext("point/pos")
        if pos is not None:
            parts = pos.split()
            if len(parts) != 2:
                _fail(element, f"{where}/point/pos", f"{pos!r} is not 'latitude longitude'")
            lat = _decimal(element, f"{where}/point/pos", parts[0])
            lon = _decimal(element, f"{where}/point/pos", parts[1])
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                _fail(element, f"{where}/point/pos", f"{pos!r} is outside WGS 84 bounds")
        ref = element.get("ref")
        ids = [_code(location_id) for location_id in element.findall("location-id")]
        code = city_code([ref, *ids], self.countries)
        if ref and code:
            self.location_cities[ref] = code
        return {
            "ref": ref,
            "name": _text(element.find("name")),
            "lat": lat,
            "lon": lon,
            "city_code": code,
        }

    def money(self, parent: Element, where: str) -> dict[str, Any]:
        """A `value` child: amount, currency (own or the activity default) and value date."""
        value = parent.find("value")
        if value is None:
            _fail(parent, where, "has no value")
        return {
            "value": _decimal(value, f"{where}/value", value.text),
            "currency": _currency(
                value, f"{where}/value/@currency", value.get("currency", self.default_currency)
            ),
            "value_date": _optional_date(value, f"{where}/value", "value-date"),
        }

    def budget(self, element: Element, index: int) -> dict[str, Any]:
        where = f"budget[{index}]"
        return {
            "type": element.get("type"),
            "status": element.get("status"),
            "period_start": _optional_date(element.find("period-start"), f"{where}/period-start"),
            "period_end": _optional_date(element.find("period-end"), f"{where}/period-end"),
            **self.money(element, where),
        }

    # -- transactions -----------------------------------------------------------------------

    def transaction(self, element: Element, index: int) -> dict[str, Any]:
        where = f"transaction[{index}]"
        type_code = _code(element.find("transaction-type"))
        if type_code not in TRANSACTION_TYPES:
            _fail(element, f"{where}/transaction-type/@code", f"{type_code!r} is not a type code")
        when = element.find("transaction-date")
        if when is None:
            _fail(element, where, "has no transaction-date")
        data: dict[str, Any] = {
            **self.common(),
            "transaction_index": index,
            "ref": element.get("ref"),
            "type_code": type_code,
            "type": TRANSACTION_TYPES[type_code],
            "date": _date(when, f"{where}/transaction-date/@iso-date", when.get("iso-date")),
            **self.money(element, where),
            "description": _text(element.find("description")),
        }
        for role in ("provider", "receiver"):
            org = element.find(f"{role}-org")
            if org is not None:
                data[f"{role}_org"] = {**_org(org), "activity_id": org.get(f"{role}-activity-id")}
        data["sectors"] = _sectors(element, f"{where}/")
        data["city_code"] = self.city_code
        return data

    # -- results ----------------------------------------------------------------------------

    def result(self, element: Element, index: int) -> list[dict[str, Any]]:
        where = f"result[{index}]"
        result_type = element.get("type")
        if not result_type:
            _fail(element, f"{where}/@type", "missing")
        shared = {
            **self.common(),
            "result_index": index,
            "result_type_code": result_type,
            "result_type": RESULT_TYPES.get(result_type),
            "result_title": _text(element.find("title")),
        }
        rows = []
        for number, indicator in enumerate(element.findall("indicator"), start=1):
            rows += self.indicator(indicator, f"{where}/indicator[{number}]", number, shared)
        return rows

    def indicator(
        self, element: Element, where: str, index: int, shared: dict[str, Any]
    ) -> list[dict[str, Any]]:
        measure = element.get("measure")
        if not measure:
            _fail(element, f"{where}/@measure", "missing")
        indicator = {
            **shared,
            "indicator_index": index,
            "indicator_title": _text(element.find("title")),
            "indicator_measure_code": measure,
            "indicator_measure": INDICATOR_MEASURES.get(measure),
            "ascending": _boolean(element, f"{where}/@ascending", element.get("ascending")),
        }
        rows = []
        for number, baseline in enumerate(element.findall("baseline"), start=1):
            here = f"{where}/baseline[{number}]"
            year = baseline.get("year")
            # ASCII digits only: str.isdigit() also takes '²', which int() refuses
            if year is not None and not re.fullmatch(r"[0-9]{1,4}", year.strip()):
                _fail(baseline, f"{here}/@year", f"{year!r} is not a year")
            period = {
                "period_index": None,
                "period_start": _optional_date(baseline, here),
                "period_end": None,
                "baseline_year": int(year) if year else None,
            }
            rows.append(self.measurement(baseline, here, "baseline", {**indicator, **period}))
        for number, period in enumerate(element.findall("period"), start=1):
            here = f"{where}/period[{number}]"
            dates = {
                "period_index": number,
                "period_start": _optional_date(period.find("period-start"), f"{here}/period-start"),
                "period_end": _optional_date(period.find("period-end"), f"{here}/period-end"),
                "baseline_year": None,
            }
            for kind in ("target", "actual"):
                for n, value in enumerate(period.findall(kind), start=1):
                    rows.append(
                        self.measurement(value, f"{here}/{kind}[{n}]", kind, {**indicator, **dates})
                    )
        return rows

    def measurement(
        self, element: Element, where: str, kind: str, context: dict[str, Any]
    ) -> dict[str, Any]:
        """One baseline, target or actual: its value, sex and other dimensions, locations."""
        raw = element.get("value")
        value: float | None = None
        text: str | None = None
        if raw is not None and raw.strip():
            if context["indicator_measure_code"] in NUMERIC_MEASURES:
                value = _decimal(element, f"{where}/@value", raw)
            elif _DECIMAL_RE.match(raw.strip()):
                value = float(raw)
            else:
                text = raw.strip()
        dimensions: dict[str, str] = {}
        sex = None
        for dimension in element.findall("dimension"):
            name, dimension_value = dimension.get("name"), dimension.get("value")
            if not name or dimension_value is None:
                _fail(dimension, f"{where}/dimension", "needs both @name and @value")
            dimensions[name] = dimension_value
            if name.strip().lower() in SEX_DIMENSION_NAMES:
                sex = SEX_VALUES.get(dimension_value.strip().lower())  # others stay in dimensions
        refs = [ref for location in element.findall("location") if (ref := location.get("ref"))]
        cities = [self.location_cities[ref] for ref in refs if ref in self.location_cities]
        return {
            **context,
            "measurement": kind,
            "value": value,
            "value_text": text,
            "sex": sex,
            "dimensions": dimensions,
            "location_refs": refs,
            "city_code": cities[0] if cities else self.city_code,
            "comment": _text(element.find("comment")),
        }


# ---------------------------------------------------------------------------- a whole file


def xml_digest(xml: bytes) -> str:
    """An activity's content digest: its version when it has no last-updated-datetime, and what
    the state remembers of a refused one (so an unchanged file does not dead-letter it again)."""
    return hashlib.sha256(xml).hexdigest()[:32]


def parse_iati_activities(payload: bytes, origin: str) -> IatiFile:
    """Parse an `iati-activities` document (IATI 2.0x).

    Raises SourceFormatError (naming `origin` and the line) when the file itself is unusable;
    invalid activities inside a usable file come back in `rejected` with the reason.
    """
    if not payload.strip():
        raise SourceFormatError(origin, "file is empty")
    root = _parse_tree(payload, origin)
    if root.tag != ROOT:
        raise SourceFormatError(origin, f"root element is <{root.tag}>, expected <{ROOT}>", line=1)
    version = root.get("version")
    if version is not None and not version.strip().startswith("2."):
        raise SourceFormatError(
            origin, f"IATI version {version} is not supported (2.01 to 2.03 are)", line=root.line
        )
    activities: list[IatiActivity] = []
    rejected: list[Refused] = []
    for element in root.iter(ACTIVITY):
        xml = payload[element.span[0] : element.span[1]]
        digest = xml_digest(xml)
        reader = _ActivityReader(element)
        try:
            activities.append(reader.read(digest))
        except _Invalid as exc:
            location = f"{origin}:{exc.line}" if exc.line is not None else origin
            name = reader.identifier or "without iati-identifier"
            name = name if name.isprintable() else repr(name)  # a reason stays one line
            rejected.append(
                Refused(
                    f"{location}: activity {name}: {exc.message}",
                    key=reader.identifier or location,
                    payload=xml,
                    error_class=INVALID_ACTIVITY,
                    line=exc.line,
                )
            )
    return IatiFile(origin, version, activities, rejected)
