"""SDMX wire constants and format detection, kept apart so the parsers stay free of HTTP details."""

from __future__ import annotations

from functools import cache
from pathlib import PurePosixPath
from typing import Literal

SdmxFormat = Literal["json", "csv", "xml"]

#: What we ask an SDMX 3.0 REST endpoint for (one media type each, so callers can add q-values).
JSON_MEDIA_TYPE = "application/vnd.sdmx.data+json;version=2.0.0"
CSV_MEDIA_TYPE = "application/vnd.sdmx.data+csv;version=2.0.0"
XML_MEDIA_TYPE = "application/vnd.sdmx.data+xml;version=3.0.0"
ACCEPT_HEADERS: dict[SdmxFormat, str] = {
    "json": JSON_MEDIA_TYPE,
    "csv": CSV_MEDIA_TYPE,
    "xml": XML_MEDIA_TYPE,
}
#: What we ask a named agency for: SDMX-ML 2.1 generic data, which every agency in sdmx1's list
#: serves and which, unlike structure-specific data, needs no DSD to read.
REST_ACCEPT = "application/vnd.sdmx.genericdata+xml;version=2.1, application/xml;q=0.5"

#: What we ask for a DSD or dataflow a structure-specific message needs (SDMX-ML structure 2.1 or
#: 3.0, which sdmx1 both reads).
STRUCTURE_ACCEPT = (
    "application/vnd.sdmx.structure+xml;version=2.1, "
    "application/vnd.sdmx.structure+xml;version=3.0.0;q=0.9, application/xml;q=0.5"
)

#: Media types (without parameters) whose body each parser accepts.
JSON_MEDIA_TYPES = frozenset({"application/vnd.sdmx.data+json", "application/json", "text/json"})
CSV_MEDIA_TYPES = frozenset({"application/vnd.sdmx.data+csv", "text/csv", "application/csv"})
XML_MEDIA_TYPES = frozenset({"application/xml", "text/xml"})

_EXTENSIONS: dict[str, SdmxFormat] = {".json": "json", ".csv": "csv", ".xml": "xml"}


def detect_format(name_or_content_type: str, head: bytes) -> SdmxFormat:
    """Pick the parser from a media type or file name; sniff the body when neither says.

    Servers often answer with a generic type and files arrive without extensions, so the first
    non-blank byte decides last: an SDMX-JSON message is an object, SDMX-ML starts with `<`,
    SDMX-CSV with a header.
    """
    media_type = name_or_content_type.split(";", 1)[0].strip().lower()
    if media_type in JSON_MEDIA_TYPES or media_type.endswith("+json"):
        return "json"
    if media_type in CSV_MEDIA_TYPES or media_type.endswith("+csv"):
        return "csv"
    if media_type in XML_MEDIA_TYPES or media_type.endswith("+xml"):
        return "xml"
    suffix = PurePosixPath(name_or_content_type.split("?", 1)[0]).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if body.startswith(b"{"):
        return "json"
    return "xml" if body.startswith(b"<") else "csv"


@cache
def known_agencies() -> tuple[str, ...]:
    """The agency ids sdmx1 knows the REST endpoints of (ECB, ESTAT, UNICEF, ...)."""
    import sdmx

    return tuple(sdmx.list_sources())


def agency_data_url(agency: str, flow: str, key: str = "", updated_after: str | None = None) -> str:
    """The SDMX REST data query for `flow` at `agency`, built by sdmx1 from its agency list
    (no request is sent); `updated_after` asks only for what changed since then."""
    import sdmx

    params = {"updatedAfter": updated_after} if updated_after else {}
    request = sdmx.Client(agency).get("data", flow, key=key or None, params=params, dry_run=True)
    return str(request.url)


def service_root(data_url: str) -> str | None:
    """The SDMX REST service a data query went to: everything before its `/data/` resource."""
    root, found, _ = data_url.partition("/data/")
    return root if found and root.startswith(("http://", "https://")) else None


def structure_url(service: str, kind: Literal["dataflow", "datastructure"], reference: str) -> str:
    """The REST query for a dataflow (with its DSD: `references=datastructure`) or a DSD, given
    as AGENCY:ID(VERSION), at `service`; built by sdmx1 (no request is sent)."""
    import sdmx
    from sdmx.source import Source

    agency, _, rest = reference.partition(":")
    identifier, _, version = rest.rstrip(")").partition("(")
    client = sdmx.Client()
    client.source = Source(id="URBANFLOW_SERVICE", url=service, name=service)
    params = {"references": "datastructure"} if kind == "dataflow" else {}
    request = client.get(
        kind, identifier, agency_id=agency, version=version, params=params, dry_run=True
    )
    return str(request.url)
