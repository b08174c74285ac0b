"""National statistics offices' SDMX feeds (SDMX-JSON and SDMX-CSV), from files or an SDMX REST URL.

`SOURCE` parses every input first (a malformed file refuses the whole run before anything is sent),
then yields one event per new or revised observation; the SDK saves what was sent only after Kafka
confirmed it, so a re-run sends nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from connectors.errors import SourceFormatError
from connectors.sdk import Checkpoint, Record, Refused, Source
from connectors.sources.common import expand_paths, fetch, input_problems, split_inputs
from connectors.sources.observations import (
    Observation,
    incremental_observations,
    observation_stream,
)
from connectors.sources.sdmx.helpers import parse_sdmx_csv, parse_sdmx_json
from connectors.sources.sdmx.settings import ACCEPT_HEADERS, detect_format

SOURCE_NAME = "sdmx"
TOPIC = "stats.sdmx.observation.v1"
FEED_SUFFIXES = (".json", ".csv")
ACCEPT = f"{ACCEPT_HEADERS['json']}, {ACCEPT_HEADERS['csv']};q=0.8"
OBSERVATIONS = observation_stream(TOPIC, key="series key")


def _parse(payload: bytes, origin: str, hint: str) -> list[Observation]:
    if detect_format(hint, payload[:64]) == "json":
        return parse_sdmx_json(payload, origin)
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceFormatError(origin, f"not UTF-8 text (byte {exc.start})") from None
    return parse_sdmx_csv(text, origin)


def read_feeds(paths: Iterable[Path] = (), urls: Iterable[str] = ()) -> list[Observation]:
    """Parse every input completely; raises on the first malformed one, before anything is sent."""
    observations: list[Observation] = []
    for path in expand_paths(paths, FEED_SUFFIXES):
        observations.extend(_parse(path.read_bytes(), str(path), path.name))
    for url in urls:
        payload, content_type = fetch(url, ACCEPT)
        observations.extend(_parse(payload, url, content_type or url))
    return observations


def source_urn(observation: Observation) -> str:
    """`urn:nso:<agency>` from the dataflow reference AGENCY:ID(VERSION)."""
    return "urn:nso:" + observation.dataflow.split(":", 1)[0].lower()


class SdmxConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Files, folders (their .json/.csv feeds) and SDMX REST data URLs to read."""

    inputs: list[str]
    timeout_s: float = 60.0


class SdmxSource(Source):
    name = SOURCE_NAME
    description = "National statistics offices: SDMX-JSON / SDMX-CSV data messages (files or REST)"
    config = SdmxConfig
    streams = (OBSERVATIONS,)

    def check(self, config: SdmxConfig) -> list[str]:
        return input_problems(config.inputs, ACCEPT, config.timeout_s)

    def read(self, config: SdmxConfig, state: dict) -> Iterator[Record | Refused | Checkpoint]:
        paths, urls = split_inputs(config.inputs)
        yield from incremental_observations(
            OBSERVATIONS, read_feeds(paths, urls), state, source_urn
        )


SOURCE = SdmxSource()
