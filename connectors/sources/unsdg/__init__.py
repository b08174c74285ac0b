"""UN SDG API (unstats.un.org/SDGAPI v1) series data, from saved pages or a Series/Data URL.

Files are single pages; a URL such as
https://unstats.un.org/SDGAPI/v1/sdg/Series/Data?seriesCode=EN_LND_SLUM&pageSize=500
is followed page by page to `totalPages`. Every page is parsed before anything is sent, then
each new or revised observation is sent once (state saved after Kafka confirmed it).
"""

from __future__ import annotations

from connectors.sources.observations import (
    ApiConfig,
    Dataflow,
    ObservationPage,
    PagedObservationSource,
    observation_stream,
)
from connectors.sources.unsdg.helpers import parse_sdg_page

TOPIC = "stats.unsdg.observation.v1"


class UnSdgConfig(ApiConfig):
    """Saved Series/Data pages (.json files or folders) and SDG API Series/Data URLs."""

    dataflow: Dataflow = "UNSD:DF_SDG_GLH(1.0)"


OBSERVATIONS = observation_stream(TOPIC, key="series key (SERIES.M49 area.other dimensions)")


class UnSdgSource(PagedObservationSource):
    name = "unsdg"
    description = "UN SDG API v1: SDG series observations (saved Series/Data pages or URLs)"
    config = UnSdgConfig
    streams = (OBSERVATIONS,)
    source_urn = "urn:nso:unsd"

    def parse_page(self, payload: bytes, origin: str, dataflow: str) -> ObservationPage:
        return parse_sdg_page(payload, origin, dataflow)


SOURCE = UnSdgSource()
