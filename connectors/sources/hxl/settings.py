"""HXL 1.1 vocabulary this source understands, kept apart from the parsing so it can grow alone.

Hashtags and attributes follow the HXL hashtag dictionary (hxlstandard.org/standard/1-1final/
dictionary); a token is a letter then letters, digits or "_", compared case-insensitively.
"""

from __future__ import annotations

import re

from connectors.tables import TABLE_SUFFIXES

#: libhxl's rule: the hashtag row is within the first 25 rows ...
HASHTAG_SEARCH_ROWS = 25
#: ... and is the first where more than half of the non-empty cells are hashtags.
HASHTAG_ROW_SHARE = 0.5

TOKEN = r"[A-Za-z][_0-9A-Za-z]*"
#: A tag spec: `#tag` then any number of `+attribute`, spaces allowed between them.
TAGSPEC_RE = re.compile(rf"^\s*#({TOKEN})((?:\s*\+{TOKEN})*)\s*$")
ATTRIBUTE_RE = re.compile(rf"\+({TOKEN})")

#: Columns whose cells are counts of people: each cell becomes one record.
VALUE_TAGS = frozenset({"#affected", "#inneed", "#targeted", "#reached", "#population"})

#: Disaggregation axes: attribute -> value; a column without one is the axis total.
SEX = {"+f": "female", "+m": "male"}
AGE_GROUPS = {
    "+infants": "infants",
    "+children": "children",
    "+adolescents": "adolescents",
    "+adults": "adults",
    "+elderly": "elderly",
}
POPULATION_GROUPS = {
    "+idps": "idps",
    "+refugees": "refugees",
    "+migrants": "migrants",
    "+returnees": "returnees",
}
#: (record field, attribute -> value, value when the column names none of them)
AXES: tuple[tuple[str, dict[str, str], str], ...] = (
    ("sex", SEX, "total"),
    ("age_group", AGE_GROUPS, "all"),
    ("population_group", POPULATION_GROUPS, "all"),
)

#: What the location columns are called in the record: (hashtag, attribute) -> field.
LOCATION_FIELDS = {
    ("#country", "+code"): "country_code",
    ("#adm1", "+name"): "admin1",
    ("#adm1", "+code"): "admin1_code",
    ("#adm2", "+name"): "admin2",
    ("#adm2", "+code"): "admin2_code",
    ("#loc", "+name"): "location",
    ("#loc", "+code"): "location_code",
}
#: Where a UN/LOCODE of one of our cities may be written, in order of preference.
CITY_CODE_FIELDS = ("location_code", "admin2_code")

INPUT_SUFFIXES = TABLE_SUFFIXES
