"""National statistics offices' SDMX feeds (SDMX-JSON and SDMX-CSV), from files or an SDMX REST URL.

`SOURCE` parses every input first (a malformed file refuses the whole run before anything is sent),
then yields one event per new or revised observation; the SDK saves what was sent only after Kafka
confirmed it, so a re-run sends nothing new.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from connectors.errors import SourceFormatError
from connectors.events import stable_event_id
from connectors.sdk import Checkpoint, Record, Source, Stream
from connectors.sources.sdmx.helpers import SdmxObservation, parse_sdmx_csv, parse_sdmx_json
from connectors.sources.sdmx.settings import ACCEPT_HEADERS, detect_format

SOURCE_NAME = "sdmx"
TOPIC = "stats.sdmx.observation.v1"
EVENT_TYPE = "org.urbanflow.stats.observation.v1"
FEED_SUFFIXES = (".json", ".csv")


def _fetch(url: str, timeout_s: float = 60.0) -> tuple[bytes, str]:
    request = urllib.request.Request(
        url, headers={"Accept": f"{ACCEPT_HEADERS['json']}, {ACCEPT_HEADERS['csv']};q=0.8"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read(), response.headers.get("Content-Type", "")
    except (urllib.error.URLError, TimeoutError) as exc:
        raise SourceFormatError(url, f"could not fetch: {exc}") from None


def _parse(payload: bytes, origin: str, hint: str) -> list[SdmxObservation]:
    if detect_format(hint, payload[:64]) == "json":
        return parse_sdmx_json(payload, origin)
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceFormatError(origin, f"not UTF-8 text (byte {exc.start})") from None
    return parse_sdmx_csv(text, origin)


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given; directories contribute their .json/.csv feeds in name order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in FEED_SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            raise SourceFormatError(str(path), "no such file or directory")
    return files


def read_feeds(paths: Iterable[Path] = (), urls: Iterable[str] = ()) -> list[SdmxObservation]:
    """Parse every input completely; raises on the first malformed one, before anything is sent."""
    observations: list[SdmxObservation] = []
    for path in expand_paths(paths):
        observations.extend(_parse(path.read_bytes(), str(path), path.name))
    for url in urls:
        payload, content_type = _fetch(url)
        observations.extend(_parse(payload, url, content_type or url))
    return observations


def source_urn(observation: SdmxObservation) -> str:
    """`urn:nso:<agency>` from the dataflow reference AGENCY:ID(VERSION)."""
    return "urn:nso:" + observation.dataflow.split(":", 1)[0].lower()


def observation_key(observation: SdmxObservation) -> str:
    return f"{observation.dataflow}|{observation.series_key}|{observation.time_period}"


class SdmxConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Files, folders (their .json/.csv feeds) and SDMX REST data URLs to read."""

    inputs: list[str]
    timeout_s: float = 60.0


OBSERVATIONS = Stream(
    name="observations",
    topic=TOPIC,
    event_type=EVENT_TYPE,
    key="series key",
    cursor="content hash per dataflow|series key|period (revisions are re-sent)",
)


def _split_inputs(inputs: Iterable[str]) -> tuple[list[Path], list[str]]:
    urls = [i for i in inputs if i.startswith(("http://", "https://"))]
    return [Path(i) for i in inputs if i not in urls], urls


class SdmxSource(Source):
    name = SOURCE_NAME
    description = "National statistics offices: SDMX-JSON / SDMX-CSV data messages (files or REST)"
    config = SdmxConfig
    streams = (OBSERVATIONS,)

    def check(self, config: SdmxConfig) -> list[str]:
        problems = []
        paths, urls = _split_inputs(config.inputs)
        if not config.inputs:
            problems.append("no inputs: give files, folders or SDMX REST URLs")
        problems += [f"{p}: no such file or directory" for p in paths if not p.exists()]
        for url in urls:
            try:
                _fetch(url, config.timeout_s)
            except SourceFormatError as exc:
                problems.append(str(exc))
        return problems

    def read(self, config: SdmxConfig, state: dict) -> Iterator[Record | Checkpoint]:
        """Parse everything first (a bad file refuses the run), then yield new or revised ones."""
        paths, urls = _split_inputs(config.inputs)
        observations = read_feeds(paths, urls)
        sent_ids: dict[str, str] = dict(state.get("sent", {}))
        for observation in observations:
            data = observation.to_event_data()
            source = source_urn(observation)
            event_id = stable_event_id(source, data)
            obs_key = observation_key(observation)
            if sent_ids.get(obs_key) == event_id:
                continue
            sent_ids[obs_key] = event_id
            yield Record(
                stream=OBSERVATIONS,
                key=observation.series_key,
                source=source,
                event_id=event_id,
                data=data,
                subject=observation.dimensions.get("CITY")
                or observation.dimensions.get("REF_AREA"),
            )
        yield Checkpoint({"sent": sent_ids})


SOURCE = SdmxSource()
