"""HDX's CKAN answers to the resources worth reading, and HTTP that names what failed.

Pure functions over bytes (parse `package_show`, pick the HXL resources, compare modification
times), plus one GET that turns every way the network, the server or a CKAN error can fail into a
`SourceFormatError` naming the URL and the problem.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPException
from typing import Any

import orjson

from connectors.errors import SourceFormatError
from connectors.sources.hdx.settings import (
    DATASET_NAME_RE,
    DATASET_URL_RE,
    MAX_DOWNLOAD_BYTES,
    MODIFIED_FIELDS,
)


class HttpStatusError(SourceFormatError):
    """The server answered with an error status (kept, so a gone resource can be told apart)."""

    def __init__(self, origin: str, status: int, message: str):
        super().__init__(origin, message)
        self.status = status


@dataclass(frozen=True)
class HdxResource:
    """One HXL resource of an HDX dataset, as `package_show` lists it."""

    dataset: str  # the dataset's name
    organization: str  # the publishing organisation's name (slug)
    id: str
    name: str
    url: str
    modified: str  # ISO 8601 as CKAN sent it, "" when it sent none

    @property
    def label(self) -> str:
        """`<dataset>/<resource name>`: the records' dataset name and message key."""
        return f"{self.dataset}/{self.name or self.id}"[:300]

    def metadata(self) -> bytes:
        """What a dead letter carries: enough to find the resource on HDX again."""
        return orjson.dumps(
            {
                "dataset": self.dataset,
                "organization": self.organization,
                "resource_id": self.id,
                "resource_name": self.name,
                "url": self.url,
                "modified": self.modified,
            }
        )


def dataset_id(text: str) -> str:
    """A dataset's name or id from an input: the name itself or an HDX dataset page URL."""
    value = text.strip()
    if match := DATASET_URL_RE.match(value):
        value = urllib.parse.unquote(match[1])
    if not DATASET_NAME_RE.match(value):
        raise SourceFormatError(
            text, "not an HDX dataset name, id or https://.../dataset/<name> page URL"
        )
    return value


def get(url: str, accept: str, timeout_s: float, token: str | None = None) -> bytes:
    """A GET's body, at most MAX_DOWNLOAD_BYTES; any failure names the URL (a CKAN error's own
    message when the server sent one)."""
    headers = {"Accept": accept, "User-Agent": "urbanflow-hdx"}
    if token:
        headers["Authorization"] = token
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read(MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise HttpStatusError(url, exc.code, f"HTTP {exc.code}{_ckan_error(exc)}") from None
    except (OSError, HTTPException, ValueError) as exc:  # URLError, timeouts, resets, bad URLs
        reason = getattr(exc, "reason", None) or exc
        raise SourceFormatError(url, f"could not fetch: {' '.join(str(reason).split())}") from None
    if len(body) > MAX_DOWNLOAD_BYTES:
        raise SourceFormatError(url, f"larger than {MAX_DOWNLOAD_BYTES:,} bytes; not downloaded")
    return body


def _ckan_error(exc: urllib.error.HTTPError) -> str:
    """`: Not Found Error: Not found` from a CKAN error body, "" when there is none."""
    try:
        error = orjson.loads(exc.read(65536)).get("error") or {}
        text = f"{error.get('__type', '')}: {error.get('message', '')}".strip(": ")
    except Exception:  # any body at all may come with an error status
        return f" {exc.reason}" if exc.reason else ""
    return f": {' '.join(text.split())[:300]}" if text else ""


def _text(node: dict[str, Any], name: str) -> str:
    value = node.get(name)
    return value.strip() if isinstance(value, str) else ""


def _is_hxl(resource: dict[str, Any]) -> bool:
    flag = resource.get("is_hxl")
    return flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")


def hxl_resources(payload: bytes, origin: str) -> list[HdxResource]:
    """The HXL resources (`is_hxl`) of one `package_show` answer; refuses one that is not a
    successful CKAN answer with a dataset."""
    try:
        answer = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise SourceFormatError(origin, f"not a CKAN API answer (not JSON: {exc})") from None
    if not isinstance(answer, dict) or answer.get("success") is not True:
        error = answer.get("error") if isinstance(answer, dict) else None
        message = (
            f"{error.get('__type', '')}: {error.get('message', '')}".strip(": ")
            if isinstance(error, dict)
            else ""
        )
        raise SourceFormatError(
            origin, f"package_show did not succeed{': ' + message[:300] if message else ''}"
        )
    result = answer.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("resources"), list):
        raise SourceFormatError(origin, "package_show answered no dataset with a resources list")
    name = _text(result, "name") or _text(result, "id")
    if not name:
        raise SourceFormatError(origin, "package_show answered a dataset without a name or id")
    organization = result.get("organization")
    org = _text(organization, "name") if isinstance(organization, dict) else ""
    found = []
    for resource in result["resources"]:
        if not isinstance(resource, dict) or not _is_hxl(resource):
            continue
        modified = next((_text(resource, f) for f in MODIFIED_FIELDS if _text(resource, f)), "")
        found.append(
            HdxResource(
                dataset=name,
                organization=org or name,
                id=_text(resource, "id"),
                name=_text(resource, "name"),
                url=_text(resource, "download_url") or _text(resource, "url"),
                modified=modified,
            )
        )
    return found


def modified_time(text: str) -> datetime | None:
    """CKAN's ISO 8601 time (naive means UTC), None when absent or unreadable."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def is_newer(resource: HdxResource, sent: str | None) -> bool:
    """Whether `resource` changed since the modification time last sent: a resource never sent,
    or one whose time is missing or unreadable on either side, is read (its content hash then
    decides whether anything is sent)."""
    if sent is None:
        return True
    now, before = modified_time(resource.modified), modified_time(sent)
    if now is None or before is None:
        return True
    return now > before
