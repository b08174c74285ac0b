"""The partner push API: CloudEvents and CSV/XLSX files in, contract-checked events onto Kafka.

One request, kept lean because partners push in bulk (bench/api_throughput.py measures it):
cached key check -> per-partner token bucket -> body read under a size cap -> msgspec splits the
batch into raw events -> per event: source check, the contract's msgspec decoder (fastjsonschema
has the last word and the message) -> the publisher thread claims (source, id) in SQLite, sends,
confirms once for every request waiting, commits the claims -> 202. Kafka gets each event byte
for byte as the partner sent it.
"""

# No `from __future__ import annotations` here: FastAPI evaluates the endpoints' annotations,
# and they name `current_partner`, a local of create_app().
import asyncio
import csv
import hashlib
import io
import logging
import math
import queue
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec
import openpyxl
import orjson
from fastapi import Depends, FastAPI, HTTPException, Request, Response, Security
from fastapi.exception_handlers import http_exception_handler
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from connectors.api.auth import KeyCache, RateLimiter
from connectors.api.partners import Partner, PartnerStore, SeenEvents
from connectors.contracts import ENVELOPE_SCHEMA, Contract, get_contract, registry
from connectors.contracts.fast import compile_event_decoder
from connectors.errors import ConfigError, ContractError, DeliveryError, SourceFormatError
from connectors.events import encode, make_event, stable_event_id, utc_now_iso
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import load_topics
from connectors.settings import ApiSettings

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


# --- events: routing and checks (pure) ----------------------------------------------------------


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


class Rejected(Exception):
    """One record the API refuses, with the reason the partner needs to fix it."""

    def __init__(self, reason: str, event_id: str | None = None, *, forbidden: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
        self.forbidden = forbidden

    def record(self, index: int, row: int | None) -> dict[str, Any]:
        found: dict[str, Any] = {"index": index, "id": self.event_id, "reason": self.reason}
        if row is not None:
            found["row"] = row
        return found


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
    """Authorise and validate one raw event; raise Rejected naming the field or the rule.

    The common case (a valid partner result) is decoded and validated in one msgspec pass;
    anything else is read in two steps, envelope head first, so the reason can be specific.
    """
    if len(raw) > max_event_bytes:
        raise Rejected(
            f"event is {len(raw):,} bytes; the limit is {max_event_bytes:,} (UF_MAX_EVENT_BYTES)"
        )
    route = routes.get(RESULT_TYPE)
    head = _fast_decode(route, raw)
    valid = head is not None
    if not valid:
        try:
            head = _HEAD.decode(raw)
        except msgspec.ValidationError as exc:
            raise Rejected(f"not a CloudEvent: {exc}") from None
        route = routes.get(head.type)
    event_id = head.id or None
    if head.source and not partner.allows(head.source):
        raise Rejected(
            f"{SOURCE_NOT_ALLOWED}: {head.source!r} is not a source of partner {partner.slug!r}",
            event_id,
            forbidden=True,
        )
    if route is None and not head.type:
        missing = [name for name in ENVELOPE_SCHEMA["required"] if name not in orjson.loads(raw)]
        raise Rejected(f"not a CloudEvent: $ lacks the attributes {missing}", event_id)
    if route is None:
        accepted = ", ".join(sorted(routes))
        raise Rejected(f"$.type {head.type!r} is not accepted; send one of: {accepted}", event_id)
    if not valid and _fast_decode(route, raw) is None:
        try:
            route.contract.validate_event(orjson.loads(raw))
        except ContractError as exc:
            raise Rejected(str(exc), event_id) from None
    key = head.subject if isinstance(head.subject, str) and head.subject else head.source
    return Accepted(head.source, head.id, key, route.topic, raw)


# --- files: CSV and XLSX rows as partner results (pure) -----------------------------------------

_RESULT_SCHEMA = get_contract(RESULT_TYPE).schema
RESULT_COLUMNS: tuple[str, ...] = tuple(_RESULT_SCHEMA["properties"])
_REQUIRED_COLUMNS: tuple[str, ...] = tuple(_RESULT_SCHEMA["required"])
_XLSX_MAGIC = b"PK\x03\x04"

Row = tuple[int, dict[str, Any] | Rejected]


def _csv_cells(name: str, content: bytes) -> Iterator[tuple[int, list[Any]]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceFormatError(name, f"not UTF-8 text (bad byte at offset {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for cells in reader:
            yield reader.line_num, cells
    except csv.Error as exc:
        raise SourceFormatError(name, f"not valid CSV: {exc}", line=reader.line_num) from None


def _xlsx_cells(name: str, content: bytes) -> Iterator[tuple[int, list[Any]]]:
    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zip, XML, key and value errors for broken files
        raise SourceFormatError(name, f"not a readable XLSX workbook: {exc}") from None
    try:
        sheet = book.worksheets[0]
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=sheet.min_row):
            yield number, list(cells)
    finally:
        book.close()


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _cell(column: str, cell: Any) -> Any:
    """A cell as its contract type: numbers for `value`, text for the rest (2024.0 -> "2024")."""
    if column == "value":
        if isinstance(cell, str):
            text = cell.strip()
            try:
                return int(text)
            except ValueError:
                try:
                    return float(text)
                except ValueError:
                    return text  # the contract check names the field
        return cell
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def read_table(name: str, content: bytes) -> list[Row]:
    """Data rows of a CSV or XLSX file whose header names org.urbanflow.partner.result.v1 fields.

    A bad header fails the file (SourceFormatError); a bad row becomes a Rejected for that row.
    """
    is_xlsx = name.lower().endswith(".xlsx") or content.startswith(_XLSX_MAGIC)
    cells = _xlsx_cells(name, content) if is_xlsx else _csv_cells(name, content)
    header = next(((n, c) for n, c in cells if not all(map(_blank, c))), None)
    if header is None:
        raise SourceFormatError(name, f"no header row; expected columns {list(RESULT_COLUMNS)}")
    line, raw_columns = header
    columns = [str(c).strip() if c is not None else "" for c in raw_columns]
    while columns and not columns[-1]:
        columns.pop()
    problems = {
        "unknown": [c for c in columns if c not in RESULT_COLUMNS][:5],
        "missing": [c for c in _REQUIRED_COLUMNS if c not in columns],
        "repeated": sorted({c for c in columns if columns.count(c) > 1}),
    }
    if any(problems.values()):
        found = "; ".join(f"{kind} columns {cols}" for kind, cols in problems.items() if cols)
        raise SourceFormatError(
            name, f"header: {found}; expected {list(RESULT_COLUMNS)}", line=line
        )
    rows: list[Row] = []
    for number, values in cells:
        if all(map(_blank, values)):
            continue
        if any(not _blank(extra) for extra in values[len(columns) :]):
            reason = f"row {number} has cells beyond the {len(columns)} header columns"
            rows.append((number, Rejected(reason)))
            continue
        rows.append(
            (
                number,
                {c: _cell(c, v) for c, v in zip(columns, values, strict=False) if not _blank(v)},
            )
        )
    return rows


def row_event(
    partner: Partner, source: str, file_sha256: str, row: int, data: dict[str, Any], time: str
) -> bytes:
    """A file row as a CloudEvent whose id is stable, so uploading a file again duplicates none."""
    activity = data.get("activity_id")
    event = make_event(
        RESULT_TYPE,
        source,
        data,
        event_id=stable_event_id(partner.slug, file_sha256, row),
        subject=activity if isinstance(activity, str) else None,
        time=time,
        validate=False,
    )
    return encode(event)


# --- publishing: one thread, group commit --------------------------------------------------------

_MAX_GROUP_EVENTS = 20_000


@dataclass(slots=True)
class _Job:
    items: list[Accepted]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[bool]]


def _settle(job: _Job, outcome: list[bool] | BaseException) -> None:
    def resolve() -> None:
        if job.future.done():  # the client went away; its events were still handled
            return
        if isinstance(outcome, BaseException):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)

    job.loop.call_soon_threadsafe(resolve)


class Publisher:
    """The one thread that owns the producer and the dedup store: group commit.

    It takes every request waiting in its queue, claims their (source, id) pairs in SQLite,
    sends the new events, confirms them with ONE Kafka flush and commits the claims once, so
    concurrent requests share the round trip. kafka-python can block (metadata, a full buffer):
    here that never stalls the event loop, which keeps answering 401/429/400 meanwhile.
    A failed confirm rolls the claims back and fails every request in the group (503), so a
    retry publishes again; a retry can then duplicate what did land, which dbt removes on
    (source, id). A crash between confirm and commit has the same effect.
    """

    def __init__(self, producer: EventProducer, seen: SeenEvents):
        self._producer = producer
        self._seen = seen
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="uf-api-publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    async def publish(self, items: list[Accepted]) -> list[bool]:
        """Per item: True if published now, False if that (source, id) was published before."""
        loop = asyncio.get_running_loop()
        job = _Job(items, loop, loop.create_future())
        self._queue.put(job)
        return await job.future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            jobs, size = [first], len(first.items)
            while size < _MAX_GROUP_EVENTS:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
                size += len(job.items)
            self._publish(jobs)

    def _publish(self, jobs: list[_Job]) -> None:
        outcomes: list[list[bool]] = []
        try:
            new = self._seen.claim([(a.source, a.id) for job in jobs for a in job.items])
            for job in jobs:
                flags = []
                for item in job.items:
                    fresh = (item.source, item.id) in new
                    if fresh:
                        new.discard((item.source, item.id))  # a repeat in the group is a duplicate
                        self._producer.send_raw(item.topic, item.value, key=item.key)
                    flags.append(fresh)
                outcomes.append(flags)
            self._producer.confirm()
            self._seen.commit()
        except Exception as exc:  # every waiting request must get an answer, whatever failed
            log.error("publishing %d requests failed: %s", len(jobs), exc)
            self._seen.rollback()
            failure = DeliveryError(f"Kafka did not confirm delivery: {exc}")
            for job in jobs:
                _settle(job, failure)
            return
        for job, flags in zip(jobs, outcomes, strict=True):
            _settle(job, flags)


# --- HTTP -----------------------------------------------------------------------------------------


class RecordError(BaseModel):
    index: int
    id: str | None
    reason: str
    row: int | None = None


class IngestResult(BaseModel):
    accepted: int
    rejected: int
    duplicates: int
    errors: list[RecordError]


class Problem(BaseModel):
    detail: str


_BEARER = HTTPBearer(auto_error=False, description="`Authorization: Bearer <partner key>`")
_API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="The partner key")

_COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": IngestResult, "description": "At least one record accepted or a duplicate"},
    400: {"model": Problem, "description": "The body is not what the endpoint reads"},
    401: {"model": Problem, "description": "No key, or an unknown or revoked key"},
    403: {"model": IngestResult, "description": "Every record names another partner's source"},
    413: {"model": Problem, "description": "Body or batch over the limit"},
    422: {"model": IngestResult, "description": "No record accepted; reasons per record"},
    429: {"model": Problem, "description": "Over the partner's rate limit; see Retry-After"},
    503: {"model": Problem, "description": "Kafka did not confirm; retry the same request"},
}


def _events_body(routes: Mapping[str, Route], max_batch: int) -> dict[str, Any]:
    schemas = [route.contract.event_schema for route in routes.values()]
    event = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    batch = {
        "type": "object",
        "required": ["events"],
        "additionalProperties": False,
        "properties": {
            "events": {"type": "array", "items": event, "minItems": 1, "maxItems": max_batch}
        },
    }
    examples = {
        "one": {"summary": "One event", "value": RESULT_EXAMPLE},
        "batch": {"summary": "A batch", "value": {"events": [RESULT_EXAMPLE]}},
    }
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"anyOf": [event, batch]}, "examples": examples}
        },
    }


_FILE_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": f"CSV or XLSX; header row with {', '.join(RESULT_COLUMNS)}",
                    },
                    "source": {
                        "type": "string",
                        "description": "One of your sources (default urn:partner:<slug>)",
                    },
                },
            }
        }
    },
}


async def _capped(request: Request, limit: int, setting: str) -> AsyncIterator[bytes]:
    """The body, refused with 413 as soon as it passes `limit` bytes (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes; the limit is {limit:,} ({setting})")
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body over the limit of {limit:,} bytes ({setting})")
        yield chunk


class IngestService:
    """What the endpoints share: settings, routes, key cache, rate limiter and the publisher."""

    def __init__(self, settings: ApiSettings):
        self.settings = settings
        self.routes = partner_routes(settings.base.topics_file)
        self.keys = KeyCache(PartnerStore(settings.partners_db), settings.key_cache_s)
        self.limiter = RateLimiter(settings.rate_per_s, settings.rate_burst)
        self.publisher: Publisher | None = None

    async def partner(
        self,
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
        x_api_key: Annotated[str | None, Security(_API_KEY)],
    ) -> Partner:
        """The calling partner (401 without a valid key), within its rate limit (else 429)."""
        key = bearer.credentials if bearer else x_api_key
        if not key:
            raise HTTPException(
                401,
                "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        partner = self.keys.cached(key) or await run_in_threadpool(self.keys.verify, key)
        if partner is None:
            raise HTTPException(
                401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
            )
        request.state.partner = partner.slug
        wait = self.limiter.acquire(partner.slug)
        if wait:
            raise HTTPException(
                429,
                f"partner {partner.slug!r} is over its rate limit of {self.settings.rate_per_s} "
                f"requests/s (burst {self.settings.rate_burst}); retry after the Retry-After delay",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        return partner

    async def ingest(
        self,
        request: Request,
        partner: Partner,
        items: Sequence[bytes | Rejected],
        rows: Sequence[int] | None = None,
    ) -> Response:
        """Check every record, publish the good ones, answer with counts and per-record errors.

        202 if anything was accepted (or was a duplicate); else 403 when every record names a
        source the partner does not own, 422 otherwise.
        """
        accepted: list[Accepted] = []
        errors: list[dict[str, Any]] = []
        forbidden = 0
        max_event_bytes = self.settings.base.max_event_bytes
        for index, item in enumerate(items):
            rejection = item if isinstance(item, Rejected) else None
            if rejection is None:
                try:
                    accepted.append(check_event(item, partner, self.routes, max_event_bytes))
                    continue
                except Rejected as exc:
                    rejection = exc
            forbidden += rejection.forbidden
            errors.append(rejection.record(index, rows[index] if rows else None))
        duplicates = 0
        if accepted:
            assert self.publisher is not None, "the lifespan starts the publisher"
            try:
                fresh = await self.publisher.publish(accepted)
            except DeliveryError as exc:
                detail = f"{exc}; nothing was recorded, retry the same request"
                raise HTTPException(503, detail, {"Retry-After": "5"}) from None
            duplicates = fresh.count(False)
        status = 202 if accepted else 403 if forbidden == len(errors) else 422
        body = {
            "accepted": len(accepted) - duplicates,
            "rejected": len(errors),
            "duplicates": duplicates,
            "errors": errors,
        }
        reasons = sorted({e["reason"] for e in errors})[:3]
        log.log(
            logging.WARNING if errors else logging.INFO,
            "%s %s partner=%s status=%d accepted=%d rejected=%d duplicates=%d%s",
            request.method,
            request.url.path,
            partner.slug,
            status,
            body["accepted"],
            body["rejected"],
            duplicates,
            f" reasons={reasons}" if reasons else "",
        )
        return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The FastAPI app; the producer and publisher thread start with it (lifespan)."""
    settings = settings or ApiSettings.from_env()
    service = IngestService(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        producer = EventProducer(
            settings.base.kafka_bootstrap, client_id="urbanflow-api", linger_ms=settings.linger_ms
        )
        seen = SeenEvents(settings.partners_db)
        service.publisher = Publisher(producer, seen)
        service.publisher.start()
        topics = sorted({route.topic for route in service.routes.values()})
        log.info("partner API ready: publishing to %s", ", ".join(topics))
        try:
            yield
        finally:
            await service.publisher.stop()
            producer.close()
            seen.close()

    app = FastAPI(
        title="UrbanFlow partner push API",
        version="1",
        description=(
            'Partners push results as CloudEvents 1.0 (one event, or `{"events": [...]}`) or '
            "as CSV/XLSX files. Each partner writes only to its own sources; a retry with the "
            "same `(source, id)` is answered as a duplicate and never published twice. "
            "`202` means Kafka has confirmed every accepted event."
        ),
        lifespan=lifespan,
    )
    current_partner = Annotated[Partner, Depends(service.partner)]

    @app.exception_handler(StarletteHTTPException)
    async def logged_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Every refusal is logged with the partner (when known) and the reason, never the key."""
        partner = getattr(request.state, "partner", "-")
        log.warning(
            "%s %s partner=%s status=%d reason=%s",
            request.method,
            request.url.path,
            partner,
            exc.status_code,
            exc.detail,
        )
        return await http_exception_handler(request, exc)

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=None,
        responses=_COMMON_RESPONSES,
        openapi_extra={"requestBody": _events_body(service.routes, settings.max_batch)},
        summary="Push one CloudEvent or a batch",
    )
    async def post_events(request: Request, partner: current_partner) -> Response:
        """Validate each event against its contract and publish the valid ones to Kafka."""
        capped = _capped(request, settings.max_body_bytes, "UF_API_MAX_BODY_BYTES")
        body = b"".join([chunk async for chunk in capped])
        return await service.ingest(request, partner, split_body(body, settings.max_batch))

    @app.post(
        "/v1/files",
        status_code=202,
        response_model=None,
        responses={
            **_COMMON_RESPONSES,
            403: {"model": Problem, "description": "The `source` field is not one of yours"},
            415: {"model": Problem, "description": "Not multipart/form-data"},
        },
        openapi_extra={"requestBody": _FILE_BODY},
        summary="Upload partner results as a CSV or XLSX file",
    )
    async def post_file(request: Request, partner: current_partner) -> Response:
        """Each data row becomes an org.urbanflow.partner.result.v1 event; bad rows are reported
        with their row number, and uploading the same file again yields only duplicates."""
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise HTTPException(415, 'send multipart/form-data with the file in a "file" field')
        capped = _capped(request, settings.max_file_bytes, "UF_API_MAX_FILE_BYTES")
        try:
            form = await MultiPartParser(request.headers, capped, max_files=1, max_fields=4).parse()
        except MultiPartException as exc:
            raise HTTPException(400, f"multipart body: {exc.message}") from None
        try:
            upload, source = form.get("file"), form.get("source") or partner.default_source
            if not isinstance(upload, UploadFile):
                raise HTTPException(400, 'send the file in a multipart field named "file"')
            if not isinstance(source, str) or not partner.allows(source):
                raise HTTPException(403, f"{SOURCE_NOT_ALLOWED}: {source!r}")
            name, content = upload.filename or "upload", await upload.read()
        finally:
            await form.close()
        try:
            rows = read_table(name, content)
        except SourceFormatError as exc:
            raise HTTPException(400, str(exc)) from None
        if not rows:
            raise HTTPException(400, f"{name}: no data rows under the header")
        sha, now = hashlib.sha256(content).hexdigest(), utc_now_iso()
        items: list[bytes | Rejected] = [
            row if isinstance(row, Rejected) else row_event(partner, source, sha, n, row, now)
            for n, row in rows
        ]
        return await service.ingest(request, partner, items, rows=[n for n, _ in rows])

    return app
