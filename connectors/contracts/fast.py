"""Compile a contract into a msgspec decoder: JSON parse and validation in one C pass.

The sink validates every record; with fastjsonschema over orjson that costs ~9 µs per 1 KB event,
more than kafka-python needs to consume it. msgspec does both in ~2 µs. The translation covers the
JSON Schema subset our contracts use and is *never more lenient* than the schema: anything it
cannot translate exactly or more strictly makes `compile_event_decoder` return None, and the sink
uses fastjsonschema alone. A record msgspec rejects is re-checked by fastjsonschema, which has the
final word and the error message, so a stricter translation can delay a record but not drop it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

import msgspec
from fastjsonschema.draft04 import CodeGeneratorDraft04

_DOLLAR = re.compile(r"(?<!\\)\$")  # fastjsonschema reads an unescaped $ as \Z; so must we
_ANNOTATION_ONLY = {"title", "description", "$schema", "$id", "$comment", "examples", "default"}
_STRING_KEYS = {"type", "minLength", "maxLength", "pattern", "format", "const", "enum"}
_NUMBER_KEYS = {"type", "minimum", "maximum"}
_OBJECT_KEYS = {"type", "properties", "required", "additionalProperties", "minProperties"}
_MAP_KEYS = {"type", "additionalProperties", "minProperties"}
_ARRAY_KEYS = {"type", "items", "minItems", "maxItems"}
_FORMATS = {"date-time": CodeGeneratorDraft04.FORMAT_REGEXS["date-time"]}


class NotCompilable(Exception):
    """The schema uses something the msgspec translation does not cover exactly."""


def _keys(schema: dict[str, Any]) -> set[str]:
    return set(schema) - _ANNOTATION_ONLY


def _string(schema: dict[str, Any]) -> Any:
    if "const" in schema or "enum" in schema:
        values = [schema["const"]] if "const" in schema else schema["enum"]
        if _keys(schema) - {"type", "const", "enum"} or not all(isinstance(v, str) for v in values):
            raise NotCompilable("const/enum mixed with other keywords or non-strings")
        return Literal[tuple(values)]
    meta: dict[str, Any] = {}
    if "minLength" in schema:
        meta["min_length"] = schema["minLength"]
    if "maxLength" in schema:
        meta["max_length"] = schema["maxLength"]
    patterns = []
    if "pattern" in schema:
        patterns.append(_DOLLAR.sub(r"\\Z", schema["pattern"]))
    if "format" in schema:
        if schema["format"] not in _FORMATS:
            raise NotCompilable(f"format {schema['format']!r}")
        patterns.append(_FORMATS[schema["format"]])
    if len(patterns) == 1:
        meta["pattern"] = patterns[0]
    elif patterns:  # both must match somewhere, as each does on its own (JSON Schema searches)
        meta["pattern"] = "^" + "".join(f"(?=[\\s\\S]*?(?:{p}))" for p in patterns)
    return Annotated[str, msgspec.Meta(**meta)] if meta else str


def _number(schema: dict[str, Any], kind: type) -> Any:
    meta = {}
    if "minimum" in schema:
        meta["ge"] = schema["minimum"]
    if "maximum" in schema:
        meta["le"] = schema["maximum"]
    return Annotated[kind, msgspec.Meta(**meta)] if meta else kind


def _object(schema: dict[str, Any], name: str) -> Any:
    extra = schema.get("additionalProperties", True)
    if "properties" not in schema and isinstance(extra, dict):
        if _keys(schema) - _MAP_KEYS:
            raise NotCompilable(f"{name}: map with {sorted(_keys(schema) - _MAP_KEYS)}")
        value_type = to_type(extra, f"{name}Value")
        mapping = dict[str, value_type]  # type: ignore[valid-type]
        if "minProperties" in schema:
            return Annotated[mapping, msgspec.Meta(min_length=schema["minProperties"])]
        return mapping
    if _keys(schema) - _OBJECT_KEYS or "minProperties" in schema or extra not in (True, False):
        raise NotCompilable(f"{name}: object keywords {sorted(_keys(schema))}")
    required = set(schema.get("required", []))
    properties = schema.get("properties", {})
    if required - set(properties):
        raise NotCompilable(f"{name}: required property without a schema")
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for prop in sorted(properties, key=lambda p: p not in required):
        field_type = to_type(properties[prop], f"{name}_{prop}")
        if prop in required:
            fields.append((prop, field_type))
        else:
            fields.append((prop, Union[field_type, msgspec.UnsetType], msgspec.UNSET))  # noqa: UP007
    return msgspec.defstruct(name, fields, forbid_unknown_fields=extra is False)


def to_type(schema: dict[str, Any], name: str = "Root") -> Any:
    """A msgspec type accepting a subset of what `schema` accepts (raises NotCompilable)."""
    if schema == {}:
        return Any
    declared = schema.get("type")
    if declared is None:
        if set(schema) - _ANNOTATION_ONLY == {"const"} and isinstance(schema["const"], str):
            return Literal[schema["const"]]
        raise NotCompilable(f"{name}: no type")
    kinds = [declared] if isinstance(declared, str) else list(declared)
    members = []
    for kind in kinds:
        if kind == "string":
            if _keys(schema) - _STRING_KEYS:
                raise NotCompilable(f"{name}: string keywords {sorted(_keys(schema))}")
            members.append(_string(schema))
        elif kind in ("number", "integer"):
            if _keys(schema) - _NUMBER_KEYS:
                raise NotCompilable(f"{name}: number keywords {sorted(_keys(schema))}")
            members.append(_number(schema, float if kind == "number" else int))
        elif kind == "boolean":
            members.append(bool)
        elif kind == "null":
            members.append(None)
        elif kind == "object" and len(kinds) == 1:
            members.append(_object(schema, name))
        elif kind == "array" and len(kinds) == 1 and isinstance(schema.get("items"), dict):
            if _keys(schema) - _ARRAY_KEYS:
                raise NotCompilable(f"{name}: array keywords {sorted(_keys(schema))}")
            meta = {"min_length": schema.get("minItems"), "max_length": schema.get("maxItems")}
            item = list[to_type(schema["items"], f"{name}Item")]  # type: ignore[misc]
            meta = {k: v for k, v in meta.items() if v is not None}
            members.append(Annotated[item, msgspec.Meta(**meta)] if meta else item)
        else:
            raise NotCompilable(f"{name}: type {kind!r} in {kinds}")
    return members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007


def compile_event_decoder(event_schema: dict[str, Any], name: str) -> msgspec.json.Decoder | None:
    """A decoder for whole CloudEvents of one type, or None when only fastjsonschema can judge.

    msgspec itself refuses unions it cannot decode unambiguously (TypeError): also None.
    """
    try:
        return msgspec.json.Decoder(to_type(event_schema, name))
    except (NotCompilable, TypeError, ValueError):
        return None
