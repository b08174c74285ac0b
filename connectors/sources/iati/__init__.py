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
from connectors.sdk import Checkpoint, Record, Rejected, Source, Stream
from connectors.sources.common import expand_paths, fetch, input_problems, split_inputs
from connectors.sources.iati.helpers import (
    IatiActivity,
    IatiFile,
    RejectedActivity,
    parse_iati_activities,
)
from connectors.sources.iati.settings import ACCEPT_HEADER, XML_SUFFIX

SOURCE_NAME = "iati"
INVALID_ACTIVITY = "invalid_activity"


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
    """`urn:partner:<reporting-org ref>`, lowercased, every run of other characters as '-'."""
    slug = "".join(c if c.isascii() and c.isalnum() else "-" for c in reporting_org_ref.lower())
    return "urn:partner:" + "-".join(part for part in slug.split("-") if part)


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


def dead_letter(rejected: RejectedActivity, origin: str) -> Rejected:
    """The activity's original XML for `partner.iati.activity.v1.dlq`, with the reason."""
    return Rejected(
        stream=ACTIVITIES,
        key=rejected.identifier or f"{origin}:{rejected.line}",
        payload=rejected.xml,
        reason=rejected.reason,
        error_class=INVALID_ACTIVITY,
    )


class IatiSource(Source):
    name = SOURCE_NAME
    description = "IATI 2.03 activity XML (programmes, transactions, results) from files or URLs"
    config = IatiConfig
    streams = (ACTIVITIES, TRANSACTIONS, RESULTS)

    def check(self, config: IatiConfig) -> list[str]:
        return input_problems(config.inputs, ACCEPT_HEADER, config.timeout_s)

    def read(self, config: IatiConfig, state: dict) -> Iterator[Record | Rejected | Checkpoint]:
        """Parse everything first (an unusable file refuses the run), then send what is new."""
        files = read_inputs(config.inputs, config.timeout_s)
        sent: dict[str, str] = dict(state.get("last_updated", {}))
        dead: set[str] = set(state.get("rejected", []))
        for parsed in files:
            for rejected in parsed.rejected:
                if rejected.digest not in dead:
                    dead.add(rejected.digest)
                    yield dead_letter(rejected, parsed.origin)
            for activity in parsed.activities:
                version = activity_version(activity)
                if not is_newer(version, sent.get(activity.identifier)):
                    continue
                sent[activity.identifier] = version
                yield from activity_records(activity)
            yield Checkpoint({"last_updated": dict(sent), "rejected": sorted(dead)})


SOURCE = IatiSource()
