"""HDX (the Humanitarian Data Exchange): the HXL-tagged resources of named datasets.

Inputs name HDX datasets (`somalia-idp-sites`, a dataset id, or its page URL). For each, HDX's
CKAN API (`package_show`) lists the resources; those HDX marks `is_hxl` are downloaded and read
exactly as the `hxl` source reads a partner's file (libhxl, same records, same contract, same
topic: `partner.hxl.record.v1`), sent as `urn:hdx:<organisation>`.

Incremental on the resource's modification time (`last_modified`, else `metadata_modified`): a
resource not modified since the last confirmed run is not downloaded again, and one modified but
with the same content (SHA-256) sends nothing. State (resource id -> time and hash) is saved only
after Kafka confirmed the records (`run_source`).

What can go wrong, and what happens: a dataset HDX does not know, an API that fails or answers
something else than CKAN JSON, a network failure, refuse the run in one line naming the URL (a
re-run retries; nothing was sent). A resource HDX marks HXL that is gone (HTTP 403/404/410) or
cannot be read as HXL goes to `partner.hxl.record.v1.dlq` with the reason, and the rest loads;
it is read again once HDX says it changed. Bad rows inside a resource are dead-lettered as `hxl`
does.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from connectors.errors import SourceFormatError
from connectors.reference import city_countries
from connectors.sdk import Checkpoint, Record, Refused, Secret, Source, Stream
from connectors.sources import hxl
from connectors.sources.hdx.helpers import (
    HdxResource,
    HttpStatusError,
    dataset_id,
    get,
    hxl_resources,
    is_newer,
)
from connectors.sources.hdx.settings import API_ACCEPT, DEFAULT_API_URL

SOURCE_NAME = "hdx"
#: HDX resources are HXL records like a partner's: one contract, one topic, one staging model
#: (stg_hxl__records); the CloudEvents source (`urn:hdx:<organisation>`) tells them apart.
TOPIC = hxl.TOPIC
EVENT_TYPE = hxl.EVENT_TYPE
#: A resource gone from its server: dead-lettered, not retried until HDX says it changed.
GONE = frozenset({403, 404, 410})

log = logging.getLogger(__name__)


class HdxConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """HDX datasets to read (names, ids or dataset page URLs) and the CKAN API to ask."""

    inputs: list[str]
    api_url: Annotated[str, msgspec.Meta(pattern=r"^https?://")] = DEFAULT_API_URL
    #: An HDX API token, for private datasets only (public ones need none).
    api_token: Secret | None = None
    timeout_s: float = 60.0


RECORDS = Stream(
    name="records",
    topic=TOPIC,
    event_type=EVENT_TYPE,
    key="dataset (<HDX dataset>/<resource name>)",
    cursor="modification time and SHA-256 per HDX resource id",
)


@dataclass(frozen=True)
class ResourceRead:
    """One resource's outcome: parsed rows, or why it goes to the dead letters."""

    resource: HdxResource
    parsed: hxl.HxlInput | None = None
    refused: Refused | None = None


def source_urn(resource: HdxResource) -> str:
    return f"urn:hdx:{resource.organization}"


def package_show_url(config: HdxConfig, dataset: str) -> str:
    return f"{config.api_url.rstrip('/')}/package_show?id={urllib.parse.quote(dataset, safe='')}"


def _token(config: HdxConfig) -> str | None:
    return config.api_token.reveal() if config.api_token else None


def list_resources(config: HdxConfig) -> list[HdxResource]:
    """The HXL resources of every input dataset, in input order; raises on the first failure."""
    resources = []
    for text in config.inputs:
        url = package_show_url(config, dataset_id(text))
        found = hxl_resources(get(url, API_ACCEPT, config.timeout_s, _token(config)), url)
        if not found:
            log.info("hdx: %s has no resource marked is_hxl", url)
        resources.extend(found)
    return resources


def _dead(resource: HdxResource, problem: str) -> Refused:
    reason = f"HDX {resource.label} (resource {resource.id or '?'}): {problem}"
    return Refused(reason, key=resource.label, payload=resource.metadata(), stream=RECORDS)


def read_resource(
    config: HdxConfig, resource: HdxResource, sent: dict[str, Any], cities: dict[str, str]
) -> ResourceRead:
    """Download and parse one resource; a resource that is gone or not HXL becomes a refusal,
    a network or server failure raises (the run is retried, nothing was sent)."""
    if not resource.id:
        return ResourceRead(resource, refused=_dead(resource, "package_show gave it no id"))
    if not resource.url.startswith(("http://", "https://")):
        problem = f"no http(s) download URL ({resource.url!r})"
        return ResourceRead(resource, refused=_dead(resource, problem))
    try:
        payload = get(resource.url, hxl.ACCEPT, config.timeout_s, _token(config))
    except HttpStatusError as exc:
        if exc.status not in GONE:
            raise
        return ResourceRead(resource, refused=_dead(resource, str(exc)))
    if hashlib.sha256(payload).hexdigest() == sent.get("sha256"):
        return ResourceRead(
            resource, parsed=hxl.HxlInput(resource.url, resource.label, sent["sha256"], [])
        )
    try:
        parsed = hxl.parse_input(resource.url, payload, resource.label, cities)
    except SourceFormatError as exc:
        return ResourceRead(resource, refused=_dead(resource, str(exc)))
    return ResourceRead(resource, parsed=parsed)


class HdxSource(Source):
    name = SOURCE_NAME
    description = "HDX datasets' HXL resources (CKAN package_show, is_hxl), read as hxl does"
    config = HdxConfig
    streams = (RECORDS,)

    def check(self, config: HdxConfig) -> list[str]:
        if not config.inputs:
            return ["no inputs: name HDX datasets (name, id or dataset page URL)"]
        problems = []
        for text in config.inputs:
            try:
                url = package_show_url(config, dataset_id(text))
                hxl_resources(get(url, API_ACCEPT, config.timeout_s, _token(config)), url)
            except SourceFormatError as exc:
                problems.append(str(exc))
        return problems

    def read(self, config: HdxConfig, state: dict) -> Iterator[Record | Refused | Checkpoint]:
        """List and read every changed resource first (a failure refuses the run before anything
        is sent), then send each resource's records and checkpoint it."""
        sent: dict[str, dict[str, str]] = {
            k: dict(v) for k, v in state.get("resources", {}).items() if isinstance(v, dict)
        }
        cities = city_countries()
        reads = [
            read_resource(config, resource, sent.get(resource.id, {}), cities)
            for resource in list_resources(config)
            if not resource.id or is_newer(resource, sent.get(resource.id, {}).get("modified"))
        ]
        for outcome in reads:
            resource = outcome.resource
            if outcome.refused is not None:
                yield outcome.refused
                digest = sent.get(resource.id, {}).get("sha256", "")
            else:
                assert outcome.parsed is not None
                yield from hxl.to_records(outcome.parsed, source_urn(resource), RECORDS)
                digest = outcome.parsed.sha256
            if resource.id:
                sent[resource.id] = {"modified": resource.modified, "sha256": digest}
                yield Checkpoint({"resources": {k: dict(v) for k, v in sent.items()}})


SOURCE = HdxSource()
