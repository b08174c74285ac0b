"""GDACS (Global Disaster Alert and Coordination System) hazard events, from GeoJSON feeds.

Inputs are saved feeds (.geojson/.json files, folders of them) or events-API URLs such as
https://www.gdacs.org/gdacsapi/api/events/geteventlist/SEARCH?eventlist=FL;TC;DR&country=BGD
&fromDate=2024-01-01&toDate=2024-12-31. Every feed is parsed before anything is sent (a malformed
one refuses the run); a feature that cannot become an event goes to the dead-letter topic with the
reason. Each episode is placed on the programme city it hits (see `helpers`). Incremental: per
event and place, only episodes later than the last one sent are sent (state saved after Kafka
confirmed them), so a re-run sends nothing and a feed's next episode is sent once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import msgspec

from connectors.events import stable_event_id
from connectors.reference import load_cities
from connectors.sdk import Checkpoint, Record, Refused, Source, Stream
from connectors.sources.common import expand_paths, fetch, input_problems, split_inputs
from connectors.sources.gdacs.helpers import HazardEpisode, parse_feed
from connectors.sources.gdacs.settings import ACCEPT, DEFAULT_RADIUS_KM, INPUT_SUFFIXES

SOURCE_NAME = "gdacs"
TOPIC = "hazard.gdacs.event.v1"
EVENT_TYPE = "org.urbanflow.hazard.event.v1"


class GdacsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """GeoJSON event feeds (files, folders, URLs) and how far from a city an event still hits it."""

    inputs: list[str]
    #: Who publishes the feed: events are sent as `urn:hazard:<feed>` (a partner's GDACS-shaped
    #: feed keeps its own source, so the warehouse never merges it with GDACS's).
    feed: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")] = "gdacs"
    radius_km: Annotated[float, msgspec.Meta(gt=0, le=500)] = DEFAULT_RADIUS_KM
    timeout_s: float = 60.0


EVENTS = Stream(
    name="events",
    topic=TOPIC,
    event_type=EVENT_TYPE,
    key="event (GDACS type + id, e.g. FL1102683)",
    cursor="last episode id sent per event and place (only later episodes are sent)",
)


def source_urn(config: GdacsConfig) -> str:
    return f"urn:hazard:{config.feed}"


def read_feeds(config: GdacsConfig) -> list[HazardEpisode | Refused]:
    """Every input read and parsed, in order; raises on the first malformed feed."""
    paths, urls = split_inputs(config.inputs)
    payloads = [(str(p), p.read_bytes()) for p in expand_paths(paths, INPUT_SUFFIXES)]
    payloads += [(url, fetch(url, ACCEPT, config.timeout_s)[0]) for url in urls]
    cities = load_cities()
    return [
        item
        for origin, payload in payloads
        for item in parse_feed(payload, origin, cities, config.radius_km)
    ]


class GdacsSource(Source):
    name = SOURCE_NAME
    description = "GDACS hazard events (GeoJSON feeds or events-API URLs), placed on our cities"
    config = GdacsConfig
    streams = (EVENTS,)

    def check(self, config: GdacsConfig) -> list[str]:
        return input_problems(config.inputs, ACCEPT, config.timeout_s)

    def read(self, config: GdacsConfig, state: dict) -> Iterator[Record | Refused | Checkpoint]:
        """Parse every feed first; then refusals, then each event's new episodes in order."""
        items = read_feeds(config)
        yield from (i.replace(stream=EVENTS) for i in items if isinstance(i, Refused))
        source = source_urn(config)
        sent: dict[str, int] = dict(state.get("episodes", {}))
        episodes = sorted(
            (i for i in items if isinstance(i, HazardEpisode)),
            key=lambda e: (e.cursor_key, e.episode_id),
        )
        for episode in episodes:
            if episode.episode_id <= sent.get(episode.cursor_key, 0):
                continue
            sent[episode.cursor_key] = episode.episode_id
            yield Record(
                stream=EVENTS,
                key=episode.event_key,
                source=source,
                event_id=stable_event_id(source, episode.data),
                data=episode.data,
                subject=episode.place,
                time=episode.data.get("modified_time", episode.data["to_time"]),
            )
        yield Checkpoint({"episodes": sent})


SOURCE = GdacsSource()
