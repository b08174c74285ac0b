"""Statistics offices' and agencies' SDMX data: files, folders, REST URLs or an agency by name.

Formats: SDMX-ML 2.1 and 3.0 (generic and structure-specific) through sdmx1 (`ml.py`); SDMX-JSON
1.0/2.x and SDMX-CSV 1.0/2.0 through our readers (`helpers.py`, kept where sdmx1 has gaps, see
its docstring). `agency=UNICEF flow=...` builds the REST query from sdmx1's list of agencies and
asks only for what changed since the last pull (`updatedAfter`). Structure-specific data from a
REST service without its DSD among the inputs gets it from the same service (`StructureCache`).

`SOURCE` parses every input first (a malformed one refuses the whole run, with one line naming the
input and the problem, before anything is sent), then yields one event per new, revised or deleted
observation; the SDK saves what was sent only after Kafka confirmed it, so a re-run sends nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import msgspec

from connectors.errors import ConfigError, SourceFormatError
from connectors.sdk import Checkpoint, Record, Refused, Source
from connectors.settings import Settings
from connectors.sources.common import expand_paths, input_problems, split_inputs
from connectors.sources.observations import (
    Observation,
    observation_records,
    observation_stream,
    sent_checkpoint,
)
from connectors.sources.sdmx.helpers import parse_sdmx_csv, parse_sdmx_json
from connectors.sources.sdmx.ml import (
    Resolver,
    Structures,
    Wanted,
    parse_sdmx_ml,
    read_structures,
)
from connectors.sources.sdmx.settings import (
    ACCEPT_HEADERS,
    REST_ACCEPT,
    STRUCTURE_ACCEPT,
    agency_data_url,
    detect_format,
    known_agencies,
    service_root,
    structure_url,
)

SOURCE_NAME = "sdmx"
TOPIC = "stats.sdmx.observation.v1"
OBSERVATION_V2 = "org.urbanflow.stats.observation.v2"
FEED_SUFFIXES = (".json", ".csv", ".xml")
ACCEPT = f"{ACCEPT_HEADERS['json']}, {ACCEPT_HEADERS['csv']};q=0.8, {ACCEPT_HEADERS['xml']};q=0.7"
#: Plain observations go out as v1, which every consumer reads; those carrying what only v2 can
#: say (annotations, several measures, a deletion) as v2, on the same topic.
OBSERVATIONS = observation_stream(TOPIC, key="series key")
OBSERVATIONS_V2 = dataclasses.replace(
    observation_stream(TOPIC, key="series key", event_type=OBSERVATION_V2), name="observations_v2"
)
_V2_ONLY = frozenset({"annotations", "measures", "action"})

log = logging.getLogger(__name__)


def _now() -> datetime:
    """The pull's clock (a seam for tests): `updatedAfter` of the next pull is this pull's start."""
    return datetime.now(UTC)


class SdmxConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Files, folders (their .json/.csv/.xml messages) and SDMX REST data URLs to read, and/or an
    agency from sdmx1's list (e.g. UNICEF, ECB, ESTAT) with a dataflow and an optional key."""

    inputs: list[str] = []
    agency: str | None = None
    flow: str | None = None
    key: str = ""
    #: ask the agency only for observations changed since the last pull (SDMX REST updatedAfter)
    incremental: bool = True
    timeout_s: float = 60.0
    #: where DSDs fetched for structure-specific data are kept ($UF_STATE_DIR/sdmx/structures)
    structures_dir: str | None = None


def _config_problems(config: SdmxConfig) -> list[str]:
    problems = []
    if config.agency is None and config.flow is not None:
        problems.append("flow is set without agency: add --set agency=<ID>")
    if config.agency is not None:
        agencies = known_agencies()
        if config.agency not in agencies:
            problems.append(
                f"agency {config.agency!r} is not in sdmx1's list; known: {', '.join(agencies)}"
            )
        if not config.flow:
            problems.append(f"agency {config.agency} needs a dataflow: --set flow=<ID>")
    if not config.inputs and config.agency is None:
        problems.append("no inputs: give files, folders or URLs, or --set agency=... flow=...")
    return problems


def _fetch(
    url: str, accept: str, timeout_s: float, *, none_is_empty: bool
) -> tuple[bytes, str] | None:
    """(body, Content-Type) of a GET; None for SDMX's "no results" (HTTP 404) when asking for
    changes only."""
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        if exc.code == 404 and none_is_empty:
            return None
        raise SourceFormatError(url, f"could not fetch: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise SourceFormatError(url, f"could not fetch: {exc}") from None


@dataclasses.dataclass(frozen=True)
class StructureCache:
    """Dataflows and DSDs fetched for structure-specific data, from the REST service the data came
    from (queries built by sdmx1), kept as the service answered under `directory`: later runs, and
    changes-only pulls, read them without asking again. An answer that is no structure message is
    refused, naming its URL, and not kept."""

    directory: Path
    timeout_s: float = 60.0

    def resolver(self, data_url: str) -> Resolver | None:
        """What fetches the structures a message from `data_url` names; None for a file."""
        service = service_root(data_url)
        return None if service is None else partial(self.structures, service)

    def structures(self, service: str, wanted: Wanted) -> Structures:
        kind, reference = wanted
        path = self.directory / (re.sub(r"[^A-Za-z0-9_.@-]+", "_", f"{kind}-{reference}") + ".xml")
        if path.is_file():
            return read_structures(path.read_bytes(), str(path))
        url = structure_url(service, kind, reference)
        log.info("%s: fetching %s %s from %s", SOURCE_NAME, kind, reference, url)
        body, _ = _fetch(url, STRUCTURE_ACCEPT, self.timeout_s, none_is_empty=False) or (b"", "")
        found = read_structures(body, url)
        self.directory.mkdir(parents=True, exist_ok=True)
        partial_path = path.with_suffix(".part")
        partial_path.write_bytes(body)
        partial_path.replace(path)  # whole or absent, should the run stop here
        return found


def read_payload(
    payload: bytes,
    origin: str,
    hint: str,
    structures: Structures,
    resolve: Resolver | None = None,
) -> list[Observation]:
    """One message to observations, whatever its format; anything unreadable becomes one
    SourceFormatError naming `origin`, never another exception (tests/unit/test_fuzz_sdmx.py)."""
    try:
        kind = detect_format(hint, payload[:256])
        if kind == "xml":
            return parse_sdmx_ml(payload, origin, structures, resolve)
        if kind == "json":
            return parse_sdmx_json(payload, origin)
        try:
            text = payload.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SourceFormatError(origin, f"not UTF-8 text (byte {exc.start})") from None
        return parse_sdmx_csv(text, origin)
    except SourceFormatError:
        raise
    except RecursionError:
        raise SourceFormatError(origin, "nested too deeply to read") from None
    except Exception as exc:  # a reader bug must still name the input, not print a traceback
        raise SourceFormatError(origin, f"unreadable: {type(exc).__name__}: {exc}") from None


_STRUCTURE_ROOT = re.compile(
    rb"^\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*<(?:[\w.-]+:)?Structure[\s>]", re.DOTALL
)


def _is_structure(payload: bytes) -> bool:
    """An SDMX-ML structure message (DSDs, dataflows), told apart by its root element."""
    return _STRUCTURE_ROOT.match(payload.removeprefix(b"\xef\xbb\xbf")[:4096]) is not None


def read_feeds(
    paths: Iterable[Path] = (),
    urls: Iterable[str] = (),
    timeout_s: float = 60.0,
    cache: StructureCache | None = None,
) -> list[Observation]:
    """Parse every input completely; raises on the first malformed one, before anything is sent.
    Structure messages among the inputs give the DSDs structure-specific data needs; data from a
    URL without them gets them through `cache`."""
    messages: list[tuple[bytes, str, str]] = []
    for path in expand_paths(paths, FEED_SUFFIXES):
        try:
            messages.append((path.read_bytes(), str(path), path.name))
        except OSError as exc:
            raise SourceFormatError(str(path), f"cannot read: {exc.strerror}") from None
    for url in urls:
        body, content_type = _fetch(url, ACCEPT, timeout_s, none_is_empty=False) or (b"", "")
        messages.append((body, url, content_type or url))
    return _parse_all(messages, cache)


def _parse_all(
    messages: list[tuple[bytes, str, str]], cache: StructureCache | None = None
) -> list[Observation]:
    structures: Structures = {}
    data = []
    for payload, origin, hint in messages:
        if _is_structure(payload):
            structures.update(read_structures(payload, origin))
        else:
            data.append((payload, origin, hint))
    observations: list[Observation] = []
    for payload, origin, hint in data:
        resolve = cache.resolver(origin) if cache is not None else None
        observations.extend(read_payload(payload, origin, hint, structures, resolve))
    return observations


def source_urn(observation: Observation) -> str:
    """`urn:nso:<agency>` from the dataflow reference AGENCY:ID(VERSION)."""
    return "urn:nso:" + observation.dataflow.split(":", 1)[0].lower()


def published_records(
    observations: Iterable[Observation], state: dict
) -> Iterator[Record | Checkpoint]:
    """New, revised and deleted observations as records (v2 where they need it), then the
    checkpoint of what was sent (`observation_records` says how ids stay unique)."""
    sent: dict[str, str] = dict(state.get("sent", {}))
    published: dict[str, int] = dict(state.get("published", {}))
    for record in observation_records(OBSERVATIONS, observations, sent, source_urn, published):
        if _V2_ONLY & record.data.keys():
            record = dataclasses.replace(record, stream=OBSERVATIONS_V2)
        yield record
    yield sent_checkpoint(sent, published)


class SdmxSource(Source):
    name = SOURCE_NAME
    description = (
        "National statistics offices and agencies: SDMX-ML, SDMX-JSON and SDMX-CSV data "
        "(files, folders, REST URLs, or an agency by name with updatedAfter)"
    )
    config = SdmxConfig
    streams = (OBSERVATIONS, OBSERVATIONS_V2)
    clock: Callable[[], datetime] = staticmethod(_now)

    def check(self, config: SdmxConfig) -> list[str]:
        problems = _config_problems(config)
        if problems or not config.inputs:
            return problems
        return input_problems(config.inputs, ACCEPT, config.timeout_s)

    def read(self, config: SdmxConfig, state: dict) -> Iterator[Record | Refused | Checkpoint]:
        if problems := _config_problems(config):
            raise ConfigError(f"source {SOURCE_NAME!r}: " + "; ".join(problems))
        paths, urls = split_inputs(config.inputs)
        cache = StructureCache(
            Path(config.structures_dir)
            if config.structures_dir
            else Settings.from_env().state_dir / SOURCE_NAME / "structures",
            config.timeout_s,
        )
        observations = read_feeds(paths, urls, config.timeout_s, cache)
        pulled: dict[str, str] = dict(state.get("pulled", {}))
        if config.agency is not None and config.flow is not None:
            started = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
            pull = f"{config.agency}/{config.flow}/{config.key}"
            since = pulled.get(pull) if config.incremental else None
            url = agency_data_url(config.agency, config.flow, config.key, updated_after=since)
            log.info("%s: %s%s", SOURCE_NAME, url, " (changes only)" if since else "")
            answer = _fetch(url, REST_ACCEPT, config.timeout_s, none_is_empty=since is not None)
            if answer is not None:  # whatever format the agency chose, by its media type
                observations += _parse_all([(answer[0], url, answer[1] or "download")], cache)
            pulled[pull] = started
        for item in published_records(observations, state):
            if isinstance(item, Checkpoint):
                item = Checkpoint({**item.state, **({"pulled": pulled} if pulled else {})})
            yield item


SOURCE = SdmxSource()
