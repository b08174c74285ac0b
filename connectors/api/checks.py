"""Pushed events, before Kafka: a body split into raw events, each routed and checked.

Pure: no I/O once the routes are built. The common case (a valid partner result) is decoded and
validated in one msgspec pass; fastjsonschema has the last word and the message.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson
from fastapi import HTTPException

from connectors.api.partners import Partner
from connectors.contracts import ENVELOPE_SCHEMA, Contract, registry
from connectors.contracts.fast import compile_event_decoder
from connectors.errors import ConfigError, ContractError
from connectors.kafka.topics import load_topics
from connectors.refusals import Refused

log = logging.getLogger(__name__)

RESULT_TYPE = "org.urbanflow.partner.result.v1"
#: Event types partners may push, when a contract exists and exactly one topic declares it.
PARTNER_TYPE_PREFIXES = ("org.urbanflow.partner.", "org.urbanflow.iati.")
SOURCE_NOT_ALLOWED = "source not allowed"
#: A valid partner result: the example in /docs (and so one schemathesis sends), and the
#: template of the tests and the benchmark.
RESULT_EXAMPLE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "acme-GB-GOV-1-300123-KENBO-2025-Q3-women",
    "source": "urn:partner:acme",
    "type": RESULT_TYPE,
    "time": "2025-10-01T00:00:00Z",
    "subject": "GB-GOV-1-300123",
    "data": {
        "activity_id": "GB-GOV-1-300123",
        "city_code": "KENBO",
        "theme": "women_gender_equality",
        "indicator": "women_reached",
        "period": "2025-Q3",
        "value": 1200,
        "unit": "people",
        "sex": "female",
    },
}


@dataclass(frozen=True)
class Route:
    contract: Contract
    topic: str
    decoder: msgspec.json.Decoder | None


def partner_routes(topics_file: Path) -> dict[str, Route]:
    """Each event type partners may push, with the one topic infra/kafka/topics.yml declares."""
    topics: dict[str, list[str]] = defaultdict(list)
    for spec in load_topics(topics_file):
        for event_type in spec.event_types:
            topics[event_type].append(spec.name)
    routes = {}
    for event_type, contract in registry().items():
        if not event_type.startswith(PARTNER_TYPE_PREFIXES):
            continue
        if len(topics[event_type]) > 1:
            log.warning("%s: several topics declare %s; not accepted", topics_file, event_type)
        if len(topics[event_type]) != 1:
            continue
        name = "".join(part.capitalize() for part in event_type.split(".")[2:])
        decoder = compile_event_decoder(contract.event_schema, name)
        routes[event_type] = Route(contract, topics[event_type][0], decoder)
    if RESULT_TYPE not in routes:
        raise ConfigError(f"{topics_file} must declare exactly one topic for {RESULT_TYPE}")
    return routes


@dataclass(slots=True)
class Accepted:
    """A checked event ready for Kafka; `key` is the message key (subject, else source)."""

    source: str
    id: str
    key: str
    topic: str
    value: bytes


class _Head(msgspec.Struct):
    """The envelope attributes routing and authorisation need, read before the full check."""

    type: str = ""
    source: str = ""
    id: str = ""
    subject: str | None = None


_HEAD = msgspec.json.Decoder(_Head)
_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_LIST = msgspec.json.Decoder(list[msgspec.Raw])


def split_body(body: bytes, max_batch: int) -> list[bytes]:
    """The raw events of a body holding one CloudEvent or {"events": [...]}."""
    try:
        # JSON is UTF-8 throughout; msgspec checks only what it decodes, not the raw events
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"body is not UTF-8 JSON: {exc.reason} at byte {exc.start}"
        raise HTTPException(400, reason) from None
    try:
        top = _TOP.decode(body)
    except msgspec.ValidationError:
        raise HTTPException(400, 'body must be a CloudEvent or {"events": [...]}') from None
    except msgspec.DecodeError as exc:
        raise HTTPException(400, f"body is not JSON: {exc}") from None
    if set(top) != {"events"}:
        return [body]
    try:
        events = _LIST.decode(top["events"])
    except msgspec.ValidationError:
        raise HTTPException(400, '"events" must be an array of CloudEvents') from None
    if not events:
        raise HTTPException(400, '"events" is empty')
    if len(events) > max_batch:
        raise HTTPException(
            413, f"batch of {len(events)} events; the limit is {max_batch} (UF_API_MAX_BATCH)"
        )
    return [bytes(event) for event in events]


def refused_origin(
    raw: bytes | None, partner: Partner, routes: Mapping[str, Route], fallback_source: str
) -> tuple[str, str]:
    """(source, topic) a refused record is counted under: its own source only if the partner owns
    it (else `fallback_source`, one of the partner's), the topic of its type if we route it (else
    the partner results topic). Never raises: the record may be anything."""
    head = _Head()
    if raw is not None:
        with contextlib.suppress(msgspec.MsgspecError):
            head = _HEAD.decode(raw)
    source = head.source if head.source and partner.allows(head.source) else fallback_source
    route = routes.get(head.type) or routes[RESULT_TYPE]
    return source, route.topic


def _fast_decode(route: Route | None, raw: bytes) -> Any:
    """The event decoded and validated by the route's msgspec decoder, or None if it refuses."""
    if route is None or route.decoder is None:
        return None
    try:
        return route.decoder.decode(raw)
    except msgspec.MsgspecError:
        return None


def check_event(
    raw: bytes, partner: Partner, routes: Mapping[str, Route], max_event_bytes: int
) -> Accepted:
    """Authorise and validate one raw event; raise Refused naming the field or the rule.

    The common case (a valid partner result) is decoded and validated in one msgspec pass;
    anything else is read in two steps, envelope head first, so the reason can be specific.
    """
    if len(raw) > max_event_bytes:
        raise Refused(
            f"event is {len(raw):,} bytes; the limit is {max_event_bytes:,} (UF_MAX_EVENT_BYTES)",
            error_class="oversize",
        )
    route = routes.get(RESULT_TYPE)
    head = _fast_decode(route, raw)
    valid = head is not None
    if not valid:
        try:
            head = _HEAD.decode(raw)
        except msgspec.ValidationError as exc:
            raise Refused(f"not a CloudEvent: {exc}", error_class="envelope") from None
        route = routes.get(head.type)
    event_id = head.id or None
    if head.source and not partner.allows(head.source):
        raise Refused(
            f"{SOURCE_NOT_ALLOWED}: {head.source!r} is not a source of partner {partner.slug!r}",
            event_id=event_id,
            error_class="forbidden",
            forbidden=True,
        )
    if route is None and not head.type:
        missing = [name for name in ENVELOPE_SCHEMA["required"] if name not in orjson.loads(raw)]
        raise Refused(
            f"not a CloudEvent: $ lacks the attributes {missing}",
            event_id=event_id,
            error_class="envelope",
        )
    if route is None:
        accepted = ", ".join(sorted(routes))
        raise Refused(
            f"$.type {head.type!r} is not accepted; send one of: {accepted}",
            event_id=event_id,
            error_class="unknown_type",
        )
    if not valid and _fast_decode(route, raw) is None:
        try:
            route.contract.validate_event(orjson.loads(raw))
        except ContractError as exc:
            raise Refused(
                str(exc), event_id=event_id, error_class="contract", contract=head.type
            ) from None
    key = head.subject if isinstance(head.subject, str) and head.subject else head.source
    return Accepted(head.source, head.id, key, route.topic, raw)
