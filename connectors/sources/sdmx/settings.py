"""SDMX wire constants and format detection, kept apart so the parsers stay free of HTTP details."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal

SdmxFormat = Literal["json", "csv"]

#: What we ask an SDMX 3.0 REST endpoint for (one media type each, so callers can add q-values).
JSON_MEDIA_TYPE = "application/vnd.sdmx.data+json;version=2.0.0"
CSV_MEDIA_TYPE = "application/vnd.sdmx.data+csv;version=2.0.0"
ACCEPT_HEADERS: dict[SdmxFormat, str] = {"json": JSON_MEDIA_TYPE, "csv": CSV_MEDIA_TYPE}

#: Media types (without parameters) whose body each parser accepts.
JSON_MEDIA_TYPES = frozenset({"application/vnd.sdmx.data+json", "application/json", "text/json"})
CSV_MEDIA_TYPES = frozenset({"application/vnd.sdmx.data+csv", "text/csv", "application/csv"})

_EXTENSIONS: dict[str, SdmxFormat] = {".json": "json", ".csv": "csv"}


def detect_format(name_or_content_type: str, head: bytes) -> SdmxFormat:
    """Pick the parser from a media type or file name; sniff the body when neither says.

    Servers often answer with a generic type and files arrive without extensions, so the first
    non-blank byte decides last: an SDMX-JSON message is an object, SDMX-CSV starts with a header.
    """
    media_type = name_or_content_type.split(";", 1)[0].strip().lower()
    if media_type in JSON_MEDIA_TYPES or media_type.endswith("+json"):
        return "json"
    if media_type in CSV_MEDIA_TYPES or media_type.endswith("+csv"):
        return "csv"
    suffix = PurePosixPath(name_or_content_type.split("?", 1)[0]).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return "json" if body.startswith(b"{") else "csv"
