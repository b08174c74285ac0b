"""The statistical observation every statistics source emits, and the machinery they share.

SDMX feeds, the World Bank and the UN SDG API all send `org.urbanflow.stats.observation.v1`
events: one `Observation` model, one way of deciding what is new or revised, one base for the
APIs that answer in pages. Kept here once so those sources cannot drift apart.
"""

from __future__ import annotations

import logging
import re
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any, ClassVar

import msgspec

from connectors.errors import SourceFormatError
from connectors.events import stable_event_id
from connectors.sdk import Checkpoint, Record, Refused, Source, Stream
from connectors.sources.common import expand_paths, fetch, input_problems, split_inputs, with_query

OBSERVATION_TYPE = "org.urbanflow.stats.observation.v1"
#: The observation contract's dataflow pattern, AGENCY:ID(VERSION): config fields use it so a bad
#: setting fails at load instead of dead-lettering every record, and parsers so every parsed
#: observation can become a valid event.
DATAFLOW_PATTERN = r"^[A-Za-z0-9_@.\-]+:[A-Za-z0-9_@\-]+\([0-9A-Za-z.+\-]+\)$"
DATAFLOW_RE = re.compile(DATAFLOW_PATTERN)
Dataflow = Annotated[str, msgspec.Meta(pattern=DATAFLOW_PATTERN)]
JSON = "application/json"

AttributeValue = str | float | None

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Observation:
    """One observation with every index and code resolved, ready to become an event."""

    dataflow: str
    series_key: str
    dimensions: dict[str, str]
    attributes: dict[str, AttributeValue]
    labels: dict[str, str]
    time_period: str
    value: float | None
    line: int | None
    #: SDMX only (contract v2): annotations as sent, every measure by id when there are several,
    #: and "delete" for an observation a data set with action Delete removes.
    annotations: tuple[dict[str, str], ...] = ()
    measures: dict[str, AttributeValue] = field(default_factory=dict)
    action: str = "upsert"

    def to_event_data(self) -> dict[str, Any]:
        """The `org.urbanflow.stats.observation.v1` payload; `labels` only when names were sent.

        `annotations`, `measures` and `action` (v2 contract) appear only when they say something,
        so an observation without them is a valid v1 payload, byte for byte as before."""
        data: dict[str, Any] = {
            "dataflow": self.dataflow,
            "series_key": self.series_key,
            "dimensions": dict(self.dimensions),
            "attributes": dict(self.attributes),
        }
        if self.labels:
            data["labels"] = dict(self.labels)
        data["time_period"] = self.time_period
        data["value"] = self.value
        if self.annotations:
            data["annotations"] = [dict(a) for a in self.annotations]
        if self.measures:
            data["measures"] = dict(self.measures)
        if self.action != "upsert":
            data["action"] = self.action
        return data


def observation_stream(topic: str, key: str, event_type: str = OBSERVATION_TYPE) -> Stream:
    """The one stream of an observation source (contract stats.observation.v1 unless told)."""
    return Stream(
        name="observations",
        topic=topic,
        event_type=event_type,
        key=key,
        cursor="content hash per dataflow|series key|period (revisions are re-sent)",
    )


def observation_key(observation: Observation) -> str:
    """What identifies an observation across releases: a revision keeps it, a new value doesn't."""
    return f"{observation.dataflow}|{observation.series_key}|{observation.time_period}"


def observation_records(
    stream: Stream,
    observations: Iterable[Observation],
    sent_ids: dict[str, str],
    source_urn: Callable[[Observation], str],
    published: dict[str, int],
) -> Iterator[Record]:
    """Records for observations that are new or revised since `sent_ids` (updated in place, as is
    `published`); the caller checkpoints both after.

    The content hash says whether an observation changed: an unchanged one is skipped, a revised
    one is re-sent. Staging keeps the first copy of each event id, so an observation published
    again with content it had before (a value revised and revised back; upsert, Delete, the same
    upsert again) would be dropped as a copy by a full refresh: each event after an observation's
    first therefore hashes its publication number too, making a re-publication a new event while
    a re-run from the same state (a crash before the checkpoint) sends the same ids, which stay
    duplicates. `published` counts only observations sent more than once (once is `sent_ids`).
    """
    for observation in observations:
        data = observation.to_event_data()
        source = source_urn(observation)
        content_id = stable_event_id(source, data)
        key = observation_key(observation)
        if sent_ids.get(key) == content_id:
            continue
        times = published.get(key, 1 if key in sent_ids else 0)
        sent_ids[key] = content_id
        if times:
            published[key] = times + 1
        yield Record(
            stream=stream,
            key=observation.series_key,
            source=source,
            event_id=stable_event_id(content_id, times) if times else content_id,
            data=data,
            subject=observation.dimensions.get("CITY") or observation.dimensions.get("REF_AREA"),
        )


def sent_checkpoint(sent_ids: dict[str, str], published: dict[str, int]) -> Checkpoint:
    """What `observation_records` sent, as the source's state."""
    return Checkpoint({"sent": sent_ids, **({"published": published} if published else {})})


def incremental_observations(
    stream: Stream,
    observations: Iterable[Observation],
    state: dict[str, Any],
    source_urn: Callable[[Observation], str],
    refused: Iterable[Refused] = (),
) -> Iterator[Record | Refused | Checkpoint]:
    """A whole observation source's `read` after parsing: refusals to the dead-letter topic, new
    or revised observations as records, then the checkpoint of what was sent."""
    for item in refused:
        yield item.replace(stream=stream)
    sent_ids: dict[str, str] = dict(state.get("sent", {}))
    published: dict[str, int] = dict(state.get("published", {}))
    yield from observation_records(stream, observations, sent_ids, source_urn, published)
    yield sent_checkpoint(sent_ids, published)


# ------------------------------------------------------------------------------ paged APIs


@dataclass(frozen=True)
class ObservationPage:
    """One parsed API response: which page it is (1-based) of how many, and what it held."""

    number: int
    count: int
    observations: list[Observation] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    skipped: int = 0  # items left out by design (e.g. regional aggregates), not errors


PageParser = Callable[[bytes, str], ObservationPage]


def fetch_pages(
    url: str,
    parse: PageParser,
    *,
    accept: str,
    timeout_s: float = 60.0,
) -> list[ObservationPage]:
    """Every page of a paged API, from the page `url` asks for through the last one, parsed.

    The page count comes from the first response; a server that answers a different page than
    asked for would silently duplicate data, so that is refused.
    """
    body, _ = fetch(url, accept, timeout_s)
    pages = [parse(body, url)]
    for number in range(pages[0].number + 1, pages[0].count + 1):
        page_url = with_query(url, page=number)
        page = parse(fetch(page_url, accept, timeout_s)[0], page_url)
        if page.number != number:
            raise SourceFormatError(page_url, f"asked for page {number}, got page {page.number}")
        pages.append(page)
    return pages


def read_pages(
    inputs: list[str], parse: PageParser, *, accept: str, timeout_s: float
) -> list[ObservationPage]:
    """Saved pages (.json files, folders of them) as single pages; URLs followed to the end.
    Everything is parsed before anything is sent, so a malformed page refuses the run."""
    paths, urls = split_inputs(inputs)
    pages = [parse(p.read_bytes(), str(p)) for p in expand_paths(paths, (".json",))]
    for url in urls:
        pages += fetch_pages(url, parse, accept=accept, timeout_s=timeout_s)
    return pages


class ApiConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Saved API responses (.json files or folders of them) and API URLs to follow."""

    inputs: list[str]
    timeout_s: float = 60.0
    dataflow: Dataflow  # subclasses default it to their API's dataflow


class PagedObservationSource(Source):
    """A statistics API answering pages of observations (World Bank, UN SDG ...).

    Subclasses say how to parse one page; files are single pages, URLs are followed to the
    last page, and what is sent is incremental per observation key.
    """

    source_urn: ClassVar[str]
    skipped_means: ClassVar[str] = "items the source leaves out by design"

    @abstractmethod
    def parse_page(self, payload: bytes, origin: str, dataflow: str) -> ObservationPage:
        """One response to observations; raises SourceFormatError when it is malformed."""

    def api_inputs(self, inputs: list[str]) -> list[str]:
        """Inputs as the API wants them asked (e.g. with a format parameter added)."""
        return inputs

    def check(self, config: ApiConfig) -> list[str]:
        return input_problems(self.api_inputs(config.inputs), JSON, config.timeout_s)

    def read(self, config: ApiConfig, state: dict) -> Iterator[Record | Refused | Checkpoint]:
        """Every page first (a malformed one refuses the run), then new or revised ones."""
        parse = partial(self.parse_page, dataflow=config.dataflow)
        inputs = self.api_inputs(config.inputs)
        pages = read_pages(inputs, parse, accept=JSON, timeout_s=config.timeout_s)
        if skipped := sum(page.skipped for page in pages):
            log.info("%s: %d %s skipped", self.name, skipped, self.skipped_means)
        yield from incremental_observations(
            self.streams[0],
            [o for page in pages for o in page.observations],
            state,
            lambda _: self.source_urn,
            refused=[r for page in pages for r in page.refused],
        )
