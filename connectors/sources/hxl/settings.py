"""HXL 1.1 vocabulary this source understands, kept apart from the parsing so it can grow alone.

Hashtags and attributes follow the HXL hashtag dictionary (hxlstandard.org/standard/1-1final/
dictionary); a token is a letter then letters, digits or "_", compared case-insensitively.
"""

from __future__ import annotations

import re

from hxl.model import FUZZY_HASHTAG_PERCENTAGE

#: libhxl's rule (hxl.input.HXLReader): the hashtag row is within the first 25 rows ...
HASHTAG_SEARCH_ROWS = 25
#: ... and is the first where at least half of the non-empty cells parse as hashtags.
HASHTAG_ROW_SHARE = FUZZY_HASHTAG_PERCENTAGE

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

#: What a folder contributes (a file named outright is read whatever its name): the formats libhxl
#: reads, CSV and TSV, XLSX, XLS, JSON arrays of rows or of objects.
INPUT_SUFFIXES = (".csv", ".tsv", ".xlsx", ".xls", ".json")
ACCEPT = (
    "text/csv, application/vnd.openxmlformats-officedocument.spreadsheetml.sheet;q=0.9, "
    "application/vnd.ms-excel;q=0.8, application/json;q=0.8"
)

#: A workbook (a zip) whose members would expand past this is refused before anything unzips it:
#: zip bombs end there, and a real HXL sheet is far smaller.
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024
#: A workbook may not pack more members than this (a sheet, its styles, strings ...).
MAX_ZIP_MEMBERS = 10_000
#: A `<dimension ref=...>` libhxl's XLSX reader (xlrd3) can use: cells A1 .. XFD1048576. Writers
#: get it wrong; a wrong but well-formed one is harmless (the cells are read, not the hint), a
#: malformed one is dropped before libhxl sees the sheet.
DIMENSION_REF_RE = re.compile(r"^([A-Z]{1,3})([1-9][0-9]{0,6})(?::([A-Z]{1,3})([1-9][0-9]{0,6}))?$")
MAX_SHEET_COLUMNS = 16_384
MAX_SHEET_ROWS = 1_048_576

#: Tried in order on a CSV that has no byte-order mark: libhxl 5.2 decodes every CSV as UTF-8 and
#: replaces what is not (a Latin-1 "Région" becomes "R\ufffdgion"), so the encoding is found first.
#: cp1252 is Excel's "CSV" on Western-European Windows; Latin-1 decodes any byte, so it is last.
TEXT_ENCODINGS = ("utf-8", "cp1252", "latin-1")
#: Byte-order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one).
BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
