"""`GET /v1/feeds`: the calling partner's feed status, as My feeds shows it (DESIGN.md §9).

Read from the published `serving.duckdb` (what passed the quality gate), read-only, like Superset:
`marts.fct_partner_feeds` (sent, accepted, refused, freshness, figures toward the plan's targets)
and `marts.fct_dead_letters` (why: the sink's dead letters and the API's own refusals). The
partner is the key's, never a parameter, so no request can name another partner's rows.

DuckDB caches one database instance per path in a process, and a connection left open would keep
the *old* file's instance after a publish (`os.replace`). So each request opens its own read-only
connection and closes it, one at a time (a lock): between two requests no connection is open, and
the next one sees the newly published file.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel, Field

from connectors.errors import UrbanFlowError


class FeedsUnavailable(UrbanFlowError):
    """Nothing published yet, or a serving database without the feed marts."""


class Refusal(BaseModel):
    """Records refused for one reason (per refusing side, error class, contract and day)."""

    refused_by: str = Field(
        description="`sink` (on Kafka, by its contract) or `api` (before Kafka)"
    )
    error_class: str = Field(description="`contract`, `forbidden`, `envelope`, `request` ...")
    reason: str = Field(description="Why, naming the field or the limit at fault")
    contract: str | None = Field(description="Event type checked against, if any")
    day: str = Field(description="UTC day (YYYY-MM-DD)")
    count: int
    first_at: datetime
    last_at: datetime


class Feed(BaseModel):
    """One source of the partner on one topic (raw table)."""

    source_urn: str = Field(description="CloudEvents `source` the events came as")
    raw_table: str = Field(description="Where they land (one per Kafka topic)")
    events_sent: int = Field(description="Accepted + refused")
    events_accepted: int = Field(description="Distinct events accepted (a retry counts once)")
    events_refused: int = Field(description="Refused by the sink or by the API")
    events_refused_by_api: int = Field(description="Of those, refused by the API before Kafka")
    accepted_percent: float | None = Field(description="Completeness: accepted / sent, in %")
    first_event_time: datetime | None
    last_event_time: datetime | None = Field(description="Latest CloudEvents `time` accepted")
    last_ingested_at: datetime | None = Field(description="Last load into the warehouse")
    freshness_hours: float | None = Field(description="Hours from the last load to `measured_at`")
    figures_reported: int = Field(description="Result figures the feed contributes")
    figures_toward_targets: int = Field(
        description="Of those, figures counting toward the plan's targets"
    )
    refusals: list[Refusal] = Field(description="Why events of this feed were refused")


class FeedStatus(BaseModel):
    """What the partner sent and what became of it, as of the last publish."""

    partner: str = Field(description="The calling partner (its key's slug)")
    published_at: datetime = Field(description="When the serving database was published")
    measured_at: datetime | None = Field(description="When dbt computed these figures")
    events_sent: int
    events_accepted: int
    events_refused: int
    figures_toward_targets: int
    feeds: list[Feed]


_FEEDS_SQL = """
select source_urn, raw_table, events_sent, events_accepted, events_refused,
       events_refused_by_api, accepted_percent, first_event_time, last_event_time,
       last_ingested_at, freshness_hours, figures_reported, figures_toward_targets, measured_at
from marts.fct_partner_feeds
where partner_slug = ?
order by source_urn, raw_table
"""
_REFUSALS_SQL = """
select source_urn, raw_table, refused_by, error_class, reason, contract,
       strftime(dead_letter_date, '%Y-%m-%d') as day, dead_letter_count as count,
       first_dead_lettered_at as first_at, last_dead_lettered_at as last_at
from marts.fct_dead_letters
where partner_slug = ?
order by source_urn, raw_table, day desc, count desc, reason
"""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, slug: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql, [slug])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class FeedReader:
    """Reads one partner's feed status from the serving database (see the module docstring)."""

    def __init__(self, serving_path: Path):
        self.serving_path = serving_path
        self._lock = threading.Lock()

    def status(self, slug: str) -> FeedStatus:
        with self._lock:
            try:
                published = self.serving_path.stat().st_mtime
            except FileNotFoundError:
                raise FeedsUnavailable(
                    f"{self.serving_path} does not exist yet: nothing has been published "
                    "(`urbanflow publish`)"
                ) from None
            try:
                with duckdb.connect(str(self.serving_path), read_only=True) as con:
                    feeds = _rows(con, _FEEDS_SQL, slug)
                    refusals = _rows(con, _REFUSALS_SQL, slug)
            except duckdb.Error as exc:
                raise FeedsUnavailable(
                    f"{self.serving_path} cannot answer the feed status: {exc}"
                ) from None
        by_feed: dict[tuple[str, str], list[Refusal]] = {}
        for row in refusals:
            key = (row.pop("source_urn"), row.pop("raw_table"))
            by_feed.setdefault(key, []).append(Refusal(**row))
        measured = max((f.pop("measured_at") for f in feeds), default=None)
        items = [
            Feed(**f, refusals=by_feed.get((f["source_urn"], f["raw_table"]), [])) for f in feeds
        ]
        return FeedStatus(
            partner=slug,
            published_at=datetime.fromtimestamp(published, UTC),
            measured_at=measured,
            events_sent=sum(f.events_sent for f in items),
            events_accepted=sum(f.events_accepted for f in items),
            events_refused=sum(f.events_refused for f in items),
            figures_toward_targets=sum(f.figures_toward_targets for f in items),
            feeds=items,
        )
