"""Helpers every pull source shares: inputs, HTTP fetches, paged APIs, incremental observations.

Kept here once so the SDMX, World Bank and UN SDG sources cannot drift apart in how they fetch,
page, or decide what is new.
"""

from __future__ import annotations

import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec

from connectors.errors import SourceFormatError
from connectors.events import stable_event_id
from connectors.sdk import Checkpoint, Record, Rejected, Source, Stream

if TYPE_CHECKING:  # annotations only: SDMX's helpers may import from here without a cycle
    from connectors.sources.sdmx.helpers import SdmxObservation

#: The observation contract's dataflow pattern, for config fields: a bad setting fails at load
#: instead of dead-lettering every record.
DATAFLOW_PATTERN = r"^[A-Za-z0-9_@.\-]+:[A-Za-z0-9_@\-]+\([0-9A-Za-z.+\-]+\)$"
Dataflow = Annotated[str, msgspec.Meta(pattern=DATAFLOW_PATTERN)]
#: A decimal number as text (no thousands separators, no NaN/Infinity spellings).
NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
JSON = "application/json"

log = logging.getLogger(__name__)


def split_inputs(inputs: Iterable[str]) -> tuple[list[Path], list[str]]:
    """(local paths, http(s) URLs) from a source's `inputs`."""
    inputs = list(inputs)
    urls = [i for i in inputs if i.startswith(("http://", "https://"))]
    return [Path(i) for i in inputs if i not in urls], urls


def expand_paths(paths: Iterable[Path], suffixes: tuple[str, ...]) -> list[Path]:
    """Files as given; directories contribute their files with `suffixes`, in name order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes))
        elif path.is_file():
            files.append(path)
        else:
            raise SourceFormatError(str(path), "no such file or directory")
    return files


def fetch(url: str, accept: str, timeout_s: float = 60.0) -> tuple[bytes, str]:
    """(body, Content-Type) of a GET; any network or HTTP failure names the URL."""
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read(), response.headers.get("Content-Type", "")
    except (urllib.error.URLError, TimeoutError) as exc:
        raise SourceFormatError(url, f"could not fetch: {exc}") from None


def with_query(url: str, **params: object) -> str:
    """`url` with these query parameters set (added, or replacing the same names)."""
    parts = urllib.parse.urlsplit(url)
    query = [
        (k, v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if k not in params
    ]
    query += [(k, str(v)) for k, v in params.items()]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, safe=";:,")))


def input_problems(inputs: list[str], accept: str, timeout_s: float) -> list[str]:
    """A source's `check`: inputs given, local ones present, URLs answering."""
    if not inputs:
        return ["no inputs: give files, folders or URLs"]
    paths, urls = split_inputs(inputs)
    problems = [f"{p}: no such file or directory" for p in paths if not p.exists()]
    for url in urls:
        try:
            fetch(url, accept, timeout_s)
        except SourceFormatError as exc:
            problems.append(str(exc))
    return problems


@dataclass(frozen=True)
class BadItem:
    """One input item (an observation, a table row) that cannot become an event: its message key,
    its content for the dead-letter topic, and why, naming the file or URL and where in it."""

    key: str
    payload: bytes
    reason: str


@dataclass(frozen=True)
class ObservationPage:
    """One parsed API response: which page it is (1-based) of how many, and what it held."""

    number: int
    count: int
    observations: list[SdmxObservation] = field(default_factory=list)
    bad: list[BadItem] = field(default_factory=list)
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


def observation_key(observation: SdmxObservation) -> str:
    """What identifies an observation across releases: a revision keeps it, a new value doesn't."""
    return f"{observation.dataflow}|{observation.series_key}|{observation.time_period}"


def observation_records(
    stream: Stream,
    observations: Iterable[SdmxObservation],
    sent_ids: dict[str, str],
    source_urn: Callable[[SdmxObservation], str],
) -> Iterator[Record]:
    """Records for observations that are new or revised since `sent_ids` (updated in place).

    The event id hashes the content, so an unchanged observation keeps its id and is skipped,
    and a revised one gets a new id and is re-sent; the caller checkpoints `sent_ids` after.
    """
    for observation in observations:
        data = observation.to_event_data()
        source = source_urn(observation)
        event_id = stable_event_id(source, data)
        key = observation_key(observation)
        if sent_ids.get(key) == event_id:
            continue
        sent_ids[key] = event_id
        yield Record(
            stream=stream,
            key=observation.series_key,
            source=source,
            event_id=event_id,
            data=data,
            subject=observation.dimensions.get("CITY") or observation.dimensions.get("REF_AREA"),
        )


def incremental_observations(
    stream: Stream,
    observations: Iterable[SdmxObservation],
    state: dict[str, Any],
    source_urn: Callable[[SdmxObservation], str],
    bad: Iterable[BadItem] = (),
) -> Iterator[Record | Rejected | Checkpoint]:
    """A whole observation source's `read` after parsing: rejects to the dead-letter topic, new
    or revised observations as records, then the checkpoint of what was sent (`state["sent"]`)."""
    for item in bad:
        yield Rejected(stream, item.key, item.payload, item.reason)
    sent_ids: dict[str, str] = dict(state.get("sent", {}))
    yield from observation_records(stream, observations, sent_ids, source_urn)
    yield Checkpoint({"sent": sent_ids})


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


OBSERVATION_TYPE = "org.urbanflow.stats.observation.v1"


def observation_stream(topic: str, key: str) -> Stream:
    """The one stream of an observation source (contract stats.observation.v1)."""
    return Stream(
        name="observations",
        topic=topic,
        event_type=OBSERVATION_TYPE,
        key=key,
        cursor="content hash per dataflow|series key|period (revisions are re-sent)",
    )


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

    def read(self, config: ApiConfig, state: dict) -> Iterator[Record | Rejected | Checkpoint]:
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
            bad=[b for page in pages for b in page.bad],
        )
