"""Humanitarian partners' HXL-tagged data (IOM DTM displacement, migration flows ...).

CSV, XLSX, XLS or JSON, read by libhxl (see `helpers`).

The hashtag row says what each column means (`#affected+idps+f` = displaced women), so each
people-count cell becomes one record with its disaggregation spelled out (sex, age group,
population group) and its place resolved to our city codes where the partner gave a UN/LOCODE.
Every input is parsed before anything is sent (an untagged or malformed file refuses the run
with one line naming it); a bad row goes to the dead-letter topic and the rest loads; a row
whose `#date` cannot be read keeps its counts with a warning. A file already sent unchanged
(same SHA-256) is skipped. `hdx` reads HDX's HXL resources through the same functions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Annotated
from urllib.parse import urlsplit

import msgspec

from connectors.errors import SourceFormatError
from connectors.events import stable_event_id
from connectors.reference import PARTNER_SLUG_PATTERN, city_countries
from connectors.sdk import Checkpoint, Record, Refused, Source, Stream
from connectors.sources.common import expand_paths, fetch, split_inputs
from connectors.sources.hxl.helpers import HxlRow, parse_rows, read_table
from connectors.sources.hxl.settings import ACCEPT, INPUT_SUFFIXES

SOURCE_NAME = "hxl"
TOPIC = "partner.hxl.record.v1"
#: v2 = v1 + optional `warnings`; the topic carries both (infra/kafka/topics.yml).
EVENT_TYPE = "org.urbanflow.hxl.record.v2"


class HxlConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """HXL-tagged CSV/XLSX/XLS/JSON files, folders of them, or URLs, from one partner."""

    partner: Annotated[str, msgspec.Meta(pattern=PARTNER_SLUG_PATTERN)]
    inputs: list[str]
    dataset: str | None = None  # the dataset name in every record; default: the file name
    timeout_s: float = 60.0


RECORDS = Stream(
    name="records",
    topic=TOPIC,
    event_type=EVENT_TYPE,
    key="dataset",
    cursor="SHA-256 per input file (a changed file is re-sent whole)",
)


@dataclass(frozen=True)
class HxlInput:
    """One input read and parsed: where from, its content hash, and its rows."""

    origin: str
    dataset: str
    sha256: str
    rows: list[HxlRow | Refused]


def source_urn(config: HxlConfig) -> str:
    return f"urn:partner:{config.partner}"


def _dataset_name(origin: str, config: HxlConfig) -> str:
    return config.dataset or PurePosixPath(urlsplit(origin).path).name or origin


def fetch_bytes(url: str, accept: str, timeout_s: float) -> bytes:
    """A GET's body; every way the network can fail (not only URLError) names the URL."""
    try:
        return fetch(url, accept, timeout_s)[0]
    except SourceFormatError:
        raise
    except (OSError, ValueError, HTTPException) as exc:
        raise SourceFormatError(url, f"could not fetch: {exc}") from None


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceFormatError(str(path), f"cannot read: {exc.strerror or exc}") from None


def parse_input(
    origin: str, payload: bytes, dataset: str, cities: Mapping[str, str] | None = None
) -> HxlInput:
    """One input's bytes read by libhxl and parsed; raises SourceFormatError naming `origin`."""
    digest = hashlib.sha256(payload).hexdigest()
    table = read_table(origin, payload)
    rows = list(parse_rows(table, origin, dataset, city_countries() if cities is None else cities))
    return HxlInput(origin, dataset, digest, rows)


def read_inputs(config: HxlConfig, sent: dict[str, str]) -> list[HxlInput]:
    """Every input not already sent unchanged, parsed; raises on the first refused one."""
    paths, urls = split_inputs(config.inputs)
    payloads = [(str(p), _read_file(p)) for p in expand_paths(paths, INPUT_SUFFIXES)]
    payloads += [(url, fetch_bytes(url, ACCEPT, config.timeout_s)) for url in urls]
    inputs = []
    cities = city_countries()
    for origin, payload in payloads:
        if sent.get(origin) == hashlib.sha256(payload).hexdigest():
            continue
        inputs.append(parse_input(origin, payload, _dataset_name(origin, config), cities))
    return inputs


def to_records(
    hxl_input: HxlInput, source: str, stream: Stream = RECORDS
) -> Iterator[Record | Refused]:
    """One record per count (id: dataset, row content, tag spec); bad rows to the DLQ."""
    for row in hxl_input.rows:
        if isinstance(row, Refused):
            yield row.replace(stream=stream)
            continue
        for data in row.records:
            spec = data["hashtag"] + "".join(data["attributes"])
            yield Record(
                stream=stream,
                key=hxl_input.dataset,
                source=source,
                event_id=stable_event_id(hxl_input.dataset, row.cells, spec),
                data=data,
                subject=data.get("city_code") or data.get("country_code"),
            )


class HxlSource(Source):
    name = SOURCE_NAME
    description = "Humanitarian partners: HXL-tagged CSV/XLSX/JSON (displacement, migration counts)"
    config = HxlConfig
    streams = (RECORDS,)

    def check(self, config: HxlConfig) -> list[str]:
        if not config.inputs:
            return ["no inputs: give files, folders or URLs"]
        paths, urls = split_inputs(config.inputs)
        problems = [f"{p}: no such file or directory" for p in paths if not p.exists()]
        for url in urls:
            try:
                fetch_bytes(url, ACCEPT, config.timeout_s)
            except SourceFormatError as exc:
                problems.append(str(exc))
        return problems

    def read(self, config: HxlConfig, state: dict) -> Iterator[Record | Refused | Checkpoint]:
        """Parse every changed input first, then send each and checkpoint its hash."""
        sent: dict[str, str] = dict(state.get("files", {}))
        for hxl_input in read_inputs(config, sent):
            yield from to_records(hxl_input, source_urn(config))
            sent[hxl_input.origin] = hxl_input.sha256
            yield Checkpoint({"files": dict(sent)})


SOURCE = HxlSource()
