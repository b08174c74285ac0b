"""The IATI Datastore (v3) as an input of the `iati` source: its Solr API, paged, rate-limited.

The Datastore answers `GET <datastore_url>?q=...&fq=...&fl=...&sort=...&start=N&rows=M&wt=json`
with Solr's `{"response": {"numFound": ..., "start": ..., "docs": [...]}}`; every request carries
the API gateway's subscription key in the `Ocp-Apim-Subscription-Key` header (never in the URL,
so no URL we log or put in an error holds it). Each activity document has `iati_identifier`,
`last_updated_datetime`, `dataset_version` (its file's `iati-activities/@version`) and `iati_xml`,
the publisher's `<iati-activity>` element as published. That XML goes, wrapped in an
`<iati-activities version=...>` root, through the same parser as a file, so an activity read here
gives the same events as the same activity read from its file.

Incremental: pages are asked in `last_updated_datetime` order, from the high-water mark of the
last confirmed run for the same query (inclusive, so activities sharing that instant are not lost;
the per-identifier cursor the source keeps then skips those already sent). Activities without a
`last_updated_datetime` are always asked for and compared by content digest. A page's records are
checkpointed with the mark they reach, so a run stopped by a rate limit resumes where Kafka last
confirmed. Known limit of offset paging: an activity re-indexed *during* a run moves to the end
and can shift a later one past a page boundary; delete the state file for a full re-read.

Rate limits: 429, 502, 503 and 504 are retried at most `max_retries` times, waiting what
`Retry-After` says, else `backoff_s * 2**attempt`; a wait longer than `max_wait_s` (a weekly
quota spent) or the last failed retry refuses the run in one line naming the URL, never the key.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPException
from typing import Any
from xml.sax.saxutils import quoteattr

import orjson

from connectors.errors import ConfigError, SourceFormatError
from connectors.refusals import Refused
from connectors.sources.iati.helpers import IatiFile, parse_iati_activities
from connectors.sources.iati.settings import (
    DATASTORE_INPUT,
    DATASTORE_KEY_HEADER,
    INVALID_ACTIVITY,
)

#: The fields we ask for: identity, cursor, the file's IATI version and the activity itself.
FIELDS = "iati_identifier,last_updated_datetime,dataset_version,iati_xml"
#: Oldest first, ties broken by Solr's unique key, so offsets page through a stable order.
SORT = "last_updated_datetime asc,id asc"
#: Statuses worth waiting for: the gateway's rate limit and a busy or restarting backend.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: A page of `rows` activities is a few MB; anything far larger is not a Datastore answer.
MAX_PAGE_BYTES = 200 * 1024 * 1024
#: What a high-water mark may look like before it goes back into a Solr query.
SOLR_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$")
_XML_DECLARATION_RE = re.compile(rb"^\s*<\?xml[^>]*\?>\s*")

log = logging.getLogger(__name__)


def is_datastore_input(text: str) -> bool:
    return text.startswith(DATASTORE_INPUT)


@dataclass(frozen=True)
class DatastoreQuery:
    """Which activities one `datastore:` input asks for: a Solr `q`, and a publisher if given."""

    q: str = "*:*"
    reporting_org_ref: str | None = None

    @classmethod
    def from_input(cls, text: str, q: str, reporting_org_ref: str | None) -> DatastoreQuery:
        """`datastore:` uses the `reporting_org_ref` setting; `datastore:<ref>` names the
        publisher itself, so one run can read several."""
        ref = (text[len(DATASTORE_INPUT) :].strip() or reporting_org_ref or "").strip() or None
        query = cls(q=q.strip() or "*:*", reporting_org_ref=ref)
        if query.reporting_org_ref is None and query.q == "*:*":
            raise ConfigError(
                f"input {text!r}: would read the whole IATI Datastore; name a publisher "
                "(datastore:<reporting-org ref> or --set reporting_org_ref=...) or a Solr query "
                "(--set q=...)"
            )
        return query

    @property
    def key(self) -> str:
        """What the state keys this query's high-water mark by."""
        return f"{self.reporting_org_ref or '*'}|{self.q}"

    def filters(self, since: str | None) -> list[str]:
        filters = []
        if self.reporting_org_ref:
            filters.append(f"reporting_org_ref:{solr_phrase(self.reporting_org_ref)}")
        if since:
            # activities without a last_updated_datetime cannot be ranged: always ask for them
            filters.append(
                f"last_updated_datetime:[{since} TO *] OR (*:* -last_updated_datetime:[* TO *])"
            )
        return filters


def solr_phrase(value: str) -> str:
    """`value` as a quoted Solr phrase (backslashes and quotes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def page_url(base: str, query: DatastoreQuery, since: str | None, start: int, rows: int) -> str:
    params: list[tuple[str, str]] = [("q", query.q)]
    params += [("fq", f) for f in query.filters(since)]
    params += [
        ("fl", FIELDS),
        ("sort", SORT),
        ("start", str(start)),
        ("rows", str(rows)),
        ("wt", "json"),
    ]
    return f"{base.split('?', 1)[0]}?{urllib.parse.urlencode(params, safe='*:,')}"


# ------------------------------------------------------------------------------ HTTP


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date); None if absent
    or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class DatastoreClient:
    """GETs against the Datastore with its key, retrying rate limits; `sleep` is injectable so
    tests never wait."""

    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 5
    backoff_s: float = 2.0
    max_wait_s: float = 300.0
    sleep: Callable[[float], None] = time.sleep
    requests: int = field(default=0, init=False)

    def _scrub(self, text: str) -> str:
        """`text` with the key blanked, whatever a server chose to echo back."""
        return text.replace(self.api_key, "***") if self.api_key else text

    def _fail(self, url: str, message: str) -> SourceFormatError:
        return SourceFormatError(url, self._scrub(" ".join(message.split())))

    def get(self, url: str) -> bytes:
        headers = {"Accept": "application/json", "User-Agent": "urbanflow-iati"}
        if self.api_key:
            headers[DATASTORE_KEY_HEADER] = self.api_key
        attempt = 0
        while True:
            self.requests += 1
            try:
                request = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    body = response.read(MAX_PAGE_BYTES + 1)
                break
            except urllib.error.HTTPError as exc:
                detail = _error_detail(exc)
                if exc.code in (401, 403):
                    hint = "check api_key" if self.api_key else "no api_key is set"
                    raise self._fail(url, f"HTTP {exc.code}{detail} ({hint})") from None
                if exc.code not in RETRY_STATUSES:
                    raise self._fail(url, f"HTTP {exc.code}{detail}") from None
                wait = retry_after_s(exc.headers.get("Retry-After"))
                if wait is None:
                    wait = self.backoff_s * 2**attempt
                if attempt >= self.max_retries:
                    raise self._fail(
                        url,
                        f"HTTP {exc.code}{detail}, still after {attempt + 1} attempts "
                        f"(max_retries={self.max_retries}); retry later",
                    ) from None
                if wait > self.max_wait_s:
                    raise self._fail(
                        url,
                        f"HTTP {exc.code}{detail}: asked to wait {wait:.0f} s, more than "
                        f"max_wait_s={self.max_wait_s:g}; retry later",
                    ) from None
                log.warning("iati: datastore HTTP %s, retrying in %.1f s", exc.code, wait)
                self.sleep(wait)
                attempt += 1
            except (OSError, HTTPException, ValueError) as exc:  # URLError, timeouts, resets
                reason = getattr(exc, "reason", None) or exc
                raise self._fail(url, f"could not fetch: {reason}") from None
        if len(body) > MAX_PAGE_BYTES:
            raise self._fail(url, f"answer larger than {MAX_PAGE_BYTES:,} bytes")
        return body


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """`: <message>` from a Solr (`error.msg`) or gateway (`message`) error body, else ''."""
    try:
        body = orjson.loads(exc.read(65536))
        error = body.get("error")
        text = error.get("msg", "") if isinstance(error, dict) else body.get("message", "")
    except Exception:  # any body at all may come with an error status
        text = ""
    text = " ".join(str(text or exc.reason or "").split())[:300]
    return f": {text}" if text else ""


# ------------------------------------------------------------------------------ pages


@dataclass(frozen=True)
class DatastorePage:
    """One answer: where it starts, how many match in all, the activities it held (each parsed
    as a one-activity file), documents refused whole, and the newest cursor value on it."""

    url: str
    start: int
    num_found: int
    size: int
    files: list[IatiFile]
    refused: list[Refused]
    high_water: str | None


def parse_page(payload: bytes, url: str, start: int = 0) -> DatastorePage:
    """A Solr JSON answer to activities; refuses (naming `url`) one that is not that shape."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise SourceFormatError(url, f"not JSON ({exc}); expected a Solr answer") from None
    response = body.get("response") if isinstance(body, dict) else None
    docs = response.get("docs") if isinstance(response, dict) else None
    found = response.get("numFound") if isinstance(response, dict) else None
    if not isinstance(docs, list) or not isinstance(found, int) or isinstance(found, bool):
        raise SourceFormatError(url, "not a Solr answer (no response.numFound and .docs)")
    files: list[IatiFile] = []
    refused: list[Refused] = []
    marks: list[str] = []
    for index, doc in enumerate(docs, start=start):
        where = f"{url.split('?', 1)[0]} docs[{index}]"
        outcome = activity_of(doc, where)
        if isinstance(outcome, Refused):
            refused.append(outcome)
        else:
            files.append(outcome)
        updated = doc.get("last_updated_datetime") if isinstance(doc, dict) else None
        if isinstance(updated, str) and SOLR_DATE_RE.match(updated):
            marks.append(updated)
    high_water = max(marks, key=datetime.fromisoformat, default=None)
    return DatastorePage(url, start, found, len(docs), files, refused, high_water)


def activity_of(doc: Any, where: str) -> IatiFile | Refused:
    """One Solr document through the file parser; a document without usable XML, or whose XML
    the parser refuses whole, becomes a dead letter naming it."""
    if not isinstance(doc, dict):
        payload = orjson.dumps(doc)
        return Refused(f"{where}: not a JSON object", key=where, payload=payload)
    identifier = doc.get("iati_identifier")
    name = identifier.strip() if isinstance(identifier, str) and identifier.strip() else None
    label = f"{where} ({name})" if name else where
    xml = doc.get("iati_xml")
    if isinstance(xml, list) and len(xml) == 1:  # a multi-valued field holding one value
        xml = xml[0]
    if not isinstance(xml, str) or not xml.strip():
        problem = "no iati_xml (ask for it in fl)"
        return Refused(f"{label}: {problem}", key=name or where, payload=orjson.dumps(doc))
    activity = _XML_DECLARATION_RE.sub(b"", xml.encode("utf-8"), count=1)
    version = doc.get("dataset_version")
    if isinstance(version, list) and len(version) == 1:
        version = version[0]
    root = b"<iati-activities"
    if isinstance(version, str) and version.strip():
        root += b" version=" + quoteattr(version.strip()).encode("utf-8")
    try:
        return parse_iati_activities(root + b">" + activity + b"</iati-activities>", label)
    except SourceFormatError as exc:
        return Refused(str(exc), key=name or where, payload=activity, error_class=INVALID_ACTIVITY)


def read_pages(
    client: DatastoreClient,
    base_url: str,
    query: DatastoreQuery,
    since: str | None,
    rows: int,
) -> Iterator[DatastorePage]:
    """Every page of `query` from `since`, one request at a time; stops at `numFound` (as the
    first page counted it) or at the first empty page."""
    start, total = 0, None
    while total is None or start < total:
        url = page_url(base_url, query, since, start, rows)
        page = parse_page(client.get(url), url, start)
        total = page.num_found if total is None else total
        log.info(
            "iati: datastore %s, %d-%d of %d",
            query.reporting_org_ref or query.q,
            start + 1,
            start + page.size,
            total,
        )
        yield page
        if not page.size:
            break
        start += page.size
