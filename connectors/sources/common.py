"""Helpers every pull source shares: its inputs (files, folders, URLs) and HTTP fetches.

Kept here once so the sources cannot drift apart in how they find and fetch what they read;
observations and paged APIs have their own module, `connectors.sources.observations`.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from connectors.errors import SourceFormatError

#: A decimal number as text (no thousands separators, no NaN/Infinity spellings).
NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


def split_inputs(inputs: Iterable[str]) -> tuple[list[Path], list[str]]:
    """(local paths, http(s) URLs) from a source's `inputs`."""
    inputs = list(inputs)
    urls = [i for i in inputs if i.startswith(("http://", "https://"))]
    return [Path(i) for i in inputs if i not in urls], urls


def expand_paths(paths: Iterable[Path], suffixes: tuple[str, ...]) -> list[Path]:
    """Files as given; directories contribute their files with `suffixes`, in name order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes))
        elif path.is_file():
            files.append(path)
        else:
            raise SourceFormatError(str(path), "no such file or directory")
    return files


def fetch(url: str, accept: str, timeout_s: float = 60.0) -> tuple[bytes, str]:
    """(body, Content-Type) of a GET; any network or HTTP failure names the URL."""
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read(), response.headers.get("Content-Type", "")
    except (urllib.error.URLError, TimeoutError) as exc:
        raise SourceFormatError(url, f"could not fetch: {exc}") from None


def with_query(url: str, **params: object) -> str:
    """`url` with these query parameters set (added, or replacing the same names)."""
    parts = urllib.parse.urlsplit(url)
    query = [
        (k, v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if k not in params
    ]
    query += [(k, str(v)) for k, v in params.items()]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, safe=";:,")))


def input_problems(inputs: list[str], accept: str, timeout_s: float) -> list[str]:
    """A source's `check`: inputs given, local ones present, URLs answering."""
    if not inputs:
        return ["no inputs: give files, folders or URLs"]
    paths, urls = split_inputs(inputs)
    problems = [f"{p}: no such file or directory" for p in paths if not p.exists()]
    for url in urls:
        try:
            fetch(url, accept, timeout_s)
        except SourceFormatError as exc:
            problems.append(str(exc))
    return problems
