"""Humanitarian partners' HXL-tagged data (IOM DTM displacement, migration flows ...), CSV or XLSX.

The hashtag row says what each column means (`#affected+idps+f` = displaced women), so each
people-count cell becomes one record with its disaggregation spelled out (sex, age group,
population group) and its place resolved to our city codes where the partner gave a UN/LOCODE.
Every input is parsed before anything is sent (an untagged or malformed file refuses the run);
a bad row goes to the dead-letter topic and the rest loads. A file already sent unchanged (same
SHA-256) is skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated
from urllib.parse import urlsplit

import msgspec

from connectors.events import stable_event_id
from connectors.reference import PARTNER_SLUG_PATTERN, city_countries
from connectors.sdk import Checkpoint, Record, Refused, Source, Stream
from connectors.sources.common import expand_paths, fetch, input_problems, split_inputs
from connectors.sources.hxl.helpers import HxlRow, parse_rows
from connectors.sources.hxl.settings import INPUT_SUFFIXES
from connectors.tables import table_rows

SOURCE_NAME = "hxl"
TOPIC = "partner.hxl.record.v1"
EVENT_TYPE = "org.urbanflow.hxl.record.v1"
ACCEPT = "text/csv, application/vnd.openxmlformats-officedocument.spreadsheetml.sheet;q=0.9"


class HxlConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """HXL-tagged CSV/XLSX files, folders of them, or URLs, from one partner."""

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


def read_inputs(config: HxlConfig, sent: dict[str, str]) -> list[HxlInput]:
    """Every input not already sent unchanged, parsed; raises on the first refused one."""
    paths, urls = split_inputs(config.inputs)
    payloads = [(str(p), p.read_bytes()) for p in expand_paths(paths, INPUT_SUFFIXES)]
    payloads += [(url, fetch(url, ACCEPT, config.timeout_s)[0]) for url in urls]
    inputs = []
    cities = city_countries()
    for origin, payload in payloads:
        digest = hashlib.sha256(payload).hexdigest()
        if sent.get(origin) == digest:
            continue
        dataset = _dataset_name(origin, config)
        table = list(table_rows(origin, payload))
        rows = list(parse_rows(table, origin, dataset, cities))
        inputs.append(HxlInput(origin, dataset, digest, rows))
    return inputs


def to_records(hxl_input: HxlInput, source: str) -> Iterator[Record | Refused]:
    """One record per count (id: dataset, row content, tag spec); bad rows to the DLQ."""
    for row in hxl_input.rows:
        if isinstance(row, Refused):
            yield row.replace(stream=RECORDS)
            continue
        for data in row.records:
            spec = data["hashtag"] + "".join(data["attributes"])
            yield Record(
                stream=RECORDS,
                key=hxl_input.dataset,
                source=source,
                event_id=stable_event_id(hxl_input.dataset, row.cells, spec),
                data=data,
                subject=data.get("city_code") or data.get("country_code"),
            )


class HxlSource(Source):
    name = SOURCE_NAME
    description = "Humanitarian partners: HXL-tagged CSV/XLSX (displacement, migration counts)"
    config = HxlConfig
    streams = (RECORDS,)

    def check(self, config: HxlConfig) -> list[str]:
        return input_problems(config.inputs, ACCEPT, config.timeout_s)

    def read(self, config: HxlConfig, state: dict) -> Iterator[Record | Refused | Checkpoint]:
        """Parse every changed input first, then send each and checkpoint its hash."""
        sent: dict[str, str] = dict(state.get("files", {}))
        for hxl_input in read_inputs(config, sent):
            yield from to_records(hxl_input, source_urn(config))
            sent[hxl_input.origin] = hxl_input.sha256
            yield Checkpoint({"files": dict(sent)})


SOURCE = HxlSource()
