"""IATI 2.03 code lists and wire constants the parser needs, kept apart from the parsing logic.

Names come from the IATI code lists (iatistandard.org, version 2.03). Codes outside these lists
are kept as sent with a null name: non-embedded lists grow between versions of the standard.
"""

from __future__ import annotations

import re

#: What we ask an HTTP server for when an input is a URL.
ACCEPT_HEADER = "application/xml, text/xml;q=0.9, */*;q=0.1"

#: The file suffix a folder's IATI files carry.
XML_SUFFIX = ".xml"

#: The IATI Datastore v3 activity collection (Solr behind IATI's API gateway), the header that
#: carries the gateway's subscription key, and the input that asks for it (`datastore.py`).
DATASTORE_URL = "https://api.iatistandard.org/datastore/activity/select"
DATASTORE_KEY_HEADER = "Ocp-Apim-Subscription-Key"
DATASTORE_INPUT = "datastore:"

#: The error class of an activity refused for its content (the dead letter's uf.error.class).
INVALID_ACTIVITY = "invalid_activity"

#: TransactionType (embedded code list; 12 and 13 are new in 2.03).
TRANSACTION_TYPES: dict[str, str] = {
    "1": "Incoming Funds",
    "2": "Outgoing Commitment",
    "3": "Disbursement",
    "4": "Expenditure",
    "5": "Interest Payment",
    "6": "Loan Repayment",
    "7": "Reimbursement",
    "8": "Purchase of Equity",
    "9": "Sale of Equity",
    "10": "Credit Guarantee",
    "11": "Incoming Commitment",
    "12": "Outgoing Pledge",
    "13": "Incoming Pledge",
}

#: ResultType.
RESULT_TYPES: dict[str, str] = {"1": "Output", "2": "Outcome", "3": "Impact", "9": "Other"}

#: IndicatorMeasure (3, 4 and 5 are new in 2.03).
INDICATOR_MEASURES: dict[str, str] = {
    "1": "Unit",
    "2": "Percentage",
    "3": "Nominal",
    "4": "Ordinal",
    "5": "Qualitative",
}

#: Measures whose values must be numbers; the others may carry text (or no value at all).
NUMERIC_MEASURES = frozenset({"1", "2"})

#: ActivityStatus.
ACTIVITY_STATUSES: dict[str, str] = {
    "1": "Pipeline/identification",
    "2": "Implementation",
    "3": "Finalisation",
    "4": "Closed",
    "5": "Cancelled",
    "6": "Suspended",
}

#: ActivityDateType code -> the key it gets in the event's `dates`.
ACTIVITY_DATE_KEYS: dict[str, str] = {
    "1": "planned_start",
    "2": "actual_start",
    "3": "planned_end",
    "4": "actual_end",
}

#: `dimension/@name` values that mean sex, and the `@value`s we map to our sex codes.
SEX_DIMENSION_NAMES = frozenset({"sex", "gender"})
SEX_VALUES: dict[str, str] = {
    "female": "female",
    "f": "female",
    "women": "female",
    "male": "male",
    "m": "male",
    "men": "male",
    "total": "total",
    "all": "total",
}

#: A UN/LOCODE (country + 3 characters), the code `ref_cities` keys cities by, e.g. KENBO.
CITY_CODE_RE = re.compile(r"^[A-Z]{2}[A-Z2-9]{3}$")

#: Default SectorVocabulary when a sector has none: 1 = OECD DAC CRS purpose codes (5 digit).
DEFAULT_SECTOR_VOCABULARY = "1"
