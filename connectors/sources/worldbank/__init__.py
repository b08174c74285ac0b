"""World Bank Indicators API v2 (WDI and other databases), from saved pages or an API URL.

Files are single pages; a URL such as
https://api.worldbank.org/v2/country/KEN;UGA/indicator/EN.POP.SLUM.UR.ZS?per_page=1000
is followed page by page to `pages`. Every page is parsed before anything is sent, then each
new or revised observation is sent once (state saved after Kafka confirmed it).
"""

from __future__ import annotations

from connectors.sources.common import with_query
from connectors.sources.observations import (
    ApiConfig,
    Dataflow,
    ObservationPage,
    PagedObservationSource,
    observation_stream,
)
from connectors.sources.worldbank.helpers import parse_worldbank_page

TOPIC = "stats.worldbank.observation.v1"


class WorldBankConfig(ApiConfig):
    """Saved API pages (.json files or folders) and API URLs."""

    dataflow: Dataflow = "WB:WDI(1.0)"


OBSERVATIONS = observation_stream(TOPIC, key="series key (indicator.ISO3)")


class WorldBankSource(PagedObservationSource):
    name = "worldbank"
    description = "World Bank Indicators API v2: indicator observations (saved pages or API URLs)"
    config = WorldBankConfig
    streams = (OBSERVATIONS,)
    source_urn = "urn:nso:worldbank"
    skipped_means = "aggregate rows (regions, income groups: no ISO3 code)"

    def parse_page(self, payload: bytes, origin: str, dataflow: str) -> ObservationPage:
        return parse_worldbank_page(payload, origin, dataflow)

    def api_inputs(self, inputs: list[str]) -> list[str]:
        """API URLs get format=json: without it the API answers XML."""
        return [
            with_query(i, format="json") if i.startswith(("http://", "https://")) else i
            for i in inputs
        ]


SOURCE = WorldBankSource()
