"""Access to warehouse.duckdb under the single-writer rule (DESIGN.md §3).

DuckDB allows one writing process per file, and a writer shuts readers in other processes out.
Every process that opens the warehouse (sink, dbt, status) takes the same lock file first and
holds it as briefly as it can; Kafka buffers meanwhile.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from connectors.errors import UrbanFlowError

DEFAULT_LOCK_TIMEOUT_S = 600.0
#: The sink lets a waiter in after the batch in hand (under a second): a wait this long means
#: another dbt run or sink holds it, and whoever waits says so (then every LOCK_REPORT_EVERY_S),
#: naming the holder.
LOCK_REPORT_AFTER_S = 5.0
LOCK_REPORT_EVERY_S = 30.0
_DISK_FULL = os.strerror(errno.ENOSPC)  # "No space left on device", as DuckDB quotes it

log = logging.getLogger(__name__)


class WarehouseDiskFullError(UrbanFlowError):
    """The warehouse's volume is full: the write in progress was rolled back, nothing of it kept."""


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


def lock_holder(path: Path) -> str | None:
    """`pid 123: urbanflow sink run` for the process holding the flock on `path`, from Linux's
    /proc/locks; None when nobody holds it or the system cannot say."""
    try:
        stat = path.stat()
        locks = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    wanted = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    for line in locks.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:123 0 EOF"; waiters' lines have a "->" marker
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted:
            return f"pid {fields[4]}: {_command(fields[4])}"
    return None


def _command(pid: str) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "exited"
    words = [os.path.basename(argv[0].decode(errors="replace"))]
    words += [a.decode(errors="replace") for a in argv[1:4] if a]
    return " ".join(" ".join(words).split())[:60]  # one line, however the arguments look


def queue_path(warehouse: Path) -> Path:
    """The turnstile every opener passes on its way to the lock (see `warehouse_lock`)."""
    return warehouse.with_name(warehouse.name + ".lock.queue")


def someone_waits(warehouse: Path) -> bool:
    """Whether another process is waiting for the warehouse lock: it holds the turnstile while
    it does. A holder that keeps the lock across writes (the sink) asks this to let it in."""
    turnstile = FileLock(str(queue_path(warehouse)))
    try:
        turnstile.acquire(timeout=0)
    except Timeout:
        return True
    turnstile.release()
    return False


def _acquire(lock: FileLock, path: Path, started: float, timeout_s: float) -> None:
    """Take `lock`, reporting a long wait and failing after `timeout_s` (counted from `started`),
    naming whoever holds the warehouse lock `path`."""
    report_at = started + LOCK_REPORT_AFTER_S
    while True:
        try:
            lock.acquire(timeout=max(0.0, min(started + timeout_s, report_at) - time.monotonic()))
            return
        except Timeout:
            waited = time.monotonic() - started
            if waited >= timeout_s:
                raise UrbanFlowError(
                    f"waited {timeout_s:.0f} s for the warehouse lock {path}; another sink or dbt "
                    f"run holds it ({lock_holder(path) or 'holder unknown'})"
                ) from None
            log.warning(
                "waiting %.0f s for the warehouse lock %s: another sink or dbt run holds it (%s); "
                "will wait up to %.0f s",
                waited,
                path,
                lock_holder(path) or "holder unknown",
                timeout_s,
            )
            report_at = time.monotonic() + LOCK_REPORT_EVERY_S


@contextmanager
def warehouse_lock(warehouse: Path, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[None]:
    """The inter-process lock shared by the sink and dbt; released even if the holder is killed.
    A long wait is logged (a sink that seems stuck is waiting for dbt, and says so), and a full
    disk under a write made while holding it becomes a WarehouseDiskFullError.

    Openers queue through a turnstile (a second lock, held only while waiting for the first), so
    a holder that lets go and takes the lock straight back, as a busy sink does, cannot starve
    them: it queues behind whoever holds the turnstile."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    path = lock_path(warehouse)
    lock = FileLock(str(path))
    started = time.monotonic()
    turnstile = FileLock(str(queue_path(warehouse)))
    _acquire(turnstile, path, started, timeout_s)
    try:
        _acquire(lock, path, started, timeout_s)
    finally:
        turnstile.release()
    waited = time.monotonic() - started
    if waited >= LOCK_REPORT_AFTER_S:
        log.warning("got the warehouse lock %s after %.0f s", path, waited)
    try:
        yield
    except (duckdb.Error, OSError) as exc:
        if not _disk_full(exc):
            raise
        # Every write to the warehouse happens under this lock: one place turns a full disk into
        # one clear line. DuckDB keeps a transaction whole or not at all, so a run after space
        # is freed carries on after the last commit.
        raise WarehouseDiskFullError(
            f"no space left on the warehouse's volume ({warehouse.parent}): the failing write "
            "was rolled back whole; free space there and run again, it resumes after the last "
            "commit"
        ) from None
    finally:
        lock.release()


def _disk_full(exc: BaseException) -> bool:
    """Did `exc`, or what it was raised while handling (a failed rollback after a failed commit),
    come from a full disk?"""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "errno", None) == errno.ENOSPC or _DISK_FULL in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def connect(
    warehouse: Path,
    *,
    read_only: bool = False,
    timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    memory_limit: str | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse under the lock, and close it before the lock is released."""
    with warehouse_lock(warehouse, timeout_s):
        if read_only and not warehouse.exists():
            raise UrbanFlowError(f"warehouse {warehouse} does not exist yet; run the sink first")
        config = {"memory_limit": memory_limit} if memory_limit else {}
        con = duckdb.connect(str(warehouse), read_only=read_only, config=config)
        try:
            yield con
        finally:
            con.close()
