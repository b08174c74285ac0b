"""`GET /v1/feeds` as a partner meets it, end to end: two partners push through the real API (some
records accepted, some refused by the API), a bad record reaches Kafka past the API (the sink
refuses it), then the real sink, `urbanflow refresh` and `urbanflow publish` build serving.duckdb,
and each partner asks the API what became of its events.

The topics are the real ones (dbt stages `raw.partner_push_result_v1`), so the partners get fresh
slugs: whatever else the broker holds, their rows are theirs alone.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import secrets_registry
from api_harness import CLI, WAIT_S, ApiServer, result_event

from connectors.api.partners import PartnerStore
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import apply_topics, load_topics
from connectors.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]

TOPIC = "partner.push.result.v1"
RAW_TABLE = "partner_push_result_v1"


@dataclass
class Pushed:
    """What the fixture sent, per partner: (slug, key, ids accepted, API answers)."""

    url: str
    partners: dict[str, str]
    run: str
    answers: dict[str, dict[str, Any]]
    serving: Path

    def feeds(self, slug: str | None, key: str | None = None) -> httpx.Response:
        token = key if key is not None else self.partners[slug] if slug else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{self.url}/v1/feeds", headers=headers, timeout=WAIT_S)


def _urbanflow(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=1500, check=False
    )
    assert done.returncode == 0, (
        f"urbanflow {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def pushed(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pushed]:
    var = tmp_path_factory.mktemp("feeds")
    env = {
        **os.environ,
        "UF_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "UF_VAR_DIR": str(var),
        "UF_WAREHOUSE_PATH": str(var / "warehouse.duckdb"),
        "UF_STATE_DIR": str(var / "state"),
        "UF_PARTNERS_DB": str(var / "partners.sqlite"),
        "UF_SINK_GROUP": f"test-feeds-{uuid.uuid4().hex[:8]}",
        "COLUMNS": "200",
    }
    env.pop("UF_SERVING_PATH", None)
    settings = Settings.from_env()
    apply_topics(kafka_bootstrap, load_topics(settings.topics_file))
    run = uuid.uuid4().hex[:6]
    store = PartnerStore(var / "partners.sqlite")
    partners = {}
    for name in ("north", "south"):
        partner, key = store.add(f"feeds-{name}-{run}")
        secrets_registry.register(key, "partner API key")
        partners[partner.slug] = key
    north, south = sorted(partners)
    own, other = f"urn:partner:{north}", f"urn:partner:{south}"

    server = ApiServer({k: v for k, v in env.items() if k.startswith("UF_")}, var / "api.log")
    server.start()
    answers = {}
    try:
        answers[north] = server.post(
            partners[north],
            json={
                "events": [
                    result_event(f"{run}-n-ok-1", own),
                    result_event(f"{run}-n-ok-2", f"{own}:kenya", sex="total"),
                    result_event(f"{run}-n-bad-value", own, value=-5),
                    result_event(f"{run}-n-foreign", other),
                ]
            },
        ).json()
        answers[south] = server.post(
            partners[south],
            json={
                "events": [
                    result_event(f"{run}-s-ok-1", other),
                    result_event(f"{run}-s-bad-theme", other, theme="parks"),
                ]
            },
        ).json()
    finally:
        server.stop()
    # A bad record that reached Kafka past the API (an old client, a replay): the sink refuses it.
    with EventProducer(kafka_bootstrap, client_id="test-feeds") as producer:
        bad = result_event(f"{run}-n-sink-bad", own, period="2025-13")
        producer.send_raw(TOPIC, orjson.dumps(bad), key="test")
        producer.confirm()

    _urbanflow(env, "sink", "run", "--until-caught-up", "--no-progress")
    _urbanflow(env, "refresh")
    _urbanflow(env, "publish")
    serving = var / "serving.duckdb"
    assert serving.exists()

    server = ApiServer({k: v for k, v in env.items() if k.startswith("UF_")}, var / "api2.log")
    server.start()
    try:
        yield Pushed(server.url, partners, run, answers, serving)
    finally:
        server.stop()


def _feed(body: dict[str, Any], source: str) -> dict[str, Any]:
    (feed,) = [f for f in body["feeds"] if f["source_urn"] == source]
    return feed


def test_the_api_answered_the_pushes_with_what_it_refused(pushed: Pushed) -> None:
    north, south = sorted(pushed.partners)
    assert (pushed.answers[north]["accepted"], pushed.answers[north]["rejected"]) == (2, 2)
    assert (pushed.answers[south]["accepted"], pushed.answers[south]["rejected"]) == (1, 1)


def test_a_partner_sees_its_accepted_and_refused_events_with_the_reasons(pushed: Pushed) -> None:
    north, _ = sorted(pushed.partners)
    response = pushed.feeds(north)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["partner"] == north
    main = _feed(body, f"urn:partner:{north}")
    assert main["raw_table"] == RAW_TABLE
    assert main["events_accepted"] == 1
    # refused: a bad value and another partner's source (the API), a bad period (the sink)
    assert (main["events_refused"], main["events_refused_by_api"]) == (3, 2)
    assert main["events_sent"] == 4
    assert main["accepted_percent"] == pytest.approx(25.0)
    assert main["last_ingested_at"] is not None and main["freshness_hours"] >= 0
    reasons = {(r["refused_by"], r["error_class"]): r["reason"] for r in main["refusals"]}
    assert "$.data.value" in reasons[("api", "contract")]
    assert reasons[("api", "forbidden")].startswith("source not allowed")
    assert "$.data.period" in reasons[("sink", "contract")]
    assert sum(r["count"] for r in main["refusals"]) == 3
    kenya = _feed(body, f"urn:partner:{north}:kenya")
    assert (kenya["events_accepted"], kenya["events_refused"]) == (1, 0)
    assert kenya["figures_reported"] == 1
    assert body["events_accepted"] == 2 and body["events_refused"] == 3


def test_a_partner_never_sees_another_partners_feeds_or_refusals(pushed: Pushed) -> None:
    north, south = sorted(pushed.partners)
    for me, them in ((north, south), (south, north)):
        body = pushed.feeds(me).json()
        sources = {f["source_urn"] for f in body["feeds"]}
        assert sources and all(s.startswith(f"urn:partner:{me}") for s in sources), sources
        assert not any(them in s for s in sources)
        text = orjson.dumps(body).decode()
        initial = them.split("-")[1][0]
        assert f"{pushed.run}-{initial}-" not in text  # no event id of the other partner
    south_feed = _feed(pushed.feeds(south).json(), f"urn:partner:{south}")
    # north's record naming south's source was refused for north, and counted only there
    assert (south_feed["events_accepted"], south_feed["events_refused"]) == (1, 1)
    ((refusal),) = south_feed["refusals"]
    assert refusal["refused_by"] == "api" and "$.data.theme" in refusal["reason"]


def test_feeds_need_a_valid_key_and_are_documented_in_openapi(pushed: Pushed) -> None:
    assert pushed.feeds(None).status_code == 401
    assert pushed.feeds(None, key="uf_nobody_" + "A" * 43).status_code == 401
    spec = httpx.get(f"{pushed.url}/openapi.json", timeout=WAIT_S).json()
    operation = spec["paths"]["/v1/feeds"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/FeedStatus"}
    feed = spec["components"]["schemas"]["Feed"]["properties"]
    assert {"events_sent", "events_accepted", "events_refused", "refusals"} <= set(feed)
    assert {"freshness_hours", "accepted_percent", "figures_toward_targets"} <= set(feed)
