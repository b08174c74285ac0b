"""A partner can neither write another partner's sources nor read its feed status (issue #13).

Against a real `urbanflow api serve` (the helpers of tests/integration/test_api.py) and the real
broker, with two partners whose slugs are prefixes of each other (`sec-<run>` and
`sec-<run>-2`), so a check done by string prefix instead of by source would show here.

Already asserted elsewhere and not repeated: events all for another partner's plain source are
403 and unpublished, a mixed batch publishes only the caller's own and the rejection log files
the foreign record under the caller (test_api.py); the full pipeline's feeds keep each partner's
refusals to itself (test_feeds_api.py); Superset's row-level security shows a partner only its
own rows of My feeds (test_superset.py, `test_a_partner_sees_my_feeds_with_only_its_own_rows_...`).
New here: sub-sources and prefix-twin slugs, file uploads naming a foreign source, keys forged
from another partner's, and `GET /v1/feeds` asked for another partner by parameter or header.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import secrets_registry
import yaml
from integration.test_api import (
    CSV_HEADER,
    WAIT_S,
    Api,
    ApiServer,
    api_env,
    delete_topic,
    published,
    rejection_log,
    result_event,
    result_topic_file,
    upload,
)

from connectors.api.partners import PartnerStore

pytestmark = pytest.mark.integration

OPS_MODELS = Path(__file__).parents[2] / "dbt_project/models/marts/ops/_ops__models.yml"
CSV_ROW = "GB-1-101,KENBO,basic_services,people_reached,2025,350,people,total,\n"


@dataclass
class Partners:
    """The API under test and two partners, `me` a prefix of `twin`, with their keys."""

    api: Api
    me: str
    twin: str
    keys: dict[str, str]

    def feeds(self, key: str, **request: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}", **request.pop("headers", {})}
        return httpx.get(
            f"{self.api.server.url}/v1/feeds", headers=headers, timeout=WAIT_S, **request
        )


def write_serving(path: Path, feeds: list[dict[str, Any]], refusals: list[dict[str, Any]]) -> None:
    """A serving.duckdb with only the two marts `GET /v1/feeds` reads, typed as their dbt
    contracts declare: the partner filter is under test here, not the build (test_feeds_api.py
    builds these marts end to end, in minutes)."""
    models = {m["name"]: m for m in yaml.safe_load(OPS_MODELS.read_text())["models"]}
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        for table, rows in (("fct_partner_feeds", feeds), ("fct_dead_letters", refusals)):
            columns = [c["name"] for c in models[table]["columns"]]
            types = [c["data_type"] for c in models[table]["columns"]]
            ddl = ", ".join(f"{name} {kind}" for name, kind in zip(columns, types, strict=True))
            con.execute(f"create table marts.{table} ({ddl})")
            marks = ", ".join("?" * len(columns))
            for row in rows:
                con.execute(
                    f"insert into marts.{table} values ({marks})", [row[c] for c in columns]
                )


def feed_row(slug: str, source: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "partner_feed_key": f"{slug}|{source}",
        "partner_slug": slug,
        "partner_name": slug,
        "source_urn": source,
        "raw_table": "partner_push_result_v1",
        "events_sent": 3,
        "events_accepted": 2,
        "events_refused": 1,
        "events_refused_by_api": 1,
        "accepted_percent": 66.7,
        "first_event_time": now,
        "last_event_time": now,
        "last_ingested_at": now,
        "freshness_hours": 0.5,
        "last_dead_lettered_at": now,
        "figures_reported": 2,
        "figures_toward_targets": 1,
        "measured_at": now,
    }


def refusal_row(slug: str, source: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "dead_letter_key": f"{slug}|{source}",
        "refused_by": "api",
        "kafka_topic": "partner.push.result.v1",
        "raw_table": "partner_push_result_v1",
        "source_urn": source,
        "partner_slug": slug,
        "error_class": "contract",
        "reason": f"refusal of {slug} only",
        "contract": "org.urbanflow.partner.result.v1",
        "dead_letter_date": now.date(),
        "dead_letter_count": 1,
        "first_dead_lettered_at": now,
        "last_dead_lettered_at": now,
    }


@pytest.fixture(scope="module")
def partners(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Partners]:
    folder = tmp_path_factory.mktemp("security")
    spec, topics_file = result_topic_file(kafka_bootstrap, folder)
    serving = folder / "serving.duckdb"
    env = api_env(kafka_bootstrap, folder, topics_file, UF_SERVING_PATH=str(serving))
    store = PartnerStore(folder / "partners.sqlite")
    run = uuid.uuid4().hex[:8]
    me, twin = f"sec-{run}", f"sec-{run}-2"
    keys = {slug: store.add(slug)[1] for slug in (me, twin)}
    for key in keys.values():
        secrets_registry.register(key, "partner API key")
    sources = [(slug, f"urn:partner:{slug}{tail}") for slug in (me, twin) for tail in ("", ":ke")]
    write_serving(
        serving,
        [feed_row(slug, source) for slug, source in sources],
        [refusal_row(slug, source) for slug, source in sources],
    )
    server = ApiServer(env, folder / "server.log").start()
    try:
        yield Partners(Api(server, store, spec.name, kafka_bootstrap, env), me, twin, keys)
    finally:
        server.stop()
        delete_topic(kafka_bootstrap, spec)


def under(slug: str, source: str) -> bool:
    """Whether `source` is one of the partner's own (its URN or one below it)."""
    return source == f"urn:partner:{slug}" or source.startswith(f"urn:partner:{slug}:")


def sent_as(partners: Partners, slug: str) -> list[dict[str, Any]]:
    return [
        e for e in published(partners.api.bootstrap, partners.api.topic) if under(slug, e["source"])
    ]


@pytest.mark.parametrize("writer", ["me", "twin"], ids=["prefix-writes-twin", "twin-writes-prefix"])
def test_events_for_another_partners_source_or_sub_source_are_403_and_never_published(
    partners: Partners, writer: str
) -> None:
    me, other = (partners.me, partners.twin) if writer == "me" else (partners.twin, partners.me)
    run = uuid.uuid4().hex[:8]
    foreign = [
        result_event(f"{run}-plain", f"urn:partner:{other}"),
        result_event(f"{run}-sub", f"urn:partner:{other}:kenya"),
        result_event(f"{run}-deep", f"urn:partner:{other}:kenya:nairobi"),
    ]

    response = partners.api.server.post(partners.keys[me], json={"events": foreign})

    assert response.status_code == 403, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (0, 3)
    assert all(e["reason"].startswith("source not allowed") for e in body["errors"])
    assert not [e for e in sent_as(partners, other) if e["id"].startswith(run)]
    logged = [r for r in rejection_log(partners.api) if (r["event_id"] or "").startswith(run)]
    assert len(logged) == 3
    assert {(r["partner_slug"], r["source_urn"]) for r in logged} == {(me, f"urn:partner:{me}")}


@pytest.mark.parametrize("tail", ["", ":kenya"], ids=["source", "sub-source"])
def test_a_file_upload_naming_another_partners_source_is_403_and_publishes_nothing(
    partners: Partners, tail: str
) -> None:
    me, twin = partners.me, partners.twin
    content = f"{CSV_HEADER}{CSV_ROW}".replace("350", str(uuid.uuid4().int % 10**6)).encode()

    refused = upload(
        partners.api, partners.keys[me], "r.csv", content, source=f"urn:partner:{twin}{tail}"
    )
    own = upload(
        partners.api, partners.keys[me], "r.csv", content, source=f"urn:partner:{me}{tail}"
    )

    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == f"source not allowed: 'urn:partner:{twin}{tail}'"
    assert own.status_code == 202 and own.json()["accepted"] == 1, own.text  # the file is good
    assert sent_as(partners, twin) == []
    mine = [
        r
        for r in rejection_log(partners.api)
        if r["http_status"] == 403 and r["endpoint"] == "/v1/files"
    ]
    assert mine and all(r["partner_slug"] == me and under(me, r["source_urn"]) for r in mine)


def test_a_file_cannot_name_a_source_per_row(partners: Partners) -> None:
    smuggled = f"source,{CSV_HEADER}urn:partner:{partners.twin},{CSV_ROW}".encode()

    response = upload(partners.api, partners.keys[partners.me], "rows.csv", smuggled)

    assert response.status_code == 400
    assert "unknown columns ['source']" in response.json()["detail"]
    assert sent_as(partners, partners.twin) == []


def test_a_key_forged_from_another_partners_is_refused_on_every_endpoint(
    partners: Partners,
) -> None:
    secret = partners.keys[partners.me].removeprefix(f"uf_{partners.me}_")
    forged = secrets_registry.register(f"uf_{partners.twin}_{secret}", "forged partner API key")
    event = result_event(f"forged-{uuid.uuid4().hex[:8]}", f"urn:partner:{partners.twin}")
    content = f"{CSV_HEADER}{CSV_ROW}".encode()

    answers = {
        "events": partners.api.server.post(forged, json=event),
        "files": upload(partners.api, forged, "r.csv", content),
        "feeds": partners.feeds(forged),
    }

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 401)
    assert all(r.json()["detail"] == "unknown or revoked API key" for r in answers.values())
    assert sent_as(partners, partners.twin) == []


def test_a_revoked_partner_can_no_longer_upload_or_read_its_feeds(partners: Partners) -> None:
    slug, key = partners.api.partner()
    partners.api.store.revoke(slug)  # before its first use: a running API caches a valid key

    answers = [
        upload(partners.api, key, "r.csv", f"{CSV_HEADER}{CSV_ROW}".encode()),
        partners.feeds(key),
    ]

    assert [r.status_code for r in answers] == [401, 401]


@pytest.mark.parametrize("asker", ["me", "twin"])
def test_feeds_answer_for_the_keys_partner_whatever_the_request_names(
    partners: Partners, asker: str
) -> None:
    me, other = (partners.me, partners.twin) if asker == "me" else (partners.twin, partners.me)
    naming_other = {
        "params": {"partner": other, "partner_slug": other, "slug": other, "source": other},
        "headers": {"X-Partner": other, "X-API-Key": partners.keys[other]},
    }

    response = partners.feeds(partners.keys[me], **naming_other)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["partner"] == me
    sources = {f["source_urn"] for f in body["feeds"]}
    assert sources == {f"urn:partner:{me}", f"urn:partner:{me}:ke"}
    reasons = {r["reason"] for f in body["feeds"] for r in f["refusals"]}
    assert reasons == {f"refusal of {me} only"}
    assert (body["events_sent"], body["events_refused"]) == (6, 2)  # its two feeds, no more
