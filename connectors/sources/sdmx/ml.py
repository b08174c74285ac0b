"""SDMX-ML data messages (2.1 and 3.0, generic and structure-specific) read by sdmx1.

sdmx1 does the reading; this module maps its data sets onto our `Observation` and turns whatever
goes wrong inside sdmx1 (or lxml under it) into one `SourceFormatError` naming the input, so a
malformed message refuses its input with one line instead of a traceback.

sdmx1 2.28 drops the data-set action (`DataSet/@action`, 2.1 and 3.0, and the header's
`DataSetAction`): every data set it reads has action None. `data_set_actions` reads them with lxml
beside sdmx1, in document order, so a Delete data set still deletes (test_sdmx_gaps.py shows the
gap).

A structure-specific message names its components only by the data structure definition (DSD):
without it sdmx1 guesses, and series attributes come back as dimensions. So such a message is read
with the DSD of a structure message given among the inputs (or fetched beside a REST URL), and
refused, naming the DSD, when there is none. A message fetched from a REST service can instead be
given a `resolve` callable that fetches the dataflow or DSD it names (the source does so from the
same service and caches the answer).

sdmx1 2.28 reads a structure-specific data set without its DSD only when the data set's
`structureRef` is the header's `structureID`; otherwise ("No DSD when creating DataSet") it cannot
read the message at all, so cannot say which DSD it needs. ISTAT answers so (header
`IT1_22_289_1_0`, data set `IT1_DCIS_POPRES1_1_0`). `header_structure` then reads the dataflow or
DSD the header names with lxml, and the message is read with that DSD (test_sdmx_source.py).

SDMX 3.0 lets a DSD declare several measures, and structure-specific data then carries each as an
attribute of `Obs`; sdmx1 2.28 reads only the first and refuses the message on the second
(`KeyError`). `split_measures` takes every measure out with lxml, keyed by data set and full
observation key, and hands sdmx1 the message with the first measure only.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import sdmx
import sdmx.reader.xml.v21
import sdmx.reader.xml.v30  # imported first: see below
from lxml import etree
from sdmx.model import common

from connectors.errors import SourceFormatError
from connectors.sources.observations import DATAFLOW_RE, AttributeValue, Observation
from connectors.sources.sdmx.helpers import (
    PRIMARY_MEASURE,
    TIME_DIMENSION,
    is_time_period,
    to_value,
)

# sdmx1 2.28 imports its SDMX-ML 3.0 reader lazily, and that import fails once a 2.1
# structure-specific message has registered its own namespace ("ValueError: urn:sdmx:..."): every
# 3.0 message read after a 2.1 one in the same process would be refused. Importing both readers
# above, before anything is read, avoids it (tests/unit/test_sdmx_ml.py reads both in one process).

log = logging.getLogger(__name__)

Structures = dict[str, Any]  # DSD or dataflow id (and AGENCY:ID(VERSION)) -> sdmx1 object
#: A structure a message names, to fetch: a dataflow (with its DSD) or a DSD, AGENCY:ID(VERSION)
Wanted = tuple[Literal["dataflow", "datastructure"], str]
Resolver = Callable[[Wanted], Structures]
#: (data set index, every dimension's code in DSD order) -> that observation's measures by id
MeasuresByKey = dict[tuple[int, tuple[str | None, ...]], dict[str, AttributeValue]]


def _text(value: object) -> str | None:
    """sdmx1's localised, list-valued (SDMX 3.0) and coded values as one string, English first."""
    if value is None:
        return None
    if isinstance(value, common.InternationalString):
        if not value.localizations:
            return None
        return value.localizations.get("en") or next(iter(value.localizations.values()))
    if isinstance(value, list | tuple):
        parts = [_text(item) for item in value]
        return ";".join(part for part in parts if part) or None
    if isinstance(value, common.AttributeValue):
        return _text(value.value)
    if hasattr(value, "id") and isinstance(value.id, str):  # a Code
        return value.id
    return str(value)


def _attribute(value: object) -> AttributeValue:
    raw = value.value if isinstance(value, common.AttributeValue) else value
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return None if isinstance(raw, float) and not math.isfinite(raw) else raw
    return _text(raw)


def _annotations(*owners: object) -> tuple[dict[str, str], ...]:
    found = []
    for owner in owners:
        for annotation in getattr(owner, "annotations", None) or ():
            fields = {
                "id": annotation.id,
                "title": annotation.title,
                "type": annotation.type,
                "text": _text(annotation.text),
                "url": annotation.url,
            }
            found.append({k: str(v) for k, v in fields.items() if v})
    return tuple(found)


def _reference(artefact: object) -> str | None:
    """AGENCY:ID(VERSION) of a dataflow or DSD, when sdmx1 knows all three."""
    maintainer = getattr(artefact, "maintainer", None)
    identifier, version = getattr(artefact, "id", None), getattr(artefact, "version", None)
    if not (maintainer and getattr(maintainer, "id", None) and identifier and version):
        return None
    return f"{maintainer.id}:{identifier}({version})"


def read_structures(payload: bytes, origin: str) -> Structures:
    """The DSDs and dataflows of an SDMX-ML structure message, by id and by full reference."""
    message = _read(payload, origin)
    if not isinstance(message, sdmx.message.StructureMessage):
        raise SourceFormatError(origin, "not an SDMX structure message")
    found: Structures = {}
    for artefact in [*message.structure.values(), *message.dataflow.values()]:
        found[artefact.id] = artefact
        if reference := _reference(artefact):
            found[reference] = artefact
    return found


class _NoStructureWarning(logging.Filter):
    """sdmx1 warns when structure-specific data comes without a DSD; we decide that ourselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "got no structure" not in record.getMessage()


logging.getLogger("sdmx.reader.xml.v21").addFilter(_NoStructureWarning())


def _read(payload: bytes, origin: str, **kwargs: Any) -> Any:
    if not payload.strip():
        raise SourceFormatError(origin, "file is empty")
    try:
        # on a malformed message sdmx1 2.28 prints its whole parse stack to stdout before raising
        with contextlib.redirect_stdout(io.StringIO()):
            return sdmx.read_sdmx(io.BytesIO(payload), format="XML", **kwargs)
    except SourceFormatError:
        raise
    except Exception as exc:  # sdmx1 and lxml raise many kinds; each means "cannot read this"
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise SourceFormatError(origin, f"not a readable SDMX-ML message: {detail}") from None


def _is_structure_specific(message: Any) -> bool:
    return any(type(ds).__name__.startswith("StructureSpecific") for ds in message.data)


def _dsd_for(message: Any, structures: Mapping[str, Any]) -> Any:
    """The DSD a data message refers to, from the structures given, or None."""
    candidates = [getattr(message, "dataflow", None)]
    for data_set in message.data:
        candidates += [data_set.described_by, data_set.structured_by]
    for artefact in candidates:
        for name in (_reference(artefact), getattr(artefact, "id", None)):
            found = structures.get(name) if name else None
            if found is not None:
                return getattr(found, "structure", None) if hasattr(found, "structure") else found
    return _only_dsd(structures)


def _only_dsd(structures: Mapping[str, Any]) -> Any:
    """The one DSD among `structures`, or None: SDMX 3.0 data names its dataflow, and a DSD file
    often comes without one, so with a single DSD there is nothing to choose."""
    dsds = {
        id(v): v for v in structures.values() if isinstance(v, common.BaseDataStructureDefinition)
    }
    return next(iter(dsds.values())) if len(dsds) == 1 else None


def _named_dsd(wanted: Iterable[Wanted], structures: Mapping[str, Any]) -> Any:
    """The DSD of the first dataflow or DSD in `wanted` found in `structures` (by reference,
    then by id), else the only DSD there, else None."""
    for _, reference in wanted:
        identifier = reference.partition(":")[2].partition("(")[0]
        found = structures.get(reference) or structures.get(identifier)
        if found is not None:
            return getattr(found, "structure", None) if hasattr(found, "structure") else found
    return _only_dsd(structures)


def _wanted(message: Any) -> Wanted | None:
    """The dataflow a structure-specific message names (SDMX 3.0 names only that), else its DSD."""
    if reference := _reference(getattr(message, "dataflow", None)):
        return "dataflow", reference
    for data_set in message.data:
        if reference := _reference(data_set.structured_by):
            return "datastructure", reference
    return None


#: The DSD a structure-specific message's header names in its `namespace` URN
_NAMESPACE_DSD = re.compile(r"DataStructure=([\w.@-]+:[\w.@-]+\([\w.]+\))")


def header_structure(payload: bytes) -> tuple[Wanted, ...]:
    """The structures the header of a structure-specific SDMX-ML 2.1 message names, read with
    lxml for messages sdmx1 cannot read without their DSD (see the module docstring): the
    dataflow (`StructureUsage`) or DSD (`Structure`) of its `Ref`, then the DSD of its
    `namespace` URN. Nothing for any other message, or one that is not well-formed."""
    kinds: dict[str, Literal["dataflow", "datastructure"]] = {
        "StructureUsage": "dataflow",
        "Structure": "datastructure",
    }
    refs: list[Wanted] = []
    named: list[Wanted] = []
    path: list[str] = []
    events = etree.iterparse(
        io.BytesIO(payload), events=("start", "end"), resolve_entities=False, no_network=True
    )
    try:
        for event, element in events:
            name = _local(element)
            if event == "end":
                path.pop()
                if name == "Header":
                    break
                continue
            path.append(name)
            if len(path) == 1 and not name.startswith("StructureSpecific"):
                return ()
            if path[1:] == ["Header", "Structure"]:
                if urn := _NAMESPACE_DSD.search(element.get("namespace") or ""):
                    named.append(("datastructure", urn[1]))
            elif len(path) == 5 and path[1:3] == ["Header", "Structure"] and name == "Ref":
                agency, identifier = element.get("agencyID"), element.get("id")
                version = element.get("version")
                if path[3] in kinds and agency and identifier and version:
                    refs.append((kinds[path[3]], f"{agency}:{identifier}({version})"))
    except (etree.LxmlError, ValueError):  # lxml raises both on malformed XML
        return ()
    return tuple(refs + named)


def parse_sdmx_ml(
    payload: bytes,
    origin: str,
    structures: Mapping[str, Any] | None = None,
    resolve: Resolver | None = None,
) -> list[Observation]:
    """Every observation of an SDMX-ML data message, with dimensions, attributes, annotations
    and the data set's action; raises SourceFormatError naming `origin` otherwise. A
    structure-specific message whose DSD is not in `structures` asks `resolve` for it."""
    structures = structures or {}
    measures: MeasuresByKey | None = None
    dsd = None
    try:
        message = _read(payload, origin)
    except SourceFormatError:
        if not (named := header_structure(payload)):
            raise
        dsd = _named_dsd(named, structures)
        if dsd is None and resolve is not None:
            dsd = _named_dsd(named, resolve(named[0]))
        if dsd is None:
            raise SourceFormatError(
                origin,
                f"structure-specific data needs its data structure definition {named[-1][1]}: "
                "add the structure message (DSD) to the inputs",
            ) from None
        message = _read(payload, origin, structure=dsd)
    actions = data_set_actions(payload)
    if isinstance(message, sdmx.message.ErrorMessage):
        raise SourceFormatError(
            origin, f"the service answered an SDMX error: {_text(message.text)}"
        )
    if not isinstance(message, sdmx.message.DataMessage):
        raise SourceFormatError(origin, f"not an SDMX data message ({type(message).__name__})")
    if _is_structure_specific(message):
        if dsd is None:  # not read with the DSD the header names (above): find it
            dsd = _dsd_for(message, structures)
        if dsd is None and resolve is not None and (wanted := _wanted(message)) is not None:
            dsd = _dsd_for(message, {**structures, **resolve(wanted)})
        if dsd is None:
            wanted = next(
                (
                    _reference(ds.structured_by) or getattr(ds.structured_by, "id", "")
                    for ds in message.data
                    if ds.structured_by is not None
                ),
                "",
            )
            raise SourceFormatError(
                origin,
                f"structure-specific data needs its data structure definition {wanted}: "
                "add the structure message (DSD) to the inputs",
            )
        if len(dsd.measures) > 1:
            payload, measures = split_measures(payload, dsd)
        message = _read(payload, origin, structure=dsd)
    try:
        return list(_observations(message, origin, actions, measures))
    except SourceFormatError:
        raise
    except Exception as exc:  # a model sdmx1 built but we cannot map: name it, no traceback
        raise SourceFormatError(
            origin, f"unreadable data set: {type(exc).__name__}: {exc}"
        ) from None


def _local(element: Any) -> str:
    """An element's name without its namespace ("" for comments and processing instructions)."""
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def data_set_actions(payload: bytes) -> list[str]:
    """Each data set's action (the header's DataSetAction as default), "upsert" or "delete"."""
    default, actions = "upsert", []
    events = etree.iterparse(
        io.BytesIO(payload), events=("start", "end"), resolve_entities=False, no_network=True
    )
    for event, element in events:
        name = _local(element)
        if event == "end" and name == "DataSetAction":
            default = "delete" if (element.text or "").strip().lower() == "delete" else default
        elif event == "start" and name == "DataSet":
            action = (element.get("action") or "").strip().lower()
            actions.append("delete" if action == "delete" else "upsert" if action else default)
        if event == "end" and name not in ("DataSetAction", "Header", "Structure"):
            element.clear()
    return actions


def split_measures(payload: bytes, dsd: Any) -> tuple[bytes, MeasuresByKey]:
    """Every measure of each `Obs` of a structure-specific message, and the message with only the
    DSD's first measure left (what sdmx1 2.28 can read). Numeric values become numbers, as in
    SDMX-JSON; a measure an observation omits is absent from its measures."""
    root = etree.fromstring(payload, etree.XMLParser(resolve_entities=False, no_network=True))
    dimension_ids = [dimension.id for dimension in dsd.dimensions]
    measure_ids = [measure.id for measure in dsd.measures]
    found: MeasuresByKey = {}
    data_sets = (element for element in root.iter() if _local(element) == "DataSet")
    for index, data_set in enumerate(data_sets):
        for obs in (element for element in data_set.iter() if _local(element) == "Obs"):
            parent = obs.getparent()
            codes = {**(parent.attrib if _local(parent) == "Series" else {}), **obs.attrib}
            key = tuple(codes.get(dimension_id) for dimension_id in dimension_ids)
            found[(index, key)] = {
                measure_id: _measure_value(obs.attrib[measure_id])
                for measure_id in measure_ids
                if measure_id in obs.attrib
            }
            for measure_id in measure_ids[1:]:
                obs.attrib.pop(measure_id, None)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8"), found


def _measure_value(raw: str) -> AttributeValue:
    """A number when the text is one (NaN and empty: missing), else the text (a coded measure)."""
    try:
        return to_value(raw)
    except ValueError:
        return raw


def _dataflow(message: Any, data_set: Any, origin: str) -> str:
    for artefact in (
        data_set.described_by,
        getattr(message, "dataflow", None),
        data_set.structured_by,
    ):
        reference = _reference(artefact)
        if reference and DATAFLOW_RE.match(reference):
            return reference
    raise SourceFormatError(origin, "no dataflow reference AGENCY:ID(VERSION) in the message")


def _observations(
    message: Any, origin: str, actions: list[str], measures: MeasuresByKey | None = None
) -> Iterable[Observation]:
    for index, data_set in enumerate(message.data):
        dataflow = _dataflow(message, data_set, origin)
        deleting = data_set.action == common.ActionType.delete
        action = "delete" if deleting or actions[index : index + 1] == ["delete"] else "upsert"
        dataset_attributes = {
            k: _attribute(v) for k, v in (getattr(data_set, "attrib", None) or {}).items()
        }
        structure = data_set.structured_by
        dimension_ids = [d.id for d in structure.dimensions] if measures is not None else []
        measure_ids = {m.id for m in structure.measures} if measures is not None else set()
        for obs in data_set.obs:
            where = f"data set {index + 1}, observation {obs.key}"
            key = obs.key
            dimensions: dict[str, str] = {}
            time_period = None
            for dim_id, key_value in key.values.items():
                code = _text(key_value.value)
                if dim_id == TIME_DIMENSION or isinstance(
                    key_value.value_for, common.TimeDimension
                ):
                    time_period = code
                elif code is not None:
                    dimensions[dim_id] = code
            if time_period is None or not is_time_period(time_period):
                raise SourceFormatError(
                    origin,
                    f"{where}: time period {time_period!r} is not YYYY, YYYY-Qn, YYYY-Sn, "
                    "YYYY-MM or YYYY-MM-DD",
                )
            if not dimensions:
                raise SourceFormatError(origin, f"{where}: no dimensions")
            attributes = dict(dataset_attributes)
            if obs.series_key is not None:
                attributes.update({k: _attribute(v) for k, v in obs.series_key.attrib.items()})
            attributes.update({k: _attribute(v) for k, v in obs.attrib.items()})
            raw_value, observation_measures = obs.value, {}
            if measures is not None:  # several measures: value is OBS_VALUE, else the first
                codes = tuple(
                    _text(key.values[d].value) if d in key.values else None for d in dimension_ids
                )
                if (index, codes) not in measures:  # lxml and sdmx1 disagree on the key
                    raise SourceFormatError(origin, f"{where}: cannot tell its measures apart")
                observation_measures = measures[(index, codes)]
                if PRIMARY_MEASURE in measure_ids:
                    raw_value = observation_measures.get(PRIMARY_MEASURE)
            try:
                value = to_value(_attribute(raw_value) if raw_value is not None else None)
            except ValueError:
                if action == "delete":
                    value = None
                else:
                    raise SourceFormatError(
                        origin, f"{where}: value {raw_value!r} is not a number"
                    ) from None
            yield Observation(
                dataflow=dataflow,
                series_key=".".join(dimensions.values()),
                dimensions=dimensions,
                attributes={k: v for k, v in attributes.items() if v is not None},
                labels={},
                time_period=time_period,
                value=value,
                line=None,
                annotations=_annotations(data_set, obs.series_key, obs),
                measures=observation_measures,
                action=action,
            )
