"""The quality gate: write-audit-publish of the marts into serving.duckdb (DESIGN.md §3)."""

from connectors.quality.gate import (
    RESULTS_TABLE,
    GateReport,
    QualityGateError,
    ResultRow,
    audit,
    gate_paths,
    handover_path,
    write_handover,
)
from connectors.quality.publish import replace_atomically, results_table, run_gate
from connectors.quality.suites import Batch, Expectation, load_batches

__all__ = [
    "RESULTS_TABLE",
    "Batch",
    "Expectation",
    "GateReport",
    "QualityGateError",
    "ResultRow",
    "audit",
    "gate_paths",
    "handover_path",
    "load_batches",
    "replace_atomically",
    "results_table",
    "run_gate",
    "write_handover",
]
