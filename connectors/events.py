"""CloudEvents 1.0 envelopes (structured JSON mode), the only record format on our topics."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from connectors.contracts import get_contract

SPEC_VERSION = "1.0"


def stable_event_id(*parts: object) -> str:
    """A deterministic id from business content, so a re-send of the same fact reuses its id."""
    digest = hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return digest[:32]


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_event(
    event_type: str,
    source: str,
    data: dict[str, Any],
    *,
    event_id: str,
    subject: str | None = None,
    time: str | None = None,
    validate: bool = True,
) -> dict[str, Any]:
    """Build a CloudEvent for `data`, validated against its contract before it can be sent."""
    contract = get_contract(event_type)
    event: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": time or utc_now_iso(),
        "datacontenttype": "application/json",
        "dataschema": contract.dataschema,
        "data": data,
    }
    if subject is not None:
        event["subject"] = subject
    if validate:
        contract.validate_event(event)
    return event


def encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)
