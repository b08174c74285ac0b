"""GDACS source on the sample world's hazard feeds -> real Kafka -> sink -> `dbt build` -> the
resilience marts, whose headline figures are checked against figures computed here straight from
the GeoJSON files (without the connector's parser).

The topic is the real one, which other runs (the demo) also fill: this test publishes under a feed
of its own (`urn:hazard:<feed>`), and the marts never merge feeds, so the assertions filter on it.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest
from test_indicator_sources import _end_offsets, _read_from

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import apply_topics, load_topics
from connectors.reference import load_cities
from connectors.sdk import load_config, run_source
from connectors.sdk.state import StateStore
from connectors.settings import SOURCE_TREE as REPO_ROOT
from connectors.sink import Sink
from connectors.sources import gdacs
from connectors.transform import run_dbt

pytestmark = pytest.mark.integration
SAMPLE_FEEDS = sorted((REPO_ROOT / "sample_data" / "hazards").glob("*.geojson"))
BAD_FEED = REPO_ROOT / "tests" / "fixtures" / "gdacs" / "gdacs_bad_features.geojson"
RADIUS_KM = 30.0

#: (hazard type, event id, city code or None) -> (episode, year, people affected or None)
Places = dict[tuple[str, int, str | None], tuple[int, int, int | None]]


def _city_near(lat: float, lon: float, iso3: str) -> str | None:
    """The closest city of the country within the radius (equirectangular distance, ample at
    a few tens of km)."""
    best = None
    for city in load_cities():
        if city.country_iso3 != iso3:
            continue
        dx = math.radians(lon - city.longitude) * math.cos(math.radians((lat + city.latitude) / 2))
        km = 6371.0 * math.hypot(dx, math.radians(lat - city.latitude))
        if km <= RADIUS_KM and (best is None or km < best[0]):
            best = (km, city.code)
    return best[1] if best else None


def expected_places(paths: list[Path]) -> Places:
    """The latest episode per event and place, read from the feeds with json alone."""
    places: Places = {}
    for path in paths:
        for feature in json.loads(path.read_text(encoding="utf-8"))["features"]:
            p = feature["properties"]
            lon, lat = feature["geometry"]["coordinates"]
            city = p.get("city_code") or _city_near(lat, lon, p["iso3"])
            affected = [int(s["sendaivalue"]) for s in p.get("sendai", [])]
            key = (p["eventtype"], p["eventid"], city)
            if key not in places or p["episodeid"] > places[key][0]:
                year = int(p["fromdate"][:4])
                places[key] = (p["episodeid"], year, sum(affected) if affected else None)
    return places


def _query(warehouse: Path, sql: str, params: list) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params).fetchall()


def test_sample_hazards_reach_the_marts_with_the_files_figures_and_bad_features_dead_letter(
    settings,
):
    feed = f"gdacs-test-{uuid.uuid4().hex[:8]}"
    urn = f"urn:hazard:{feed}"
    specs = [s for s in load_topics(settings.topics_file) if s.name == gdacs.TOPIC]
    apply_topics(settings.kafka_bootstrap, specs)
    dlq_start = _end_offsets(settings.kafka_bootstrap, gdacs.TOPIC + ".dlq")
    runs = {  # the bad features under a feed of their own, kept out of the figures below
        name: (
            load_config("gdacs", gdacs.GdacsConfig, overrides={"inputs": inputs, "feed": name}),
            StateStore(settings.state_dir, name),
        )
        for name, inputs in (
            (feed, [str(p) for p in SAMPLE_FEEDS]),
            (f"{feed}-bad", [str(BAD_FEED)]),
        )
    }

    with EventProducer(settings.kafka_bootstrap) as producer:
        first, second = (
            {name: run_source(gdacs.SOURCE, c, producer, s) for name, (c, s) in runs.items()}
            for _ in range(2)
        )
    Sink(settings, specs).run(until_caught_up=True)
    # Only the hazard marts, their parents and the tests of those (not other marts' tests).
    selection = ["--select", "+fct_hazard_impacts_yearly", "ref_countries"]
    run_dbt(settings, ["build", *selection, "--indirect-selection", "cautious"])

    episodes = sum(len(json.loads(p.read_text(encoding="utf-8"))["features"]) for p in SAMPLE_FEEDS)
    assert {n: (r.sent, r.rejected) for n, r in first.items()} == {
        feed: (episodes, 0),
        f"{feed}-bad": (1, 11),  # the one good feature among the bad ones still loads
    }
    # Nothing is re-sent; bad features are reported again, as long as the feed carries them.
    assert {n: (r.sent, r.rejected) for n, r in second.items()} == {
        feed: (0, 0),
        f"{feed}-bad": (0, 11),
    }
    dead = _read_from(settings.kafka_bootstrap, dlq_start)
    assert len(dead) == 22
    assert {dict(m.headers)["uf.source"] for m in dead} == {b"gdacs"}

    places = expected_places(SAMPLE_FEEDS)
    events_per_type: dict[str, set[int]] = defaultdict(set)
    people: dict[tuple[str, int], int] = defaultdict(int)
    for (hazard, event_id, city), (_, year, affected) in places.items():
        events_per_type[hazard].add(event_id)
        if city is not None and affected is not None:
            people[city, year] += affected

    rows = _query(
        settings.warehouse_path,
        """select hazard_type_code, count(distinct hazard_event_id) from marts.fct_hazard_events
           where source_urn = ? group by all""",
        [urn],
    )
    assert dict(rows) == {hazard: len(ids) for hazard, ids in events_per_type.items()}
    rows = _query(
        settings.warehouse_path,
        """select city_code, event_year, sum(people_affected) from marts.fct_hazard_impacts_yearly
           where source_urn = ? and city_code is not null
           group by all having sum(people_affected) > 0""",
        [urn],
    )
    assert {(c, y): p for c, y, p in rows} == dict(people)

    (row,) = _query(
        settings.warehouse_path,
        """select count(*), count(*) filter (where city_code is null),
                  sum(episode_count), max(latest_episode_id)
           from marts.fct_hazard_events where source_urn = ?""",
        [urn],
    )
    assert row == (
        len(places),
        sum(city is None for _, _, city in places),
        episodes,
        max(episode for episode, _, _ in places.values()),
    )
