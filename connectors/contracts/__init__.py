"""Contract registry: one JSON Schema file per event type and version, compiled once.

A file named `<event type>.json` (e.g. `org.urbanflow.stats.observation.v1.json`) is the
contract for the CloudEvent `data` of that type. Validation compiles the envelope and the
contract into one function (fastjsonschema), so the sink checks a whole event in one call.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

from connectors.errors import ContractError
from connectors.settings import Settings

_VERSION_RE = re.compile(r"^(?P<family>.+)\.v(?P<version>[0-9]+)$")

#: Seconds 00-59: RFC 3339 allows a leap second (:60), which no warehouse timestamp holds, so one
#: such value would stop its batch or the dbt model casting it, not that event alone. Every
#: `date-time` of a contract gets it too (`_storable_dates_and_times`).
NO_LEAP_SECOND = "^.{10}[Tt].{6}[0-5]"

# CloudEvents 1.0, structured JSON mode, with the attributes DESIGN.md §2 makes mandatory here.
ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["specversion", "id", "source", "type", "time", "data"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "minLength": 1, "maxLength": 200},
        "source": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": "^urn:"},
        "type": {"type": "string", "minLength": 1},
        "time": {"type": "string", "format": "date-time", "pattern": NO_LEAP_SECOND},
        "subject": {"type": "string", "maxLength": 500},
        "dataschema": {"type": "string"},
        "datacontenttype": {"const": "application/json"},
        "data": {},
    },
}


@dataclass(frozen=True)
class Contract:
    """A compiled contract for one event type and version."""

    event_type: str
    family: str
    version: int
    schema: dict[str, Any]
    path: Path
    event_schema: dict[str, Any] = field(repr=False)
    _validate_event: Callable[[Any], Any] = field(repr=False)
    _validate_data: Callable[[Any], Any] = field(repr=False)

    @property
    def dataschema(self) -> str:
        return str(self.schema.get("$id", self.path.name))

    def validate_data(self, data: Any) -> None:
        """Raise ContractError naming the field when `data` breaks the contract."""
        try:
            self._validate_data(data)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise ContractError(_json_path(exc.message), contract=self.event_type) from None

    def validate_event(self, event: Any) -> None:
        """Validate a whole CloudEvent (envelope + data) in one compiled call."""
        try:
            self._validate_event(event)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise ContractError(_json_path(exc.message), contract=self.event_type) from None


def _json_path(message: str) -> str:
    """fastjsonschema calls the root `data`; say `$` so it is not confused with the event's data."""
    return "$" + message[4:] if message.startswith("data") else message


#: Integers land in BIGINT columns; JSON Schema's "integer" alone also takes 1e308 (an integral
#: number), which would then stop the dbt model casting it, not this event alone.
_BIGINT = (-(2**63), 2**63 - 1)


def _bounded_integers(schema: Any) -> Any:
    """`schema` with every integer bounded to BIGINT where it sets no tighter bound."""
    if isinstance(schema, list):
        return [_bounded_integers(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    bounded = {key: _bounded_integers(value) for key, value in schema.items()}
    declared = schema.get("type")
    if declared == "integer" or (isinstance(declared, list) and "integer" in declared):
        bounded.setdefault("minimum", _BIGINT[0])
        bounded.setdefault("maximum", _BIGINT[1])
    return bounded


#: How the contracts spell a calendar date (draft 4 has no `date` format)...
ISO_DATE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
#: ...and what it must also be for dbt's cast to `date`: a day that exists (2024-02-29 does,
#: 2023-02-29 and 2024-04-31 do not). One impossible date would stop its staging model.
CALENDAR_DATE = (
    "^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]"
    "|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])"
    "|(?:[02468][048]|[13579][26])00)-02-29)$"
)


def _storable_dates_and_times(schema: Any) -> Any:
    """`schema` with every `date-time` refusing a leap second (`NO_LEAP_SECOND`), where it sets
    no pattern of its own, and every `ISO_DATE` a day that exists (`CALENDAR_DATE`)."""
    if isinstance(schema, list):
        return [_storable_dates_and_times(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    storable = {key: _storable_dates_and_times(value) for key, value in schema.items()}
    if schema.get("format") == "date-time":
        storable.setdefault("pattern", NO_LEAP_SECOND)
    if schema.get("pattern") == ISO_DATE:
        storable["pattern"] = CALENDAR_DATE
    return storable


def _compile(schema: dict[str, Any], event_type: str, path: Path) -> Contract:
    match = _VERSION_RE.match(event_type)
    if not match:
        raise ContractError(f"contract file name {event_type!r} must end in .v<N>")
    data_schema = {k: v for k, v in schema.items() if k not in ("$schema", "$id")}
    data_schema = _storable_dates_and_times(_bounded_integers(data_schema))
    event_schema = copy.deepcopy(ENVELOPE_SCHEMA)
    event_schema["properties"]["type"] = {"const": event_type}
    event_schema["properties"]["data"] = data_schema
    return Contract(
        event_type=event_type,
        family=match["family"],
        version=int(match["version"]),
        schema=schema,
        path=path,
        event_schema=event_schema,
        _validate_event=fastjsonschema.compile(event_schema),
        _validate_data=fastjsonschema.compile(data_schema),
    )


def load_schema(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ContractError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None


@cache
def registry(contracts_dir: Path | None = None) -> dict[str, Contract]:
    """Every contract in the contracts folder (UF_CONTRACTS_DIR), keyed by event type."""
    folder = contracts_dir or Settings.from_env().contracts_dir
    contracts = {}
    for path in sorted(folder.glob("*.json")):
        event_type = path.stem
        contracts[event_type] = _compile(load_schema(path), event_type, path)
    return contracts


def get_contract(event_type: str) -> Contract:
    try:
        return registry()[event_type]
    except KeyError:
        known = ", ".join(sorted(registry()))
        raise ContractError(f"unknown event type {event_type!r}; known: {known}") from None


def _types(schema: dict[str, Any]) -> set[str] | None:
    declared = schema.get("type")
    if declared is None:
        return None
    found = {declared} if isinstance(declared, str) else set(declared)
    if "number" in found:
        found.add("integer")
    return found


def backward_incompatibilities(
    old: dict[str, Any], new: dict[str, Any], at: str = "$"
) -> Iterator[str]:
    """Ways in which data valid under `old` could be rejected by `new` (schema-registry BACKWARD).

    A structural check, deliberately conservative: any narrowing it can see is reported.
    """
    old_types, new_types = _types(old), _types(new)
    if new_types is not None and (old_types is None or not old_types <= new_types):
        yield f"{at}: type narrowed from {sorted(old_types or ['any'])} to {sorted(new_types)}"
    if "enum" in new and not set(map(json.dumps, old.get("enum", [None]))) <= set(
        map(json.dumps, new["enum"])
    ):
        yield f"{at}: enum narrowed"
    if "const" in new and old.get("const") != new["const"]:
        yield f"{at}: const added or changed"
    for key in ("pattern", "format"):
        if key in new and new[key] != old.get(key):
            yield f"{at}: {key} added or changed"
    for key in ("maxLength", "maximum", "maxItems", "maxProperties"):
        if key in new and new[key] < old.get(key, float("inf")):
            yield f"{at}: {key} lowered"
    for key in ("minLength", "minimum", "minItems", "minProperties"):
        if key in new and new[key] > old.get(key, float("-inf")):
            yield f"{at}: {key} raised"
    for name in sorted(set(new.get("required", [])) - set(old.get("required", []))):
        yield f"{at}: new required property {name!r}"
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    if new.get("additionalProperties") is False:
        if old.get("additionalProperties") is not False:
            yield f"{at}: additionalProperties closed"
        for name in sorted(set(old_props) - set(new_props)):
            yield f"{at}.{name}: property removed while additionalProperties is false"
    for name in sorted(set(old_props) & set(new_props)):
        yield from backward_incompatibilities(old_props[name], new_props[name], f"{at}.{name}")
    old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
    if isinstance(old_extra, dict) and isinstance(new_extra, dict):
        yield from backward_incompatibilities(old_extra, new_extra, f"{at}.*")
    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        yield from backward_incompatibilities(old["items"], new["items"], f"{at}[]")
