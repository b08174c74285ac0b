"""Who is calling and how often: API-key checks with a short cache, and per-partner rate limits.

Both live in the event loop's thread (the API runs one uvicorn worker), so they need no locks;
only a cache miss leaves it, to hash the presented key in a worker thread.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from connectors.api.partners import Partner, PartnerStore

Clock = Callable[[], float]


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from `Authorization: Bearer <key>` or `X-API-Key: <key>`, if any."""
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return x_api_key.strip() if x_api_key and x_api_key.strip() else None


class KeyCache:
    """Verified keys for `ttl_s` seconds, so thousands of requests/s do not each pay scrypt.

    Keyed by SHA-256 of the key: the cache never holds a key itself. A revoked key keeps working
    for at most `ttl_s` in a running API.
    """

    def __init__(self, store: PartnerStore, ttl_s: float, clock: Clock = time.monotonic):
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._verified: dict[bytes, tuple[Partner, float]] = {}

    def cached(self, key: str) -> Partner | None:
        """The partner for a key verified less than `ttl_s` ago, else None (verify it)."""
        hit = self._verified.get(hashlib.sha256(key.encode()).digest())
        if hit is None or hit[1] <= self._clock():
            return None
        return hit[0]

    def verify(self, key: str) -> Partner | None:
        """Check the key against the registry (slow: scrypt) and remember the answer if valid."""
        digest = hashlib.sha256(key.encode()).digest()
        partner = self._store.authenticate(key)
        if partner is None or self._ttl_s <= 0:
            self._verified.pop(digest, None)
        else:
            self._verified[digest] = (partner, self._clock() + self._ttl_s)
        return partner


class RateLimiter:
    """A token bucket per partner: `rate_per_s` requests a second on average, bursts of `burst`."""

    def __init__(self, rate_per_s: float, burst: int, clock: Clock = time.monotonic):
        self._rate = rate_per_s
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, slug: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds until a token is available."""
        now = self._clock()
        tokens, last = self._buckets.get(slug, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens >= 1.0:
            self._buckets[slug] = (tokens - 1.0, now)
            return 0.0
        self._buckets[slug] = (tokens, now)
        return (1.0 - tokens) / self._rate
