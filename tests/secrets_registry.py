"""Every secret the test suite creates, and the scan that proves none of them reached a log.

A fixture or test that creates a secret (a partner's API key, an admin password, a generated
secret file) registers it with one line; tests/conftest.py keeps every test's captured output and
error text; tests/reliability/test_secret_scan.py runs last and scans them and every log-like
file of the run for each registered value. The registry is a module-level list because the scan
runs in the same pytest process as the tests that fill it.

Only log-like files are read (`is_log_file`): *.log, *.jsonl, *.out, *.err, stdout/stderr
captures and anything under a `logs/` folder (Airflow task logs). A password file, the partners
database or Superset's metadata hold their secrets on purpose and are not logs; Kafka's segment
files (`00000000000000000000.log`) are topic data, not logs, and are skipped too. A leak is
reported by file and line with the secret masked, never printed.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: Shorter values would match by chance (and are not secrets worth the name).
MIN_SECRET_CHARS = 8
LOG_SUFFIXES = frozenset({".log", ".jsonl", ".out", ".err"})
CAPTURE_NAMES = frozenset({"stdout", "stderr"})
_KAFKA_SEGMENT = re.compile(r"\d{20}\.log")
#: Environment variables whose values are secrets when set (the developer's own, say).
_SECRET_ENV = re.compile(r"UF_\w*(PASSWORD|SECRET|_KEY)\w*")
_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Secret:
    """A secret value and what it is (shown in a leak report instead of the value)."""

    value: str
    kind: str

    def __repr__(self) -> str:
        """Masked, so a failing assertion that shows a Secret does not leak it."""
        return f"Secret({self.masked})"

    @property
    def masked(self) -> str:
        """Enough to tell secrets apart (kind, length, hash prefix), never enough to use one."""
        digest = hashlib.sha256(self.value.encode()).hexdigest()[:8]
        return f"{self.kind} ({len(self.value)} chars, sha256 {digest}…)"


@dataclass(frozen=True)
class Leak:
    """Where a secret was found: a file or captured output, the first line, how many times."""

    where: str
    line: int
    secret: Secret
    count: int

    def __str__(self) -> str:
        times = "" if self.count == 1 else f" ({self.count} times)"
        return f"{self.where}:{self.line}: {self.secret.masked}{times}"


_secrets: dict[str, Secret] = {}
_folders: list[Path] = []
_captured: list[tuple[str, str]] = []


def register(value: str, kind: str) -> str:
    """Remember a secret the suite created; returns it, so a test can register as it assigns."""
    value = value.strip()
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(f"a {kind} of {len(value)} chars is too short to scan logs for")
    _secrets.setdefault(value, Secret(value, kind))
    return value


def register_files(folder: Path, *patterns: str, kind: str) -> int:
    """Register the content of each file under `folder` matching a glob pattern (a generated
    password or key file); files not there yet are skipped. Returns how many were registered."""
    found = [path for pattern in patterns for path in sorted(folder.glob(pattern))]
    for path in found:
        register(path.read_text(), f"{kind} ({path.name})")
    return len(found)


def register_environment(environ: Mapping[str, str]) -> None:
    """Register the values of the UF_*PASSWORD*, UF_*SECRET* and UF_*_KEY* variables set."""
    for name, value in environ.items():
        if _SECRET_ENV.fullmatch(name) and len(value.strip()) >= MIN_SECRET_CHARS:
            register(value, f"${name}")


def watch(folder: Path) -> None:
    """Also scan `folder` (a temporary directory outside pytest's tmp_path tree)."""
    _folders.append(folder)


def capture(label: str, text: str) -> None:
    """Keep a test's captured output or error text for the scan, under `label`."""
    if text:
        _captured.append((label, text))


def registered() -> list[Secret]:
    return list(_secrets.values())


def watched() -> list[Path]:
    return list(_folders)


def captured() -> list[tuple[str, str]]:
    return list(_captured)


def is_log_file(path: Path, root: Path) -> bool:
    """Whether `path` (under `root`) is a log, by the rules in the module docstring."""
    if _KAFKA_SEGMENT.fullmatch(path.name):
        return False
    if path.suffix in LOG_SUFFIXES or path.stem in CAPTURE_NAMES:
        return True
    return "logs" in path.relative_to(root).parts[:-1]


def log_files(roots: Iterable[Path]) -> list[Path]:
    """Every log-like file under the roots, each once (roots may nest), symlinks not followed."""
    files: dict[Path, Path] = {}
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder, name)
                if path.is_file() and not path.is_symlink() and is_log_file(path, root):
                    files.setdefault(path.resolve(), path)
    return sorted(files.values())


def _chunks(stream: BinaryIO, size: int) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk


def find(
    stream: BinaryIO, secrets: Iterable[Secret], where: str, chunk_bytes: int = _CHUNK_BYTES
) -> list[Leak]:
    """Leaks of `secrets` in a byte stream read in chunks (a log may be large), one per secret
    with its first line. A match across two chunks counts once: each buffer keeps the previous
    one's last bytes, and only matches ending in the new bytes are counted."""
    needles = {secret.value.encode(): secret for secret in secrets}
    if not needles:
        return []
    keep = max(map(len, needles)) - 1
    first: dict[bytes, int] = {}
    counts: dict[bytes, int] = {}
    tail, lines_before = b"", 0
    for chunk in _chunks(stream, chunk_bytes):
        buffer = tail + chunk
        for needle in needles:
            at = buffer.find(needle, max(0, len(tail) - len(needle) + 1))
            while at != -1:
                first.setdefault(needle, lines_before + buffer.count(b"\n", 0, at) + 1)
                counts[needle] = counts.get(needle, 0) + 1
                at = buffer.find(needle, at + 1)
        tail = buffer[max(0, len(buffer) - keep) :]
        lines_before += buffer.count(b"\n", 0, len(buffer) - len(tail))
    return [Leak(where, first[n], needles[n], counts[n]) for n in first]


def scan_file(path: Path, secrets: Iterable[Secret], chunk_bytes: int = _CHUNK_BYTES) -> list[Leak]:
    """Leaks in one file; a file removed meanwhile (a rotated log) has none."""
    try:
        with path.open("rb") as stream:
            return find(stream, secrets, str(path), chunk_bytes)
    except FileNotFoundError:
        return []


def scan_text(label: str, text: str, secrets: Iterable[Secret]) -> list[Leak]:
    return find(io.BytesIO(text.encode()), secrets, label)
