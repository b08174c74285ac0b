"""What the endpoints share: the key check and rate limit, then check, publish and answer.

`ingest` is the one place a request's records become a response: counts, per-record reasons and
the status (202, 403 or 422), logged once per request with the partner, never the key.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations of `partner` (its
# Security dependencies) at run time.
import logging
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import HTTPException, Request, Response, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from connectors.api.auth import KeyCache, RateLimiter
from connectors.api.checks import RESULT_TYPE, Accepted, check_event, partner_routes, refused_origin
from connectors.api.partners import Partner, PartnerStore, SeenEvents
from connectors.api.publisher import Publisher
from connectors.api.rejections import Rejection, RejectionLog
from connectors.errors import DeliveryError
from connectors.kafka.producer import EventProducer
from connectors.refusals import Refused
from connectors.settings import ApiSettings

log = logging.getLogger(__name__)

_BEARER = HTTPBearer(auto_error=False, description="`Authorization: Bearer <partner key>`")
_API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="The partner key")


def refusal_record(refused: Refused, index: int, row: int | None) -> dict[str, Any]:
    """A refused record as the response lists it: its place in the request, id and reason."""
    found: dict[str, Any] = {"index": index, "id": refused.event_id, "reason": refused.reason}
    if row is not None:
        found["row"] = row
    return found


class IngestService:
    """What the endpoints share: settings, routes, key cache, rate limiter and the publisher."""

    def __init__(self, settings: ApiSettings):
        self.settings = settings
        self.routes = partner_routes(settings.base.topics_file)
        self.keys = KeyCache(PartnerStore(settings.partners_db), settings.key_cache_s)
        self.limiter = RateLimiter(settings.rate_per_s, settings.rate_burst)
        self.rejections = RejectionLog(settings.rejections_dir)
        self.publisher: Publisher | None = None

    @asynccontextmanager
    async def publishing(self) -> AsyncIterator[None]:
        """The producer, the dedup store and the publisher thread, for the app's lifetime."""
        settings = self.settings
        producer = EventProducer(
            settings.base.kafka_bootstrap, client_id="urbanflow-api", linger_ms=settings.linger_ms
        )
        seen = SeenEvents(settings.partners_db)
        self.publisher = Publisher(producer, seen)
        self.publisher.start()
        topics = sorted({route.topic for route in self.routes.values()})
        log.info("partner API ready: publishing to %s", ", ".join(topics))
        try:
            yield
        finally:
            await self.publisher.stop()
            producer.close()
            seen.close()
            self.rejections.close()

    def record_refused_request(self, request: Request, status: int, reason: str) -> None:
        """A whole push refused once its partner was known (400, 413, 415, 429, 503 ...).
        A refused GET (/v1/feeds) sent no data, so it is only logged."""
        partner = getattr(request.state, "caller", None)
        if partner is None or request.method != "POST":  # 401: nobody to show it to
            return
        self.rejections.record(
            partner,
            [
                Rejection(
                    partner.default_source,
                    self.routes[RESULT_TYPE].topic,
                    "request",
                    reason,
                    status,
                    request.url.path,
                )
            ],
        )

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
        request.state.caller = partner
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
        items: Sequence[bytes | Refused],
        rows: Sequence[int] | None = None,
        source: str | None = None,
    ) -> Response:
        """Check every record, publish the good ones, answer with counts and per-record errors.

        202 if anything was accepted (or was a duplicate); else 403 when every record names a
        source the partner does not own, 422 otherwise. Every refused record goes to the
        rejection log, under `source` (a file's) or the partner's default source.
        """
        accepted: list[Accepted] = []
        errors: list[dict[str, Any]] = []
        refused: list[tuple[bytes | None, Refused, int | None]] = []
        forbidden = 0
        max_event_bytes = self.settings.base.max_event_bytes
        for index, item in enumerate(items):
            rejection = item if isinstance(item, Refused) else None
            if rejection is None:
                try:
                    accepted.append(check_event(item, partner, self.routes, max_event_bytes))
                    continue
                except Refused as exc:
                    rejection = exc
            forbidden += rejection.forbidden
            row = rows[index] if rows else None
            errors.append(refusal_record(rejection, index, row))
            refused.append((None if isinstance(item, Refused) else item, rejection, row))
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
        self._record_refused(request, partner, refused, status, source)
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

    def _record_refused(
        self,
        request: Request,
        partner: Partner,
        refused: list[tuple[bytes | None, Refused, int | None]],
        status: int,
        source: str | None,
    ) -> None:
        fallback = source or partner.default_source
        rejections = []
        for raw, rejection, row in refused:
            own_source, topic = refused_origin(raw, partner, self.routes, fallback)
            rejections.append(
                Rejection(
                    own_source,
                    topic,
                    rejection.error_class,
                    rejection.reason,
                    status,
                    request.url.path,
                    event_id=rejection.event_id,
                    contract=rejection.contract,
                    row=row,
                )
            )
        self.rejections.record(partner, rejections)
