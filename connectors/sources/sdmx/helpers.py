"""SDMX data messages (SDMX-JSON 1.0/2.0, SDMX-CSV 1.0/2.0) to flat observations.

Pure functions over bytes or text already read, so one parser serves files, HTTP responses and
unit tests alike. A malformed message is refused whole: half a statistics release loaded
silently is worse than none, because nobody notices the missing half.

Why these stay hand-written while SDMX-ML goes through sdmx1 (`ml.py`): sdmx1 2.28 reads only
SDMX-JSON 1.0, and there treats an observation's annotation indexes as attribute values and keeps
one measure; its SDMX-CSV reader reads 2.x only and needs the DSD. tests/unit/test_sdmx_gaps.py
shows each gap, so these readers can go once sdmx1 closes them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, NoReturn

from connectors.errors import SourceFormatError
from connectors.sources.common import NUMBER_RE
from connectors.sources.observations import DATAFLOW_RE, AttributeValue, Observation

TIME_DIMENSION = "TIME_PERIOD"
PRIMARY_MEASURE = "OBS_VALUE"

_TIME_PERIOD_RE = re.compile(r"^(\d{4})(?:-(?:Q[1-4]|S[12]|(\d{2})(?:-(\d{2}))?))?$")
_CODE_RE = re.compile(r"^[A-Za-z0-9_@$\-]+$")
_KEY_RE = re.compile(r"^\d{1,9}(?::\d{1,9})*$")  # an index of more digits is no index
_URN_DATAFLOW_RE = re.compile(r"\.dataflow=(.+)$", re.IGNORECASE)
_HREF_DATAFLOW_RE = re.compile(r"/dataflow/([^/?#]+)/([^/?#]+)/([^/?#]+)", re.IGNORECASE)

_CSV_LEAD_COLUMNS = frozenset(
    {"DATAFLOW", "STRUCTURE", "STRUCTURE_ID", "STRUCTURE_NAME", "ACTION", "SERIES_KEY", "OBS_KEY"}
)
_CSV_STRUCTURE_TYPES = frozenset({"dataflow", "datastructure", "dataprovision"})
_JSON_LEVELS = ("dataSet", "series", "observation")
#: Data-set actions (SDMX-JSON `action`, SDMX-CSV `ACTION`) to what the event says: all but
#: Delete add or revise observations.
_ACTIONS = {
    "information": "upsert",
    "append": "upsert",
    "merge": "upsert",
    "replace": "upsert",
    "delete": "delete",
    "i": "upsert",
    "a": "upsert",
    "m": "upsert",
    "r": "upsert",
    "d": "delete",
}
_ANNOTATION_FIELDS = ("id", "title", "type", "text", "url")


def is_time_period(text: str) -> bool:
    """SDMX periods the contract accepts, with real months and calendar dates."""
    match = _TIME_PERIOD_RE.match(text)
    if match is None:
        return False
    year, month, day = match.groups()
    if day is not None:
        try:
            date(int(year), int(month), int(day))
        except ValueError:
            return False
        return True
    return month is None or 1 <= int(month) <= 12


def to_value(raw: object) -> float | None:
    """SDMX reports a missing observation as null, an empty cell or NaN; anything else must be a
    finite number (numeric strings included, as some servers quote every value)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if text == "" or text.lower() == "nan":
            return None
        if not NUMBER_RE.match(text):
            raise ValueError(raw)
        raw = float(text)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(raw)
    if isinstance(raw, float) and math.isnan(raw):
        return None
    if not math.isfinite(raw):
        raise ValueError(raw)
    return float(raw)


def _series_key(dimensions: dict[str, str]) -> str:
    return ".".join(dimensions.values())


# --------------------------------------------------------------------------------------- JSON


def _best_text(names: object) -> str | None:
    """A localised-text object reduced to one string: English if present, else the first."""
    if isinstance(names, str):
        return names
    if isinstance(names, dict) and names:
        text = names.get("en", next(iter(names.values())))
        return text if isinstance(text, str) else None
    return None


def _dataflow_from_links(links: object) -> str | None:
    """SDMX-JSON links a message to its dataflow by URN, or by a REST href with rel=dataflow."""
    if not isinstance(links, list):
        return None
    for link in links:
        if not isinstance(link, dict):
            continue
        urn, href = link.get("urn"), link.get("href")
        if isinstance(urn, str) and (match := _URN_DATAFLOW_RE.search(urn)):
            return match.group(1)
        if (
            str(link.get("rel", "")).lower() == "dataflow"
            and isinstance(href, str)
            and (match := _HREF_DATAFLOW_RE.search(href))
        ):
            return f"{match[1]}:{match[2]}({match[3]})"
    return None


@dataclass(frozen=True, slots=True)
class _Component:
    """A dimension, measure or attribute definition from the message's structure."""

    id: str
    path: str
    values: list[Any] | None  # None: values are sent inline in the data (uncoded attributes)
    codes: tuple[tuple[str, str | None], ...] = ()  # dimensions: (code, name) per value index
    default: Any = None
    key_position: int | None = None
    is_time: bool = False


@dataclass(frozen=True, slots=True)
class _Structure:
    """The parts of one `structure` the data sets refer to by index."""

    path: str
    dataflow: str | None
    dimensions: dict[str, list[_Component]]  # level -> components, in message order
    key_order: list[_Component]  # all dimensions in DSD order, time included
    attributes: dict[str, list[_Component]]  # dataSet / dimensionGroup / series / observation
    measures: list[_Component]
    annotations: list[object]  # referenced by index from data sets, series and observations


class _JsonReader:
    """Walks one decoded SDMX-JSON message; every error names the JSON path at fault."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, path: str, message: str) -> NoReturn:
        raise SourceFormatError(self.origin, f"{path}: {message}" if path else message)

    def read(self, message: object) -> list[Observation]:
        if not isinstance(message, dict):
            self.fail("", "top level is not a JSON object")
        root, prefix = (message["data"], "data.") if "data" in message else (message, "")
        if not isinstance(root, dict):
            self.fail("data", "is not an object")
        if "structures" in root:
            raw_structures = root["structures"]
            if not isinstance(raw_structures, list) or not raw_structures:
                self.fail(f"{prefix}structures", "is not a non-empty array")
            paths = [f"{prefix}structures[{i}]" for i in range(len(raw_structures))]
        elif "structure" in root:
            raw_structures, paths = [root["structure"]], [f"{prefix}structure"]
        else:
            errors = message.get("errors")
            detail = f" (the message reports errors: {json.dumps(errors)[:300]})" if errors else ""
            self.fail("", f"no structure: expected {prefix}structures or {prefix}structure{detail}")
        if "dataSets" not in root:
            self.fail("", f"no dataSets: expected {prefix}dataSets")
        data_sets = root["dataSets"]
        if not isinstance(data_sets, list):
            self.fail(f"{prefix}dataSets", "is not an array")
        meta = message.get("meta")
        meta_dataflow = _dataflow_from_links(meta.get("links") if isinstance(meta, dict) else None)
        structures = [
            self.structure(raw, path, meta_dataflow)
            for raw, path in zip(raw_structures, paths, strict=True)
        ]
        observations: list[Observation] = []
        for index, data_set in enumerate(data_sets):
            observations.extend(self.data_set(data_set, f"{prefix}dataSets[{index}]", structures))
        return observations

    # -- structure ----------------------------------------------------------------------------

    def structure(self, raw: object, path: str, meta_dataflow: str | None) -> _Structure:
        if not isinstance(raw, dict):
            self.fail(path, "is not an object")
        raw_dimensions = raw.get("dimensions")
        if not isinstance(raw_dimensions, dict):
            self.fail(path, "has no dimensions object")
        dimensions = {
            level: self.components(raw_dimensions, f"{path}.dimensions", level, dimension=True)
            for level in _JSON_LEVELS
        }
        declared = [component for level in _JSON_LEVELS for component in dimensions[level]]
        if not any(component.is_time for component in declared):
            self.fail(f"{path}.dimensions", f"no {TIME_DIMENSION} dimension")
        if all(component.key_position is not None for component in declared):
            key_order = sorted(declared, key=lambda component: component.key_position or 0)
        else:
            key_order = declared
        raw_attributes = raw.get("attributes") or {}
        if not isinstance(raw_attributes, dict):
            self.fail(f"{path}.attributes", "is not an object")
        attributes = {
            level: self.components(raw_attributes, f"{path}.attributes", level, dimension=False)
            for level in ("dataSet", "dimensionGroup", "series", "observation")
        }
        raw_measures = raw.get("measures") or {}
        if not isinstance(raw_measures, dict):
            self.fail(f"{path}.measures", "is not an object")
        measures = self.components(raw_measures, f"{path}.measures", "observation", dimension=False)
        legacy_uri = raw.get("uri")
        dataflow = (
            _dataflow_from_links(raw.get("links"))
            or _dataflow_from_links([{"rel": "dataflow", "href": legacy_uri}])
            or meta_dataflow
        )
        annotations = raw.get("annotations") or []
        if not isinstance(annotations, list):
            self.fail(f"{path}.annotations", "is not an array")
        return _Structure(path, dataflow, dimensions, key_order, attributes, measures, annotations)

    def components(
        self, container: dict[str, Any], path: str, level: str, *, dimension: bool
    ) -> list[_Component]:
        raw_list = container.get(level) or []
        if not isinstance(raw_list, list):
            self.fail(f"{path}.{level}", "is not an array")
        components = []
        for index, raw in enumerate(raw_list):
            where = f"{path}.{level}[{index}]"
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                self.fail(where, "is not a component with a string id")
            values = raw.get("values")
            if values is not None and not isinstance(values, list):
                self.fail(f"{where}.values", "is not an array")
            if dimension and not values:
                self.fail(f"{where}.values", f"dimension {raw['id']} has no values")
            codes = (
                tuple(
                    self.dimension_value(entry, f"{where}.values[{i}]")
                    for i, entry in enumerate(values)
                )
                if dimension
                else ()
            )
            roles = raw.get("roles") or [raw.get("role")]
            position = raw.get("keyPosition")
            components.append(
                _Component(
                    id=raw["id"],
                    path=where,
                    values=values,
                    codes=codes,
                    default=raw.get("default"),
                    key_position=position if isinstance(position, int) else None,
                    is_time=dimension and (raw["id"] == TIME_DIMENSION or TIME_DIMENSION in roles),
                )
            )
        return components

    # -- values -------------------------------------------------------------------------------

    def dimension_value(self, entry: object, where: str) -> tuple[str, str | None]:
        """A dimension value's code (`id`, or `value` for uncoded ones) and its name, if sent."""
        if not isinstance(entry, dict):
            self.fail(where, "is not an object")
        code = entry.get("id", entry.get("value"))
        if code is None or isinstance(code, bool | dict | list) or str(code) == "":
            self.fail(where, "has neither an id nor a value")
        return str(code), _best_text(entry.get("name", entry.get("names")))

    def scalar(self, raw: object, where: str) -> AttributeValue:
        """An inline attribute value: localised text and arrays become strings (';' as in CSV)."""
        if raw is None or isinstance(raw, str):
            return raw
        if isinstance(raw, bool):
            return "true" if raw else "false"
        if isinstance(raw, int) and not -(2**63) <= raw < 2**63:
            if raw.bit_length() > 1000:
                self.fail(where, "number is too large")
            return float(raw)  # JSON numbers in events are 64-bit: keep the magnitude
        if isinstance(raw, int | float):
            return None if math.isnan(raw) else raw
        if isinstance(raw, dict):
            return _best_text(raw)
        if isinstance(raw, list):
            parts = [self.scalar(item, where) for item in raw]
            return ";".join(str(part) for part in parts if part is not None)
        self.fail(where, f"unsupported value {raw!r}")

    def component_value(self, component: _Component, raw: object, where: str) -> AttributeValue:
        """An attribute or measure value, given as an index into `values` when those are sent."""
        if component.values is not None and isinstance(raw, int) and not isinstance(raw, bool):
            if not 0 <= raw < len(component.values):
                self.fail(
                    where,
                    f"index {raw} is out of range for {component.id} "
                    f"({len(component.values)} values in {component.path}.values)",
                )
            entry = component.values[raw]
            if isinstance(entry, dict):
                entry = entry.get("id", entry.get("value", entry.get("name")))
            return self.scalar(entry, where)
        return self.scalar(raw, where)

    def attribute_values(
        self, components: list[_Component], raw: object, where: str, offset: int = 0
    ) -> dict[str, AttributeValue]:
        """Positional attribute values (trailing ones may be omitted) keyed by attribute id;
        `offset` is where they start in the array at `where` (after the measures)."""
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            self.fail(where, "attributes is not an array")
        if len(raw) > len(components):
            self.fail(where, f"{len(raw)} attribute values for {len(components)} attributes")
        return {
            component.id: self.component_value(component, item, f"{where}[{position}]")
            for position, (component, item) in enumerate(
                zip(components, raw, strict=False), start=offset
            )
        }

    def key_indexes(self, key: str, components: list[_Component], where: str) -> list[int]:
        if not components and key == "":
            return []
        if not _KEY_RE.match(key):
            self.fail(where, "key is not colon-separated value indexes")
        indexes = [int(part) for part in key.split(":")]
        if len(indexes) != len(components):
            ids = ", ".join(component.id for component in components)
            self.fail(where, f"key has {len(indexes)} indexes, expected {len(components)} ({ids})")
        for component, index in zip(components, indexes, strict=True):
            if index >= len(component.codes):
                self.fail(
                    where,
                    f"index {index} is out of range for dimension {component.id} "
                    f"({len(component.codes)} values in {component.path}.values)",
                )
        return indexes

    # -- data ---------------------------------------------------------------------------------

    def data_set(self, raw: object, path: str, structures: list[_Structure]) -> list[Observation]:
        if not isinstance(raw, dict):
            self.fail(path, "is not an object")
        structure_index = raw.get("structure", 0)
        if not isinstance(structure_index, int) or not 0 <= structure_index < len(structures):
            self.fail(f"{path}.structure", f"refers to missing structure {structure_index!r}")
        structure = structures[structure_index]
        dataflow = _dataflow_from_links(raw.get("links")) or structure.dataflow
        if dataflow is None:
            self.fail(
                path,
                'no dataflow reference: expected a link with rel "dataflow" or a Dataflow URN '
                f"in {structure.path}.links or {path}.links",
            )
        if not DATAFLOW_RE.match(dataflow):
            self.fail(path, f"dataflow reference {dataflow!r} is not AGENCY:ID(VERSION)")
        if "series" in raw and "observations" in raw:
            self.fail(path, "has both series and observations")
        raw_action = raw.get("action", "Information")
        action = _ACTIONS.get(raw_action.lower()) if isinstance(raw_action, str) else None
        if action is None:
            self.fail(
                f"{path}.action",
                f"{raw_action!r} is not Information, Append, Merge, Replace or Delete",
            )

        base_indexes = {c.id: 0 for c in structure.dimensions["dataSet"]}
        dataset_attributes = self.attribute_values(
            structure.attributes["dataSet"], raw.get("attributes"), f"{path}.attributes"
        )
        groups = self.dimension_groups(raw.get("dimensionGroupAttributes"), path, structure)
        annotations = self.annotations(structure, raw.get("annotations"), f"{path}.annotations")
        context = _DataSetContext(
            dataflow, structure, dataset_attributes, groups, action, annotations
        )

        observations: list[Observation] = []
        if "observations" in raw:
            observations.extend(
                self.observations(
                    raw["observations"], f"{path}.observations", context, base_indexes, {}
                )
            )
        series_map = raw.get("series") or {}
        if not isinstance(series_map, dict):
            self.fail(f"{path}.series", "is not an object")
        for key, series in series_map.items():
            where = f"{path}.series[{json.dumps(key)}]"
            if not isinstance(series, dict):
                self.fail(where, "is not an object")
            series_dims = structure.dimensions["series"]
            indexes = dict(base_indexes)
            indexes.update(
                zip(
                    (c.id for c in series_dims),
                    self.key_indexes(key, series_dims, where),
                    strict=True,
                )
            )
            series_attributes = self.attribute_values(
                structure.attributes["series"], series.get("attributes"), f"{where}.attributes"
            )
            series_annotations = self.annotations(
                structure, series.get("annotations"), f"{where}.annotations"
            )
            observations.extend(
                self.observations(
                    series.get("observations") or {},
                    f"{where}.observations",
                    context,
                    indexes,
                    series_attributes,
                    series_annotations,
                )
            )
        return observations

    def annotations(
        self, structure: _Structure, raw: object, where: str
    ) -> tuple[dict[str, str], ...]:
        """Annotation indexes into the structure's `annotations`, resolved to their fields."""
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.fail(where, "is not an array of annotation indexes")
        found = []
        for position, index in enumerate(raw):
            at = f"{where}[{position}]"
            if isinstance(index, bool) or not isinstance(index, int):
                self.fail(at, f"annotation index {json.dumps(index)} is not an integer")
            if not 0 <= index < len(structure.annotations):
                self.fail(
                    at,
                    f"annotation index {index} is out of range "
                    f"({len(structure.annotations)} in {structure.path}.annotations)",
                )
            found.append(
                self.annotation(
                    structure.annotations[index], f"{structure.path}.annotations[{index}]"
                )
            )
        return tuple(found)

    def annotation(self, raw: object, where: str) -> dict[str, str]:
        if not isinstance(raw, dict):
            self.fail(where, "is not an object")
        fields: dict[str, str] = {}
        for name in _ANNOTATION_FIELDS:
            value = raw.get(name)
            if name == "text" and value is None:
                value = raw.get("texts")
            if name == "url" and value is None and isinstance(raw.get("links"), list):
                hrefs = [link.get("href") for link in raw["links"] if isinstance(link, dict)]
                value = next((h for h in hrefs if isinstance(h, str)), None)
            text = _best_text(value) if not isinstance(value, int | float) else str(value)
            if text is not None:
                fields[name] = text
        return fields

    def dimension_groups(
        self, raw: object, path: str, structure: _Structure
    ) -> list[tuple[dict[str, int], dict[str, AttributeValue]]]:
        """dimensionGroupAttributes: each key has one slot per dimension (DSD order, time too);
        the filled slots are the partial key its attribute values apply to."""
        if raw is None:
            return []
        if not isinstance(raw, dict):
            self.fail(f"{path}.dimensionGroupAttributes", "is not an object")
        groups = []
        for key, values in raw.items():
            where = f"{path}.dimensionGroupAttributes[{json.dumps(key)}]"
            slots = key.split(":")
            if len(slots) != len(structure.key_order) or not all(
                slot == "" or (slot.isdigit() and len(slot) < 10) for slot in slots
            ):
                self.fail(
                    where,
                    f"key needs {len(structure.key_order)} colon-separated slots, "
                    "one per dimension",
                )
            constraint = {
                component.id: int(slot)
                for component, slot in zip(structure.key_order, slots, strict=True)
                if slot
            }
            attributes = self.attribute_values(
                structure.attributes["dimensionGroup"], values, where
            )
            groups.append((constraint, attributes))
        return groups

    def observations(
        self,
        raw: object,
        path: str,
        context: _DataSetContext,
        outer_indexes: dict[str, int],
        series_attributes: dict[str, AttributeValue],
        series_annotations: tuple[dict[str, str], ...] = (),
    ) -> Iterator[Observation]:
        """Each observation's array is, per the SDMX-JSON field guide: the measure values, then
        the observation-level attribute values (trailing ones may be omitted), then the indexes
        of its annotations. In a Delete data set an observation may be an empty array."""
        if not isinstance(raw, dict):
            self.fail(path, "is not an object")
        structure = context.structure
        obs_dims = structure.dimensions["observation"]
        obs_attributes = structure.attributes["observation"]
        measures = structure.measures or [_Component(PRIMARY_MEASURE, structure.path, None)]
        value_position = next(
            (i for i, measure in enumerate(measures) if measure.id == PRIMARY_MEASURE), 0
        )
        deleting = context.action == "delete"
        for key, entry in raw.items():
            where = f"{path}[{json.dumps(key)}]"
            indexes = dict(outer_indexes)
            indexes.update(
                zip((c.id for c in obs_dims), self.key_indexes(key, obs_dims, where), strict=True)
            )
            if not isinstance(entry, list) or (len(entry) <= value_position and not deleting):
                self.fail(
                    where, f"observation is not an array holding {measures[value_position].id}"
                )
            measure_values: dict[str, AttributeValue] = {}
            for position, measure in enumerate(measures[: len(entry)]):
                measure_values[measure.id] = self.component_value(
                    measure, entry[position], f"{where}[{position}]"
                )
            raw_value = entry[value_position] if len(entry) > value_position else None
            try:
                value = to_value(measure_values.get(measures[value_position].id))
            except ValueError:
                self.fail(where, f"observation value {json.dumps(raw_value)} is not a number")
            end_of_attributes = len(measures) + len(obs_attributes)
            observation_attributes = self.attribute_values(
                obs_attributes, entry[len(measures) : end_of_attributes], where, len(measures)
            )
            annotations = self.annotations(
                structure, entry[end_of_attributes:], f"{where}[{end_of_attributes}:]"
            )
            yield self.observation(
                context,
                indexes,
                series_attributes,
                observation_attributes,
                value,
                where,
                annotations=context.annotations + series_annotations + annotations,
                measures=measure_values if len(measures) > 1 else {},
            )

    def observation(
        self,
        context: _DataSetContext,
        indexes: dict[str, int],
        series_attributes: dict[str, AttributeValue],
        observation_attributes: dict[str, AttributeValue],
        value: float | None,
        where: str,
        *,
        annotations: tuple[dict[str, str], ...] = (),
        measures: dict[str, AttributeValue] | None = None,
    ) -> Observation:
        dimensions: dict[str, str] = {}
        labels: dict[str, str] = {}
        time_period = ""
        for component in context.structure.key_order:
            code, label = component.codes[indexes[component.id]]
            if component.is_time:
                time_period = code
                continue
            dimensions[component.id] = code
            if label is not None:
                labels[component.id] = label
        if not is_time_period(time_period):
            self.fail(
                where,
                f"time period {time_period!r} is not YYYY, YYYY-Qn, YYYY-Sn, YYYY-MM or YYYY-MM-DD",
            )
        provided: dict[str, AttributeValue] = dict(context.dataset_attributes)
        for constraint, group_attributes in context.groups:
            if all(indexes.get(dim) == index for dim, index in constraint.items()):
                provided.update({k: v for k, v in group_attributes.items() if v is not None})
        provided.update({k: v for k, v in series_attributes.items() if v is not None})
        provided.update({k: v for k, v in observation_attributes.items() if v is not None})
        attributes: dict[str, AttributeValue] = {}
        for component in context.all_attributes:
            found = provided.get(component.id)
            if found is None:
                found = self.scalar(component.default, f"{component.path}.default")
            if found is not None:
                attributes[component.id] = found
        return Observation(
            dataflow=context.dataflow,
            series_key=_series_key(dimensions),
            dimensions=dimensions,
            attributes=attributes,
            labels=labels,
            time_period=time_period,
            value=value,
            line=None,
            annotations=annotations,
            measures=measures or {},
            action=context.action,
        )


@dataclass(frozen=True, slots=True)
class _DataSetContext:
    """What every observation of one data set shares."""

    dataflow: str
    structure: _Structure
    dataset_attributes: dict[str, AttributeValue]
    groups: list[tuple[dict[str, int], dict[str, AttributeValue]]]
    action: str = "upsert"
    annotations: tuple[dict[str, str], ...] = ()

    @property
    def all_attributes(self) -> list[_Component]:
        return [component for level in self.structure.attributes.values() for component in level]


def parse_sdmx_json(payload: bytes, origin: str) -> list[Observation]:
    """Parse an SDMX-JSON data message (2.0 `data.structures`, 1.0 `data.structure`, or the
    draft layout with top-level `structure`), series-keyed or flat.

    Raises SourceFormatError naming `origin` and the JSON path (or line, for syntax errors).
    """
    if not payload.strip():
        raise SourceFormatError(origin, "file is empty")
    try:
        message = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise SourceFormatError(
            origin, f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno
        ) from exc
    except UnicodeDecodeError as exc:
        raise SourceFormatError(origin, f"not UTF-8 text: byte {exc.start} is invalid") from exc
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise SourceFormatError(origin, f"invalid JSON: {exc}") from None
    return _JsonReader(origin).read(message)


# ---------------------------------------------------------------------------------------- CSV


def _split_label(cell: str) -> tuple[str, str | None]:
    """`CODE: Name` (SDMX-CSV labels=both) to code and name; other cells are only trimmed."""
    code, separator, name = cell.partition(": ")
    if separator and _CODE_RE.match(code.strip()):
        return code.strip(), name.strip() or None
    return cell.strip(), None


@dataclass(frozen=True, slots=True)
class _CsvLayout:
    """Column roles, worked out once from the header row."""

    origin: str
    columns: list[str]
    label_mode: bool
    structure_type: int | None  # STRUCTURE column (2.0 only)
    structure_id: int  # DATAFLOW (1.0) or STRUCTURE_ID (2.0)
    dimensions: list[int]
    time: int
    value: int
    attributes: list[int]
    action: int | None = None  # ACTION column (2.0): I/A/M/R upsert, D delete

    @classmethod
    def from_header(cls, header: list[str], origin: str, line: int) -> _CsvLayout:
        label_mode = any(":" in cell for cell in header)
        columns = [cell.partition(":")[0].strip() for cell in header]

        def fail(message: str) -> NoReturn:
            raise SourceFormatError(origin, message, line=line)

        if columns[0] == "DATAFLOW":
            structure_type, structure_id = None, 0
        elif columns[:2] == ["STRUCTURE", "STRUCTURE_ID"]:
            structure_type, structure_id = 0, 1
        else:
            fail(
                "header must start with DATAFLOW (SDMX-CSV 1.0) or STRUCTURE,STRUCTURE_ID "
                f"(SDMX-CSV 2.0), found {columns[0]!r}"
            )
        duplicates = sorted({column for column in columns if columns.count(column) > 1})
        if duplicates:
            fail(f"duplicate column(s) {', '.join(duplicates)}")
        for required in (TIME_DIMENSION, PRIMARY_MEASURE):
            if required not in columns:
                fail(f"no {required} column")
        lead = 0
        while lead < len(columns) and columns[lead] in _CSV_LEAD_COLUMNS:
            lead += 1
        time, value = columns.index(TIME_DIMENSION), columns.index(PRIMARY_MEASURE)
        dimensions = [i for i in range(lead, time) if i != value]
        if not dimensions:
            fail(f"no dimension columns between the structure columns and {TIME_DIMENSION}")
        attributes = [
            i
            for i in range(lead, len(columns))
            if i not in dimensions
            and i not in (time, value)
            and columns[i] not in _CSV_LEAD_COLUMNS
        ]
        return cls(
            origin,
            columns,
            label_mode,
            structure_type,
            structure_id,
            dimensions,
            time,
            value,
            attributes,
            columns.index("ACTION") if "ACTION" in columns else None,
        )

    def cell(self, raw: str) -> tuple[str, str | None]:
        return _split_label(raw) if self.label_mode else (raw.strip(), None)

    def observation(self, cells: list[str], line: int) -> Observation:
        def fail(message: str) -> NoReturn:
            raise SourceFormatError(self.origin, message, line=line)

        if len(cells) != len(self.columns):
            fail(f"row has {len(cells)} cells, the header has {len(self.columns)}")
        if (
            self.structure_type is not None
            and cells[self.structure_type].strip().lower() not in _CSV_STRUCTURE_TYPES
        ):
            fail(
                f"STRUCTURE {cells[self.structure_type]!r} is not dataflow, datastructure "
                "or dataprovision"
            )
        raw_dataflow = cells[self.structure_id]
        dataflow = raw_dataflow.partition(": ")[0].strip() if self.label_mode else raw_dataflow
        if not DATAFLOW_RE.match(dataflow):
            fail(
                f"{self.columns[self.structure_id]} {raw_dataflow!r} is not a reference "
                "AGENCY:ID(VERSION)"
            )
        dimensions: dict[str, str] = {}
        labels: dict[str, str] = {}
        for index in self.dimensions:
            code, label = self.cell(cells[index])
            if not code:
                fail(f"empty code in dimension column {self.columns[index]}")
            dimensions[self.columns[index]] = code
            if label is not None:
                labels[self.columns[index]] = label
        time_period = self.cell(cells[self.time])[0]
        if not is_time_period(time_period):
            fail(
                f"{TIME_DIMENSION} {time_period!r} is not YYYY, YYYY-Qn, YYYY-Sn, YYYY-MM "
                "or YYYY-MM-DD"
            )
        try:
            value = to_value(cells[self.value])
        except ValueError:
            fail(f"{PRIMARY_MEASURE} {cells[self.value]!r} is not a number")
        attributes: dict[str, AttributeValue] = {}
        for index in self.attributes:
            code = self.cell(cells[index])[0]
            if code:
                attributes[self.columns[index]] = code
        action = "upsert"
        if self.action is not None and (raw_action := self.cell(cells[self.action])[0]):
            found = _ACTIONS.get(raw_action.lower())
            if found is None:
                fail(f"ACTION {raw_action!r} is not I, A, M, R or D")
            action = found
        return Observation(
            dataflow=dataflow,
            series_key=_series_key(dimensions),
            dimensions=dimensions,
            attributes=attributes,
            labels=labels,
            time_period=time_period,
            value=value,
            line=line,
            action=action,
        )


def _csv_rows(text: str, origin: str) -> Iterator[tuple[int, list[str]]]:
    """Non-empty CSV records with the line each starts on (quoted cells may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        for cells in reader:
            if cells:
                yield start, cells
            start = reader.line_num + 1
    except csv.Error as exc:
        raise SourceFormatError(origin, f"unreadable CSV: {exc}", line=reader.line_num) from exc


def parse_sdmx_csv(text: str, origin: str) -> list[Observation]:
    """Parse an SDMX-CSV 1.0 (`DATAFLOW` column) or 2.0 (`STRUCTURE`, `STRUCTURE_ID`) message.

    Dimension columns are those between the structure columns and TIME_PERIOD; every other
    column but OBS_VALUE is an attribute. Headers `ID: Name` and cells `CODE: Name` (labels=both)
    are split into codes and labels. Raises SourceFormatError naming `origin` and the line.
    """
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise SourceFormatError(origin, "file is empty")
    rows = _csv_rows(text, origin)
    header_line, header = next(rows)
    layout = _CsvLayout.from_header(header, origin, header_line)
    return [layout.observation(cells, line) for line, cells in rows]
