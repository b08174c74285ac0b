"""IATI 2.03 activity files (programmes, investments): files, folders, URLs or the Datastore.

`SOURCE` parses every input first (a malformed or DOCTYPE-bearing file refuses the run before
anything is sent), then per file yields the activities, transactions and results of every activity
whose `last-updated-datetime` is newer than the one already sent, and a checkpoint. An activity
whose content is invalid goes, as its original XML with the reason, to
`partner.iati.activity.v1.dlq`; the rest of its file still loads.

The input `datastore:` (or `datastore:<reporting-org ref>`) reads the IATI Datastore's Solr API
instead (`datastore.py`): each activity it returns goes through the same parser, so it gives the
same events as its file. Its pages are sent and checkpointed one by one, after the files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any

import msgspec

from connectors.errors import ConfigError, SourceFormatError
from connectors.events import stable_event_id
from connectors.reference import slugify
from connectors.sdk import Checkpoint, Record, Refused, Secret, Source, Stream
from connectors.sources.common import expand_paths, fetch, input_problems, split_inputs
from connectors.sources.iati.datastore import (
    DatastoreClient,
    DatastoreQuery,
    is_datastore_input,
    read_pages,
)
from connectors.sources.iati.helpers import (
    IatiActivity,
    IatiFile,
    parse_iati_activities,
    xml_digest,
)
from connectors.sources.iati.settings import ACCEPT_HEADER, DATASTORE_URL, XML_SUFFIX

SOURCE_NAME = "iati"


def _stream(name: str, entity: str, cursor: str) -> Stream:
    """Every IATI stream is keyed by iati-identifier, so an activity's events stay in order."""
    return Stream(
        name=name,
        topic=f"partner.iati.{entity}.v1",
        event_type=f"org.urbanflow.iati.{entity}.v1",
        key="iati-identifier",
        cursor=cursor,
    )


ACTIVITIES = _stream("activities", "activity", "last-updated-datetime per iati-identifier")
TRANSACTIONS = _stream("transactions", "transaction", "sent with their activity")
RESULTS = _stream("results", "result", "sent with their activity")


class IatiConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """IATI activity files, folders (their .xml files), URLs and `datastore:` inputs to read."""

    inputs: list[str]
    timeout_s: float = 60.0
    #: The Datastore (`datastore:` inputs): its activity collection and API gateway key.
    datastore_url: Annotated[str, msgspec.Meta(pattern=r"^https?://")] = DATASTORE_URL
    api_key: Secret | None = None
    #: The Solr query, the publisher for a bare `datastore:` input, activities per page.
    q: str = "*:*"
    reporting_org_ref: str | None = None
    rows: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    #: Rate limits (429, 502-504): retries, the first backoff (doubling) and the longest wait.
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=20)] = 5
    backoff_s: Annotated[float, msgspec.Meta(ge=0)] = 2.0
    max_wait_s: Annotated[float, msgspec.Meta(ge=0)] = 300.0


def read_inputs(inputs: Iterable[str], timeout_s: float = 60.0) -> list[IatiFile]:
    """Parse every input completely (files, folders' .xml files, then URLs); raises on the first
    unusable one, before anything is sent."""
    paths, urls = split_inputs(inputs)
    files = [
        parse_iati_activities(path.read_bytes(), str(path))
        for path in expand_paths(paths, (XML_SUFFIX,))
    ]
    files += [parse_iati_activities(fetch(url, ACCEPT_HEADER, timeout_s)[0], url) for url in urls]
    return files


def source_urn(reporting_org_ref: str) -> str:
    """`urn:partner:<reporting-org ref as a slug>` (lowercased, other characters as '-')."""
    return "urn:partner:" + slugify(reporting_org_ref)


def activity_version(activity: IatiActivity) -> str:
    """What the incremental cursor stores: the last-updated-datetime, or a content digest for
    the (rare) activity published without one."""
    return activity.last_updated or f"sha256:{activity.digest}"


def is_newer(version: str, stored: str | None) -> bool:
    """True when an activity at `version` must be sent, given what was sent before."""
    if stored is None:
        return True
    if version.startswith("sha256:") or stored.startswith("sha256:"):
        return version != stored
    return datetime.fromisoformat(version) > datetime.fromisoformat(stored)


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def activity_records(activity: IatiActivity) -> Iterator[Record]:
    """The activity, its transactions and its results as records, keyed by iati-identifier.

    Ids hash what identifies each fact (and, for transactions and results, its values, so a
    revision is a new fact while an unchanged one keeps its id when its activity is re-sent).
    """
    source = source_urn(activity.reporting_org_ref)
    subject = activity.city_code or activity.identifier

    def record(stream: Stream, event_id: str, data: dict[str, Any]) -> Record:
        return Record(
            stream=stream,
            key=activity.identifier,
            source=source,
            event_id=event_id,
            data=data,
            subject=data.get("city_code") or subject,
            time=activity.last_updated,
        )

    yield record(
        ACTIVITIES,
        stable_event_id(source, "activity", activity.identifier, activity_version(activity)),
        activity.data,
    )
    for transaction in activity.transactions:
        identity = _without(transaction, "last_updated")
        yield record(TRANSACTIONS, stable_event_id(source, "transaction", identity), transaction)
    for result in activity.results:
        identity = _without(result, "last_updated")
        yield record(RESULTS, stable_event_id(source, "result", identity), result)


def datastore_client(config: IatiConfig) -> DatastoreClient:
    return DatastoreClient(
        api_key=config.api_key.reveal() if config.api_key else None,
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        backoff_s=config.backoff_s,
        max_wait_s=config.max_wait_s,
    )


def _new_items(
    parsed: IatiFile, sent: dict[str, str], dead: set[str]
) -> Iterator[Record | Refused]:
    """What one parsed file adds: refusals not sent before, activities newer than sent."""
    for refused in parsed.rejected:
        if (digest := xml_digest(refused.payload or b"")) not in dead:
            dead.add(digest)
            yield refused.replace(stream=ACTIVITIES)
    for activity in parsed.activities:
        version = activity_version(activity)
        if not is_newer(version, sent.get(activity.identifier)):
            continue
        sent[activity.identifier] = version
        yield from activity_records(activity)


class IatiSource(Source):
    name = SOURCE_NAME
    description = (
        "IATI 2.03 activity XML (programmes, transactions, results): files, URLs, Datastore"
    )
    config = IatiConfig
    streams = (ACTIVITIES, TRANSACTIONS, RESULTS)

    def check(self, config: IatiConfig) -> list[str]:
        files = [i for i in config.inputs if not is_datastore_input(i)]
        stores = [i for i in config.inputs if is_datastore_input(i)]
        problems = (
            input_problems(files, ACCEPT_HEADER, config.timeout_s) if files or not stores else []
        )
        if stores and config.api_key is None:
            problems.append("datastore: no api_key (set UF_SOURCE_IATI_API_KEY or --set api_key=)")
        client = datastore_client(config)
        for text in stores:
            try:
                query = DatastoreQuery.from_input(text, config.q, config.reporting_org_ref)
                next(read_pages(client, config.datastore_url, query, None, 1))
            except (ConfigError, SourceFormatError) as exc:
                problems.append(str(exc))
        return problems

    def read(self, config: IatiConfig, state: dict) -> Iterator[Record | Refused | Checkpoint]:
        """Parse every file first (an unusable one refuses the run), send what is new, then page
        through each Datastore query, checkpointing after every page."""
        queries = [
            DatastoreQuery.from_input(text, config.q, config.reporting_org_ref)
            for text in config.inputs
            if is_datastore_input(text)
        ]
        files = read_inputs(
            [i for i in config.inputs if not is_datastore_input(i)], config.timeout_s
        )
        sent: dict[str, str] = dict(state.get("last_updated", {}))
        dead: set[str] = set(state.get("rejected", []))
        marks: dict[str, str] = dict(state.get("datastore", {}))

        def checkpoint() -> Checkpoint:
            saved: dict[str, Any] = {"last_updated": dict(sent), "rejected": sorted(dead)}
            if marks:
                saved["datastore"] = dict(marks)
            return Checkpoint(saved)

        for parsed in files:
            yield from _new_items(parsed, sent, dead)
            yield checkpoint()
        client = datastore_client(config)
        for query in queries:
            since = marks.get(query.key)
            for page in read_pages(client, config.datastore_url, query, since, config.rows):
                for refused in page.refused:
                    if (digest := xml_digest(refused.payload or b"")) not in dead:
                        dead.add(digest)
                        yield refused.replace(stream=ACTIVITIES)
                for parsed in page.files:
                    yield from _new_items(parsed, sent, dead)
                if page.high_water:
                    marks[query.key] = page.high_water
                yield checkpoint()


SOURCE = IatiSource()
