"""The GDACS event feed's vocabulary (gdacs.org events API, GeoJSON), kept apart from the parsing.

A feed is a GeoJSON FeatureCollection; each Feature is one episode of one event, its `properties`
named as GDACS names them (`eventtype`, `eventid`, `episodeid`, `alertlevel`, `fromdate` ...).
"""

from __future__ import annotations

#: GDACS event types, plus HW: GDACS does not alert on heat waves, but partners publish them in
#: the same GeoJSON shape, so they travel through the same contract.
HAZARD_TYPES = {
    "FL": "flood",
    "TC": "tropical cyclone",
    "DR": "drought",
    "EQ": "earthquake",
    "WF": "wildfire",
    "VO": "volcano",
    "HW": "heat wave",
}
ALERT_LEVELS = ("green", "orange", "red")

#: `sendai` entries (authority-reported impacts GDACS attaches to an episode) that count people
#: affected; deaths, displaced, injured ... are other figures.
AFFECTED_SENDAI_NAME = "affected"

#: The property an enriched feed (our sample world, partners' feeds) names a city in: a UN/LOCODE
#: of ref_cities. GDACS's own feed has only coordinates, matched to the nearest city instead.
CITY_CODE_PROPERTY = "city_code"

#: A point farther than this from every programme city stays at country level (km): about a
#: metropolitan area, and less than the 49 km between our two closest cities (Kitwe, Ndola).
DEFAULT_RADIUS_KM = 30.0
EARTH_RADIUS_KM = 6371.0088

INPUT_SUFFIXES = (".geojson", ".json")
ACCEPT = "application/geo+json, application/json;q=0.9"
