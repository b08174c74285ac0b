"""GDACS GeoJSON feeds: parsing, placing on cities, dead letters with reasons, episode cursor."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from local_http import serve

from connectors.contracts import get_contract
from connectors.errors import ConfigError, SourceFormatError
from connectors.reference import load_cities
from connectors.sdk import Checkpoint, Record, Refused, load_config
from connectors.sources import gdacs
from connectors.sources.gdacs.helpers import HazardEpisode, nearest_city, parse_feed
from connectors.sources.registry import all_sources

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gdacs"
GOOD = FIXTURES / "gdacs_events_bgd_2024.geojson"
BAD = FIXTURES / "gdacs_bad_features.geojson"
CITIES = load_cities()
BY_CODE = {city.code: city for city in CITIES}


def _parse(path: Path, radius_km: float = 30.0) -> list:
    return parse_feed(path.read_bytes(), path.name, CITIES, radius_km)


def _read(inputs: list[str], state: dict | None = None, **settings) -> list:
    config = load_config("gdacs", gdacs.GdacsConfig, overrides={"inputs": inputs, **settings})
    return list(gdacs.SOURCE.read(config, state or {}))


def _feature(**properties) -> bytes:
    """A one-feature feed near Nairobi with `properties` over a valid flood's."""
    base = {
        "eventtype": "FL",
        "eventid": 1102800,
        "episodeid": 1,
        "alertlevel": "Green",
        "fromdate": "2024-04-01T00:00:00",
        "todate": "2024-04-03T00:00:00",
        "iso3": "KEN",
    }
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [36.82, -1.29]},
        "properties": {**base, **properties},
    }
    return orjson.dumps({"type": "FeatureCollection", "features": [feature]})


def test_source_is_discovered_by_the_registry_with_its_topic_and_contract():
    source = all_sources()["gdacs"]

    assert [(s.topic, s.event_type) for s in source.streams] == [
        ("hazard.gdacs.event.v1", "org.urbanflow.hazard.event.v1")
    ]


def test_flood_episode_is_placed_on_the_nearest_city_with_its_latest_people_affected():
    first, second, *_ = _parse(GOOD)

    assert second == HazardEpisode(
        event_key="FL1102683",
        place="BDDAC",
        episode_id=2,
        data={
            "hazard_type": "FL",
            "hazard_event_id": 1102683,
            "episode_id": 2,
            "name": "Flood in Bangladesh",
            "alert_level": "orange",
            "alert_score": 2.0,
            "from_time": "2024-06-18T00:00:00Z",
            "to_time": "2024-07-02T00:00:00Z",
            "modified_time": "2024-07-02T09:30:00Z",
            "country_iso3": "BGD",
            "city_code": "BDDAC",
            "place_match": "nearest_city",
            "distance_km": 3.6,
            "latitude": 23.78,
            "longitude": 90.4,
            "people_affected": 250000,
            "severity": 2.0,
            "severity_text": "Magnitude 2.0",
            "glide": "FL-2024-000101-BGD",
        },
    )
    # Superseded sendai entries (latest: false) and other impacts (deaths) are not counted.
    assert first.data["people_affected"] == 120000


def test_every_good_episode_satisfies_the_contract():
    contract = get_contract(gdacs.EVENT_TYPE)
    episodes = [i for i in _parse(GOOD) + _parse(BAD) if isinstance(i, HazardEpisode)]

    assert len(episodes) == 5
    for episode in episodes:
        contract.validate_data(episode.data)


def test_point_far_from_every_city_stays_at_country_level_and_a_city_code_wins_over_it():
    _, _, at_sea, named = _parse(GOOD)

    assert (at_sea.place, at_sea.data["city_code"], at_sea.data["place_match"]) == (
        "BGD",
        None,
        "country",
    )
    assert at_sea.data["people_affected"] is None  # not reported, not zero
    assert (named.place, named.data["place_match"], named.data["people_affected"]) == (
        "BDCGP",
        "city_code",
        45000,
    )


def test_a_smaller_radius_keeps_the_same_point_at_country_level():
    episode = _parse(GOOD, radius_km=2.0)[0]

    assert (episode.data["city_code"], episode.data["place_match"]) == (None, "country")


def test_nearest_city_is_sought_only_in_the_event_countries():
    (in_uganda,) = parse_feed(_feature(iso3="UGA"), "feed", CITIES, 30.0)

    assert (in_uganda.data["city_code"], in_uganda.data["country_iso3"]) == (None, "UGA")


def test_nearest_city_picks_the_closer_of_two_neighbours_within_the_radius():
    kitwe, ndola = BY_CODE["ZMKIW"], BY_CODE["ZMNLA"]
    between = (
        kitwe.latitude * 0.7 + ndola.latitude * 0.3,
        kitwe.longitude * 0.7 + ndola.longitude * 0.3,
    )

    city, distance = nearest_city(*between, CITIES, 30.0)

    assert city.code == "ZMKIW" and 14 < distance < 15
    assert nearest_city(*between, [ndola], 30.0) is None  # 34 km: beyond the radius


@pytest.mark.parametrize(
    ("index", "reason"),
    [
        (0, "eventtype 'XX' is not one of FL, TC, DR, EQ, WF, VO, HW"),
        (1, "eventid 'abc' is not a positive whole number"),
        (2, "alertlevel 'Purple' is not Green, Orange or Red"),
        (3, "todate '2024-04-02T00:00:00' is before fromdate '2024-04-05T00:00:00'"),
        (4, "fromdate 'yesterday' is not a date-time"),
        (5, "city_code 'ZZZZZ' is not one of our cities"),
        (6, "sendai affected value '12,4OO' is not a count"),
        (7, "no city_code, no point within 30 km of one of our cities and no iso3 country"),
        (8, "geometry coordinates [200, 10] are not a [longitude, latitude]"),
        (9, "not a GeoJSON Feature with properties"),
        (10, "city_code KEMBA is in KEN, not in the event's countries (BGD)"),
    ],
)
def test_each_kind_of_bad_feature_is_a_dead_letter_naming_file_feature_and_reason(index, reason):
    item = _parse(BAD)[index]

    assert item.reason.startswith(f"{BAD.name}: features[{index}] (")
    assert item.reason.endswith(f"): {reason}")
    assert orjson.loads(item.payload) == orjson.loads(BAD.read_bytes())["features"][index]


def test_bad_features_go_to_the_dlq_and_the_good_one_in_the_same_feed_still_loads():
    items = _read([str(BAD)])

    rejected = [i for i in items if isinstance(i, Refused)]
    records = [i for i in items if isinstance(i, Record)]
    assert len(rejected) == 11 and {r.stream.topic for r in rejected} == {gdacs.TOPIC}
    assert [(r.key, r.data["city_code"], r.data["people_affected"]) for r in records] == [
        ("FL1102706", "KENBO", 31000)
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "not JSON"),
        (b'{"type": "Feature", "properties": {}}', "not a GeoJSON FeatureCollection"),
        (b'{"type": "FeatureCollection", "features": {}}', "not a GeoJSON FeatureCollection"),
    ],
)
def test_malformed_feed_is_refused_whole_naming_the_file(tmp_path, payload, message):
    path = tmp_path / "broken.geojson"
    path.write_bytes(payload)

    with pytest.raises(SourceFormatError, match=f"broken.geojson: {message}"):
        _read([str(path)])


def test_records_are_keyed_by_event_with_urn_subject_and_episode_time():
    records = [i for i in _read([str(GOOD)]) if isinstance(i, Record)]

    assert [(r.key, r.subject, r.data["episode_id"]) for r in records] == [
        ("FL1102683", "BDDAC", 1),
        ("FL1102683", "BDDAC", 2),
        ("TC1000950", "BDCGP", 3),
        ("TC1000950", "BGD", 3),
    ]
    assert {r.source for r in records} == {"urn:hazard:gdacs"}
    assert records[1].time == "2024-07-02T09:30:00Z"  # datemodified, else todate
    assert records[2].time == "2024-05-27T12:00:00Z"


def _served(payload: bytes, state: dict) -> list:
    """The source reading `payload` from a real HTTP URL."""
    with serve(lambda path, query: (200, "application/geo+json", payload)) as (base, _):
        return _read([f"{base}/gdacsapi/api/events/geteventlist/SEARCH"], state)


def test_rerun_sends_nothing_and_a_later_episode_is_sent_alone():
    first = _read([str(GOOD)])
    state = first[-1].state

    assert isinstance(first[-1], Checkpoint)
    assert state == {"episodes": {"FL1102683|BDDAC": 2, "TC1000950|BDCGP": 3, "TC1000950|BGD": 3}}
    assert [i for i in _read([str(GOOD)], state) if not isinstance(i, Checkpoint)] == []

    feed = orjson.loads(GOOD.read_bytes())
    flood = feed["features"][1]
    feed["features"].append({**flood, "properties": {**flood["properties"], "episodeid": 3}})
    later = _served(orjson.dumps(feed), state)

    assert [(r.key, r.data["episode_id"]) for r in later if isinstance(r, Record)] == [
        ("FL1102683", 3)
    ]
    assert later[-1].state["episodes"]["FL1102683|BDDAC"] == 3


def test_feed_is_read_from_an_events_api_url():
    payload = GOOD.read_bytes()
    with serve(lambda path, query: (200, "application/json", payload)) as (base, requests):
        url = f"{base}/gdacsapi/api/events/geteventlist/SEARCH?eventlist=FL;TC&country=BGD"
        items = _read([url])

    assert requests == ["/gdacsapi/api/events/geteventlist/SEARCH?eventlist=FL;TC&country=BGD"]
    assert sum(isinstance(i, Record) for i in items) == 4


def test_unreachable_url_is_a_check_problem_before_anything_moves():
    config = load_config(
        "gdacs", gdacs.GdacsConfig, overrides={"inputs": ["http://127.0.0.1:9/feed"]}
    )

    (problem,) = gdacs.SOURCE.check(config)
    assert problem.startswith("http://127.0.0.1:9/feed: could not fetch")


@pytest.mark.parametrize(("key", "value"), [("radius_km", 0), ("feed", "Not A Slug")])
def test_bad_settings_are_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        load_config("gdacs", gdacs.GdacsConfig, overrides={"inputs": [str(GOOD)], key: value})
