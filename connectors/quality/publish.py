"""Publish: a passing candidate atomically replaces serving.duckdb; a failing one is set aside.

`os.replace` on the same filesystem is atomic, so a reader opening serving.duckdb sees the old
file or the new one, never a half-written one; readers that already have it open keep the old.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from connectors.errors import UrbanFlowError
from connectors.quality.gate import (
    GateReport,
    QualityGateError,
    audit,
    gate_paths,
    record_in_candidate,
    record_in_warehouse,
)
from connectors.settings import Settings


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(candidate: Path, serving: Path) -> None:
    """Make `candidate` the served file in one rename, durable across a power cut."""
    wal = candidate.with_name(candidate.name + ".wal")
    if wal.exists():
        raise UrbanFlowError(
            f"candidate {candidate} still has a write-ahead log {wal}; not publishing"
        )
    _fsync(candidate)
    os.replace(candidate, serving)
    _fsync(serving.parent)


def results_table(report: GateReport) -> Table:
    """One line per validated batch: passed/evaluated and the failing expectations."""
    table = Table(
        "suite", "table", "passed", "failing expectations", title=f"quality run {report.run_id}"
    )
    batches: dict[tuple[str, str], list] = {}
    for row in report.results:
        batches.setdefault((row.suite, row.batch), []).append(row)
    for (suite, batch), rows in batches.items():
        failing = [r for r in rows if not r.success]
        table.add_row(
            suite,
            batch,
            f"{len(rows) - len(failing)}/{len(rows)}",
            "\n".join(
                f"[red]{r.expectation_type}({r.column_name})[/]: {r.observed_value}"
                for r in failing
            ),
        )
    return table


def run_gate(
    settings: Settings,
    *,
    publish: bool,
    console: Console | None = None,
    handover: Path | None = None,
) -> GateReport:
    """Write-audit(-publish): build (or claim the `handover` of this run's build) and validate
    a candidate, then publish it if asked and if every expectation passed. Raises
    QualityGateError naming each failure; serving.duckdb is then left untouched."""
    started = time.monotonic()
    progress = console.print if console else (lambda _message: None)
    paths = gate_paths(settings)
    report = audit(settings, progress, handover)
    if not report.success:
        report.outcome, report.location = "blocked", paths["failed"] / report.candidate_path.name
    elif publish:
        report.outcome, report.location = "published", paths["serving"]
    else:
        report.outcome, report.location = "checked", report.candidate_path
    record_in_candidate(report)
    if report.outcome == "blocked":
        report.location.parent.mkdir(parents=True, exist_ok=True)
        os.replace(report.candidate_path, report.location)
    elif report.outcome == "published":
        replace_atomically(report.candidate_path, paths["serving"])
    else:
        report.candidate_path.unlink()  # a check only audits; publish builds its own candidate
    report.write_data_docs()
    # in the warehouse once done: a run killed before the rename must not count as a publish
    record_in_warehouse(settings, report)
    if console:
        console.print(results_table(report))
        console.print(f"data docs: {report.data_docs}")
    if not report.success:
        raise QualityGateError(report)
    stats = report.statistics
    progress(
        f"{report.outcome}: {stats['successful_expectations']}/{stats['evaluated_expectations']} "
        f"expectations passed in {time.monotonic() - started:.1f} s"
        + (f"; serving database {paths['serving']}" if publish else "")
    )
    return report
