"""National statistics offices' SDMX feeds (SDMX-JSON and SDMX-CSV), from files or an SDMX REST URL.

Public API: `read_feeds()` parses every input first (a malformed file refuses the whole run before
anything is sent), then `run()` sends one CloudEvent per new or revised observation and checkpoints
what was sent only after Kafka confirmed delivery, so a re-run sends nothing new.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from connectors.errors import SourceFormatError
from connectors.events import make_event, stable_event_id
from connectors.kafka.producer import EventProducer
from connectors.sources.sdmx.helpers import SdmxObservation, parse_sdmx_csv, parse_sdmx_json
from connectors.sources.sdmx.settings import ACCEPT_HEADERS, detect_format
from connectors.sources.state import StateStore

SOURCE_NAME = "sdmx"
TOPIC = "stats.sdmx.observation.v1"
EVENT_TYPE = "org.urbanflow.stats.observation.v1"
FEED_SUFFIXES = (".json", ".csv")


@dataclass
class SdmxRunReport:
    inputs: int = 0
    observations: int = 0
    sent: int = 0
    unchanged: int = 0


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


def to_event(observation: SdmxObservation) -> tuple[str, dict]:
    """(message key, CloudEvent). The id hashes the content, so a revision gets a new id."""
    data = observation.to_event_data()
    source = source_urn(observation)
    event_id = stable_event_id(source, data)
    subject = observation.dimensions.get("CITY") or observation.dimensions.get("REF_AREA")
    event = make_event(EVENT_TYPE, source, data, event_id=event_id, subject=subject)
    return observation.series_key, event


def observation_key(observation: SdmxObservation) -> str:
    return f"{observation.dataflow}|{observation.series_key}|{observation.time_period}"


def run(
    producer: EventProducer,
    state_dir: Path,
    paths: Iterable[Path] = (),
    urls: Iterable[str] = (),
    *,
    topic: str = TOPIC,
) -> SdmxRunReport:
    """Send new or revised observations; checkpoint only after Kafka confirmed them."""
    paths, urls = list(paths), list(urls)
    observations = read_feeds(paths, urls)
    store = StateStore(state_dir, SOURCE_NAME)
    sent_ids: dict[str, str] = store.load().get("sent", {})
    report = SdmxRunReport(
        inputs=len(expand_paths(paths)) + len(urls), observations=len(observations)
    )
    updates: dict[str, str] = {}
    for observation in observations:
        key, event = to_event(observation)
        obs_key = observation_key(observation)
        if sent_ids.get(obs_key) == event["id"]:
            report.unchanged += 1
            continue
        producer.send_event(topic, event, key=key)
        updates[obs_key] = event["id"]
    report.sent = producer.confirm()
    if updates:
        store.save({"sent": {**sent_ids, **updates}})
    return report
