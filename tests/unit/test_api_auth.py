"""Partner keys, the registry, the key cache, rate limits, source scoping: no server, no broker."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import orjson
import pytest

from connectors.api.auth import KeyCache, RateLimiter
from connectors.api.checks import (
    RESULT_EXAMPLE,
    RESULT_TYPE,
    check_event,
    partner_routes,
    refused_origin,
)
from connectors.api.partners import PartnerStore, SeenEvents, key_id
from connectors.api.rejections import Rejection, RejectionLog
from connectors.errors import ConfigError
from connectors.refusals import Refused
from connectors.settings import SOURCE_TREE as REPO_ROOT

RESULT = RESULT_EXAMPLE["data"]


def event(source: str = "urn:partner:acme", **changes: object) -> bytes:
    return orjson.dumps({**RESULT_EXAMPLE, "id": "r-1", "source": source, **changes})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path) -> PartnerStore:
    return PartnerStore(tmp_path / "partners.sqlite")


def test_a_new_key_names_the_partner_and_only_its_salted_hash_is_stored(store):
    partner, key = store.add("acme")

    assert key.startswith("uf_acme_") and len(key) == len("uf_acme_") + 43
    assert partner.key_id == key[: len("uf_acme_") + 8]
    raw = store.path.read_bytes() + b"".join(
        p.read_bytes() for p in store.path.parent.glob("*-wal")
    )
    assert key.encode() not in raw
    assert key[len("uf_acme_") + 8 :].encode() not in raw


def test_the_right_key_authenticates_and_a_wrong_or_malformed_one_does_not(store):
    _, key = store.add("acme")

    assert store.authenticate(key).slug == "acme"
    assert store.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.authenticate("uf_acme_short") is None
    assert store.authenticate("not-our-key") is None
    assert key_id("uf_Bad_" + "x" * 43) is None


def test_two_partners_keys_are_distinct_and_each_finds_its_own_partner(store):
    _, acme = store.add("acme")
    _, habitat = store.add("habitat-ke")

    assert store.authenticate(acme).slug == "acme"
    assert store.authenticate(habitat).slug == "habitat-ke"
    assert [p.slug for p in store.list()] == ["acme", "habitat-ke"]


def test_a_revoked_key_is_refused_and_the_partner_can_be_re_keyed(store):
    _, old = store.add("acme")

    revoked = store.revoke("acme")
    _, new = store.add("acme")

    assert revoked.revoked_at is not None
    assert store.authenticate(old) is None
    assert store.authenticate(new).slug == "acme"


def test_adding_an_active_partner_twice_is_refused_naming_the_revoke_command(store):
    store.add("acme")
    with pytest.raises(ConfigError, match="urbanflow partners revoke acme"):
        store.add("acme")


def test_default_sources_are_the_partner_urn_and_everything_under_it(store):
    partner, _ = store.add("acme")

    assert partner.sources == ("urn:partner:acme", "urn:partner:acme:")
    assert partner.allows("urn:partner:acme")
    assert partner.allows("urn:partner:acme:kenya")
    assert not partner.allows("urn:partner:acme-evil")
    assert not partner.allows("urn:partner:other")


def test_explicit_sources_must_stay_under_the_partners_own_urn(store):
    partner, _ = store.add("acme", ["urn:partner:acme:kenya:"])

    assert partner.allows("urn:partner:acme:kenya:nairobi")
    assert not partner.allows("urn:partner:acme")
    with pytest.raises(ConfigError, match="may only write to its own sources"):
        store.add("rogue", ["urn:partner:acme"])


def test_slugs_with_underscores_or_capitals_are_refused(store):
    for slug in ("acme_ngo", "Acme", "a"):
        with pytest.raises(ConfigError, match="partner slug"):
            store.add(slug)


def test_the_key_cache_answers_without_the_database_until_its_ttl_expires(store):
    _, key = store.add("acme")
    clock = Clock()
    cache = KeyCache(store, ttl_s=60, clock=clock)

    assert cache.cached(key) is None
    assert cache.verify(key).slug == "acme"
    store.revoke("acme")
    clock.now += 59
    assert cache.cached(key).slug == "acme"
    clock.now += 2
    assert cache.cached(key) is None
    assert cache.verify(key) is None


def test_the_rate_limiter_allows_the_burst_then_refuses_with_the_wait():
    clock = Clock()
    limiter = RateLimiter(rate_per_s=5, burst=3, clock=clock)

    assert [limiter.acquire("acme") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("acme") == pytest.approx(0.2)
    assert limiter.acquire("other") == 0.0
    clock.now += 0.2
    assert limiter.acquire("acme") == 0.0


def test_the_real_topics_file_routes_partner_results_to_partner_push_result():
    routes = partner_routes(REPO_ROOT / "infra" / "kafka" / "topics.yml")

    assert routes[RESULT_TYPE].topic == "partner.push.result.v1"
    assert routes[RESULT_TYPE].decoder is not None


def test_an_event_for_another_partners_source_is_rejected_as_forbidden(store):
    partner, _ = store.add("acme")
    routes = partner_routes(REPO_ROOT / "infra" / "kafka" / "topics.yml")

    with pytest.raises(Refused) as refused:
        check_event(event("urn:partner:other"), partner, routes, 256 * 1024)

    assert refused.value.forbidden
    assert refused.value.reason.startswith("source not allowed")
    assert refused.value.event_id == "r-1"


def test_a_valid_own_event_is_accepted_byte_for_byte_and_keyed_by_subject(store):
    partner, _ = store.add("acme")
    routes = partner_routes(REPO_ROOT / "infra" / "kafka" / "topics.yml")
    raw = event("urn:partner:acme:kenya")

    accepted = check_event(raw, partner, routes, 256 * 1024)

    assert (accepted.source, accepted.id, accepted.key) == (
        "urn:partner:acme:kenya",
        "r-1",
        "GB-GOV-1-300123",
    )
    assert accepted.value == raw
    assert accepted.topic == "partner.push.result.v1"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"data": {**RESULT, "value": -1}}, "$.data.value"),
        ({"data": {**RESULT, "theme": "parks"}}, "$.data.theme"),
        ({"data": {**RESULT, "period": "2025-13"}}, "$.data.period"),
        ({"data": {k: v for k, v in RESULT.items() if k != "sex"}}, "sex"),
        ({"time": "yesterday"}, "$.time"),
        ({"type": "org.urbanflow.stats.observation.v1"}, "$.type"),
    ],
)
def test_an_invalid_event_is_rejected_naming_the_field(store, changes, field):
    partner, _ = store.add("acme")
    routes = partner_routes(REPO_ROOT / "infra" / "kafka" / "topics.yml")

    with pytest.raises(Refused) as refused:
        check_event(event(**changes), partner, routes, 256 * 1024)

    assert field in refused.value.reason
    assert not refused.value.forbidden


def test_seen_events_claims_each_source_and_id_once_and_a_rollback_forgets(tmp_path):
    seen = SeenEvents(tmp_path / "partners.sqlite")
    keys = [("urn:partner:acme", "a"), ("urn:partner:acme", "b"), ("urn:partner:x", "a")]

    assert seen.claim(keys) == set(keys)
    seen.commit()
    assert seen.claim([*keys, ("urn:partner:acme", "c")]) == {("urn:partner:acme", "c")}
    seen.rollback()
    assert seen.claim([("urn:partner:acme", "c")]) == {("urn:partner:acme", "c")}
    seen.commit()
    seen.close()
    with sqlite3.connect(tmp_path / "partners.sqlite") as con:
        assert con.execute("select count(*) from seen_events").fetchone() == (4,)


# --- what a refusal is counted under, and the rejection log ---------------------------------------


def test_a_refused_record_counts_under_its_own_source_only_if_the_caller_owns_it(store):
    partner, _ = store.add("acme", ["urn:partner:acme", "urn:partner:acme:"])
    routes = partner_routes(REPO_ROOT / "infra" / "kafka" / "topics.yml")
    topic = routes[RESULT_TYPE].topic

    assert refused_origin(event("urn:partner:acme:kenya"), partner, routes, "urn:partner:acme") == (
        "urn:partner:acme:kenya",
        topic,
    )
    # another partner's source, no JSON at all, no record: the caller's fallback source
    for raw in (event("urn:partner:rival"), b"not json", None):
        assert refused_origin(raw, partner, routes, "urn:partner:acme") == (
            "urn:partner:acme",
            topic,
        )


def test_the_rejection_log_writes_one_flushed_json_line_per_refusal_per_day(store, tmp_path):
    partner, _ = store.add("acme")
    days = iter([datetime(2026, 3, 1, 23, 59, tzinfo=UTC), datetime(2026, 3, 2, 0, 1, tzinfo=UTC)])
    log = RejectionLog(tmp_path / "rejections", now=lambda: next(days))
    bad = Rejection(
        "urn:partner:acme",
        "partner.push.result.v1",
        "contract",
        "x" * 5000,
        422,
        "/v1/events",
        event_id="e-1",
        contract=RESULT_TYPE,
    )

    log.record(partner, [bad, bad])
    log.record(
        partner, [Rejection("urn:partner:acme", "t", "request", "too big", 413, "/v1/files")]
    )

    files = sorted((tmp_path / "rejections").glob("*.jsonl"))
    assert [f.name.split(".")[0] for f in files] == ["2026-03-01", "2026-03-02"]
    first = [orjson.loads(line) for line in files[0].read_bytes().splitlines()]  # before close
    assert len(first) == 2 and first[0]["rejected_at"] == "2026-03-01T23:59:00.000000Z"
    assert first[0]["partner_slug"] == "acme" and first[0]["event_id"] == "e-1"
    assert len(first[0]["reason"]) == 2000
    (second,) = [orjson.loads(line) for line in files[1].read_bytes().splitlines()]
    assert (second["error_class"], second["http_status"], second["event_id"]) == (
        "request",
        413,
        None,
    )
    log.close()
