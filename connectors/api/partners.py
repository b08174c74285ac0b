"""The partner registry and the idempotency store: one small SQLite file (UF_PARTNERS_DB).

A key is `uf_<slug>_<43 random url-safe characters>`. Only a salted scrypt hash of it is stored,
beside a non-secret key id (`uf_<slug>_` and the first 8 secret characters) that finds the row
without scanning, so a presented key costs one indexed read and one hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from connectors.errors import ConfigError
from connectors.events import utc_now_iso
from connectors.reference import PARTNER_SLUG_RE

KEY_PREFIX = "uf_"
_KEY_ID_CHARS = 8
# scrypt at n=2**14, r=8 (16 MiB, ~40 ms): a stolen database does not give keys back cheaply.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_ROWS_PER_STATEMENT = 300  # 3 bound values each, well under SQLite's 32766 variables

_SCHEMA = """
create table if not exists partners (
    slug text primary key,
    key_id text not null unique,
    salt blob not null,
    key_hash blob not null,
    sources text not null,
    created_at text not null,
    revoked_at text
);
create table if not exists seen_events (
    source text not null,
    id text not null,
    published_at text not null,
    primary key (source, id)
) without rowid;
"""


@dataclass(frozen=True)
class Partner:
    """A partner and the CloudEvent sources it may write; an entry ending in ':' is a prefix."""

    slug: str
    sources: tuple[str, ...]
    key_id: str
    created_at: str
    revoked_at: str | None = None

    @property
    def default_source(self) -> str:
        """The source given to events built for the partner (rows of an uploaded file)."""
        return next((s for s in self.sources if not s.endswith(":")), self.sources[0])

    def allows(self, source: str) -> bool:
        return any(
            source == allowed or (allowed.endswith(":") and source.startswith(allowed))
            for allowed in self.sources
        )


def default_sources(slug: str) -> tuple[str, ...]:
    return (f"urn:partner:{slug}", f"urn:partner:{slug}:")


def key_id(key: str) -> str | None:
    """The non-secret id of a key, or None when the key cannot be one of ours."""
    if not key.startswith(KEY_PREFIX):
        return None
    slug, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    if not sep or not PARTNER_SLUG_RE.match(slug) or len(secret) < 32:
        return None
    return f"{KEY_PREFIX}{slug}_{secret[:_KEY_ID_CHARS]}"


def hash_key(key: str, salt: bytes) -> bytes:
    return hashlib.scrypt(key.encode(), salt=salt, **_SCRYPT)


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create) the file in WAL mode: the API reads while the CLI adds partners."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    con.execute("pragma journal_mode=wal")
    con.execute("pragma synchronous=normal")
    con.executescript(_SCHEMA)
    return con


@contextmanager
def _session(path: Path) -> Iterator[sqlite3.Connection]:
    """A short connection for one CLI command or one key check, closed afterwards."""
    con = connect(path)
    try:
        yield con
    finally:
        con.close()


def _check_sources(slug: str, sources: Iterable[str]) -> tuple[str, ...]:
    own = f"urn:partner:{slug}"
    checked = tuple(sources)
    for source in checked:
        if source != own and not source.startswith(own + ":"):
            raise ConfigError(
                f"source {source!r} is not {own!r} or under {own + ':'!r}; a partner may only "
                "write to its own sources"
            )
    return checked


class PartnerStore:
    """Adds, lists, revokes and authenticates partners. One short connection per call."""

    def __init__(self, path: Path):
        self.path = path

    def add(self, slug: str, sources: Iterable[str] | None = None) -> tuple[Partner, str]:
        """Create a partner (or re-key a revoked one); return it with its key, shown only once."""
        if not PARTNER_SLUG_RE.match(slug):
            raise ConfigError(
                f"partner slug {slug!r} must be 2-40 lowercase letters, digits or '-' "
                "(no '_': it separates the slug inside the key)"
            )
        allowed = _check_sources(slug, sources or default_sources(slug))
        key = f"{KEY_PREFIX}{slug}_{secrets.token_urlsafe(32)}"
        salt = secrets.token_bytes(16)
        partner = Partner(slug, allowed, str(key_id(key)), utc_now_iso())
        digest = hash_key(key, salt)
        with _session(self.path) as con:
            con.execute("begin immediate")
            existing = con.execute(
                "select revoked_at from partners where slug = ?", [slug]
            ).fetchone()
            if existing is not None and existing[0] is None:
                raise ConfigError(
                    f"partner {slug!r} already exists in {self.path}; "
                    f"`urbanflow partners revoke {slug}` first to issue a new key"
                )
            con.execute(
                "insert or replace into partners values (?, ?, ?, ?, ?, ?, null)",
                [
                    slug,
                    partner.key_id,
                    salt,
                    digest,
                    orjson.dumps(allowed).decode(),
                    partner.created_at,
                ],
            )
            con.execute("commit")
        return partner, key

    def list(self) -> list[Partner]:
        with _session(self.path) as con:
            rows = con.execute(
                "select slug, sources, key_id, created_at, revoked_at from partners order by slug"
            ).fetchall()
        return [_partner(*row) for row in rows]

    def revoke(self, slug: str) -> Partner:
        with _session(self.path) as con:
            con.execute(
                "update partners set revoked_at = ? where slug = ? and revoked_at is null",
                [utc_now_iso(), slug],
            )
            row = con.execute(
                "select slug, sources, key_id, created_at, revoked_at from partners where slug = ?",
                [slug],
            ).fetchone()
        if row is None:
            raise ConfigError(f"no partner {slug!r} in {self.path}")
        return _partner(*row)

    def authenticate(self, key: str) -> Partner | None:
        """The active partner holding `key`, or None. Slow on purpose (scrypt): cache the result."""
        kid = key_id(key)
        if kid is None:
            return None
        with _session(self.path) as con:
            row = con.execute(
                "select slug, sources, key_id, created_at, revoked_at, salt, key_hash "
                "from partners where key_id = ?",
                [kid],
            ).fetchone()
        if row is None or row[4] is not None:
            return None
        if not hmac.compare_digest(hash_key(key, row[5]), row[6]):
            return None
        return _partner(*row[:5])


def _partner(slug: str, sources: str, kid: str, created_at: str, revoked_at: str | None) -> Partner:
    return Partner(slug, tuple(orjson.loads(sources)), kid, created_at, revoked_at)


class SeenEvents:
    """(source, id) of every event the API published, so a retry is answered as a duplicate.

    Used by the API's publisher, one call at a time. `claim` inserts in an open transaction and
    returns the keys that were new; `commit` after Kafka confirmed, `rollback` if it did not,
    so a failed delivery leaves nothing behind and the partner's retry is published.
    """

    def __init__(self, path: Path):
        self._con = connect(path)

    def claim(self, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        self._con.execute("begin immediate")
        now = utc_now_iso()
        new: set[tuple[str, str]] = set()
        for start in range(0, len(keys), _ROWS_PER_STATEMENT):
            chunk = keys[start : start + _ROWS_PER_STATEMENT]
            values = ",".join(["(?, ?, ?)"] * len(chunk))
            params = [value for source, event_id in chunk for value in (source, event_id, now)]
            cursor = self._con.execute(
                f"insert into seen_events values {values} "
                "on conflict do nothing returning source, id",
                params,
            )
            new.update(cursor.fetchall())
        return new

    def commit(self) -> None:
        self._con.execute("commit")

    def rollback(self) -> None:
        if self._con.in_transaction:
            self._con.execute("rollback")

    def close(self) -> None:
        self._con.close()
