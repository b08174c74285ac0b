"""IATI 2.03 activity files (programmes and investments), from files, folders or URLs.

`SOURCE` parses every input first (a malformed or DOCTYPE-bearing file refuses the run before
anything is sent), then per file yields the activities, transactions and results of every activity
whose `last-updated-datetime` is newer than the one already sent, and a checkpoint. An activity
whose content is invalid goes, as its original XML with the reason, to
`partner.iati.activity.v1.dlq`; the rest of its file still loads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import msgspec

from connectors.events import stable_event_id
from connectors.reference import slugify
from connectors.sdk import Checkpoint, Record, Refused, Source, Stream
from connectors.sources.common import expand_paths, fetch, input_problems, split_inputs
from connectors.sources.iati.helpers import (
    IatiActivity,
    IatiFile,
    parse_iati_activities,
    xml_digest,
)
from connectors.sources.iati.settings import ACCEPT_HEADER, XML_SUFFIX

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
    """IATI activity files, folders (their .xml files) and URLs to read."""

    inputs: list[str]
    timeout_s: float = 60.0


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


class IatiSource(Source):
    name = SOURCE_NAME
    description = "IATI 2.03 activity XML (programmes, transactions, results) from files or URLs"
    config = IatiConfig
    streams = (ACTIVITIES, TRANSACTIONS, RESULTS)

    def check(self, config: IatiConfig) -> list[str]:
        return input_problems(config.inputs, ACCEPT_HEADER, config.timeout_s)

    def read(self, config: IatiConfig, state: dict) -> Iterator[Record | Refused | Checkpoint]:
        """Parse everything first (an unusable file refuses the run), then send what is new."""
        files = read_inputs(config.inputs, config.timeout_s)
        sent: dict[str, str] = dict(state.get("last_updated", {}))
        dead: set[str] = set(state.get("rejected", []))
        for parsed in files:
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
            yield Checkpoint({"last_updated": dict(sent), "rejected": sorted(dead)})


SOURCE = IatiSource()
