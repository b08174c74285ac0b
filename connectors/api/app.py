"""The partner push API: CloudEvents and CSV/XLSX files in, contract-checked events onto Kafka.

One request, kept lean because partners push in bulk (bench/api_throughput.py measures it):
cached key check -> per-partner token bucket -> body read under a size cap -> msgspec splits the
batch into raw events -> per event: source check, the contract's msgspec decoder (fastjsonschema
has the last word and the message) -> the publisher thread claims (source, id) in SQLite, sends,
confirms once for every request waiting, commits the claims -> 202. Kafka gets each event byte
for byte as the partner sent it.

The jobs live next door and this module only wires them: `checks` (split and check events),
`files` (CSV/XLSX rows as events), `publisher` (the Kafka thread), `service` (key, rate limit,
ingest and answer). Here: the OpenAPI description, the size caps and the endpoints.
"""

# No `from __future__ import annotations` here: FastAPI evaluates the endpoints' annotations,
# and they name `current_partner`, a local of create_app().
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.exception_handlers import http_exception_handler
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from connectors.api.checks import RESULT_EXAMPLE, SOURCE_NOT_ALLOWED, Route, split_body
from connectors.api.feeds import FeedReader, FeedStatus, FeedsUnavailable
from connectors.api.files import RESULT_COLUMNS, file_events
from connectors.api.partners import Partner
from connectors.api.service import IngestService
from connectors.errors import SourceFormatError
from connectors.settings import ApiSettings

log = logging.getLogger(__name__)


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


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The FastAPI app; the producer and publisher thread start with it (lifespan)."""
    settings = settings or ApiSettings.from_env()
    service = IngestService(settings)
    feeds = FeedReader(settings.serving_path)

    app = FastAPI(
        title="UrbanFlow partner push API",
        version="1",
        description=(
            'Partners push results as CloudEvents 1.0 (one event, or `{"events": [...]}`) or '
            "as CSV/XLSX files. Each partner writes only to its own sources; a retry with the "
            "same `(source, id)` is answered as a duplicate and never published twice. "
            "`202` means Kafka has confirmed every accepted event. `GET /v1/feeds` tells a "
            "partner what it sent and what became of it, as of the last publish."
        ),
        lifespan=lambda _: service.publishing(),
    )
    current_partner = Annotated[Partner, Depends(service.partner)]

    @app.exception_handler(StarletteHTTPException)
    async def logged_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Every refusal is logged with the partner (when known) and the reason, never the key;
        a known partner's refused request also goes to the rejection log (My feeds, /v1/feeds)."""
        partner = getattr(request.state, "partner", "-")
        service.record_refused_request(request, exc.status_code, str(exc.detail))
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
            rows = file_events(partner, source, name, content)
        except SourceFormatError as exc:
            raise HTTPException(400, str(exc)) from None
        if not rows:
            raise HTTPException(400, f"{name}: no data rows under the header")
        items = [item for _, item in rows]
        return await service.ingest(
            request, partner, items, rows=[n for n, _ in rows], source=source
        )

    @app.get(
        "/v1/feeds",
        response_model=FeedStatus,
        responses={
            401: {"model": Problem, "description": "No key, or an unknown or revoked key"},
            429: {"model": Problem, "description": "Over the partner's rate limit"},
            503: {"model": Problem, "description": "Nothing published yet; retry later"},
        },
        summary="Your feeds: what you sent, what was accepted, refused and why",
    )
    async def get_feeds(partner: current_partner) -> FeedStatus:
        """The calling partner's feed status as the My feeds dashboard shows it, from the last
        published data: per source and topic, events sent, accepted and refused (with the reasons,
        from the sink and from this API), freshness, completeness and how many figures count
        toward the plan's targets. Only the key's own partner, never another's."""
        try:
            return await run_in_threadpool(feeds.status, partner.slug)
        except FeedsUnavailable as exc:
            raise HTTPException(503, str(exc), {"Retry-After": "60"}) from None

    return app
