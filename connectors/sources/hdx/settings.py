"""HDX (data.humdata.org) as CKAN serves it: the action API and the resource fields we read.

HDX runs CKAN: `package_show?id=<dataset name or id>` answers `{"success": true, "result": {...}}`
with the dataset's `organization` and `resources`; each resource has an `id`, a `name`, a `url`
(the download link), `last_modified` (when its file last changed, else `metadata_modified`) and
`is_hxl` (HDX found HXL hashtags in it). A failed call answers `{"success": false, "error":
{"__type": ..., "message": ...}}`, usually with an HTTP error status.
"""

from __future__ import annotations

import re

DEFAULT_API_URL = "https://data.humdata.org/api/3/action"
#: An HDX dataset page, whose last path segment names the dataset: .../dataset/<name>
DATASET_URL_RE = re.compile(r"^https?://[^/]+/dataset/([^/?#]+)/?(?:[?#].*)?$")
#: A CKAN dataset name or id (names: lower-case letters, digits, "-" and "_"; ids are UUIDs).
DATASET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
#: The resource's file time first; CKAN's metadata time when the file has none.
MODIFIED_FIELDS = ("last_modified", "metadata_modified")
API_ACCEPT = "application/json"
#: The largest file a resource may be (bytes): HXL resources are tables of a few MB at most,
#: and a larger download is more likely a mistake than a dataset.
MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024
