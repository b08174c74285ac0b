"""What the API refused, kept so a partner sees it in My feeds and `GET /v1/feeds` (DESIGN.md §9).

A refused record never reaches Kafka, so neither the sink's dead letters nor the warehouse know of
it; the server log does (DESIGN.md §7), but as text. The rejection log is that record in a form
dbt reads back: one JSON line per refused record, or per refused request once its partner is
known (a 413 or 429 refuses a whole request), under `<UF_VAR_DIR>/api/rejections/`, one file per
UTC day and API process (`<date>.<host>-<pid>.jsonl`) so replicas never interleave a line.
`stg_ops__api_rejections` reads every file; fct_dead_letters and fct_partner_feeds count them
beside the sink's dead letters.

Attribution is by the calling partner, never by what a record claims: a record naming another
partner's source is logged under the caller's own default source, so it can never show in the
other partner's feed. Lines carry no key and no payload (a refused record may hold anything).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from connectors.api.partners import Partner

#: Cut like a dead-letter header: a reason is a message, not a payload.
MAX_REASON_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused record (event_id when it had one) or a whole refused request."""

    source_urn: str
    kafka_topic: str
    error_class: str
    reason: str
    http_status: int
    endpoint: str
    event_id: str | None = None
    contract: str = ""
    row: int | None = None


class RejectionLog:
    """Appends rejections as JSON lines; each call flushes, so a reader sees whole lines."""

    def __init__(self, folder: Path, now: Any = None):
        self.folder = folder
        self._now = now or (lambda: datetime.now(UTC))
        self._suffix = f"{socket.gethostname()}-{os.getpid()}"
        self._file: IO[bytes] | None = None
        self._day = ""

    def _open(self, day: str) -> IO[bytes]:
        if self._file is None or day != self._day:
            self.close()
            self.folder.mkdir(parents=True, exist_ok=True)
            self._file = (self.folder / f"{day}.{self._suffix}.jsonl").open("ab")
            self._day = day
        return self._file

    def record(self, partner: Partner, rejections: list[Rejection]) -> None:
        if not rejections:
            return
        now = self._now()
        stamp = now.isoformat(timespec="microseconds").replace("+00:00", "Z")
        lines = b"".join(
            orjson.dumps(
                {
                    "rejected_at": stamp,
                    "partner_slug": partner.slug,
                    "source_urn": r.source_urn,
                    "kafka_topic": r.kafka_topic,
                    "event_id": r.event_id,
                    "error_class": r.error_class,
                    "reason": r.reason[:MAX_REASON_CHARS],
                    "contract": r.contract,
                    "http_status": r.http_status,
                    "endpoint": r.endpoint,
                    "file_row": r.row,
                }
            )
            + b"\n"
            for r in rejections
        )
        handle = self._open(now.strftime("%Y-%m-%d"))
        handle.write(lines)
        handle.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
