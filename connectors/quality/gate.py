"""Write-audit: copy the marts to a candidate serving database and validate it (DESIGN.md §3).

The warehouse lock is held only while the candidate is copied and the warehouse-side batches
(raw, staging, cross-layer totals) are read into memory; Great Expectations then runs on pandas
frames (GE's SQL datasource on DuckDB silently fails, see STACK-NOTES.md), so nothing holds a
DuckDB file while it validates.

A build can hand its candidate over (`write_handover`, under the build's own lock hold): the
marts it built and the results of the warehouse-side batch queries, as tables beside them. The
gate of the same run then claims that file instead of waiting for the lock behind the next
run's build, and validates exactly the marts its run built.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from connectors.errors import ConfigError, UrbanFlowError
from connectors.quality.suites import Batch, Expectation, load_batches
from connectors.settings import Settings
from connectors.warehouse import connect, warehouse_lock

if TYPE_CHECKING:  # pandas and GE load only when a gate runs, not with every CLI command
    import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

RESULTS_TABLE = "raw._quality_results"
#: In a handed-over candidate: the warehouse-side batches' query results, and the raw tables
#: they were made for (dropped when the gate claims it).
HANDOVER_SCHEMA = "_gate_handover"
HANDOVER_RAW_TABLES = "_raw_tables"
#: An unclaimed handover (its run failed before its gate) is deleted after this long.
HANDOVER_MAX_AGE_S = 3600
CANDIDATE_RESULTS_TABLE = "ops.quality_results"
COPIED_SCHEMAS = ("marts", "seeds")
WAREHOUSE_CATALOG = "warehouse"

RESULT_COLUMNS = (
    ("run_id", "varchar not null"),
    ("checked_at", "timestamptz not null"),
    ("suite", "varchar not null"),
    ("batch", "varchar not null"),
    ("expectation_type", "varchar not null"),
    ("column_name", "varchar"),
    ("kwargs", "json"),
    ("success", "boolean not null"),
    ("observed_value", "varchar"),
    ("unexpected_count", "bigint"),
    ("element_count", "bigint"),
    ("outcome", "varchar not null"),
    ("candidate_path", "varchar not null"),
)

Progress = Callable[[str], None]


class QualityGateError(UrbanFlowError):
    """The candidate failed its checks: nothing was published; names every failing expectation."""

    def __init__(self, report: GateReport):
        self.report = report
        lines = [
            f"quality gate blocked publishing: {len(report.failures)} of {len(report.results)} "
            f"expectations failed (candidate kept at {report.location}, "
            f"data docs {report.data_docs})"
        ]
        lines += [f"  ✗ {row.describe()}" for row in report.failures]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class ResultRow:
    """One expectation's outcome, as stored in raw._quality_results."""

    suite: str
    batch: str
    expectation_type: str
    column_name: str | None
    kwargs: str
    success: bool
    observed_value: str
    unexpected_count: int | None
    element_count: int | None

    def describe(self) -> str:
        column = f" column {self.column_name}" if self.column_name else ""
        return (
            f"suite {self.suite}, table {self.batch},{column}: {self.expectation_type} "
            f"(observed {self.observed_value})"
        )


@dataclass
class GateReport:
    """What one gate run found; `statistics` are GE's, summed over every batch."""

    run_id: str
    checked_at: datetime
    candidate_path: Path
    data_docs: Path
    results: list[ResultRow] = field(default_factory=list)
    statistics: dict[str, int] = field(default_factory=dict)
    outcome: str = "checked"
    location: Path | None = None  # where the candidate ends up: serving, failed/ or removed
    #: Rebuilds Data Docs from this run's results: called once the outcome is in place, so a
    #: publish does not wait for the HTML.
    write_data_docs: Callable[[], None] = field(default=lambda: None, repr=False)

    @property
    def success(self) -> bool:
        evaluated = self.statistics.get("evaluated_expectations", 0)
        return evaluated > 0 and self.statistics.get("successful_expectations") == evaluated

    @property
    def failures(self) -> list[ResultRow]:
        return [row for row in self.results if not row.success]


def gate_paths(settings: Settings) -> dict[str, Path]:
    """Where candidates, failed candidates, the serving database and Data Docs live."""
    candidates = settings.var_dir / "candidates"
    return {
        "candidates": candidates,
        "failed": candidates / "failed",
        "serving": settings.var_dir / "serving.duckdb",
        "data_docs": settings.var_dir / "quality" / "data_docs",
    }


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copy_marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Materialise every table and view of the served schemas from the attached warehouse."""
    schemas = ", ".join(f"'{s}'" for s in COPIED_SCHEMAS)
    relations = con.execute(
        f"""select schema_name, table_name from duckdb_tables()
            where database_name = '{WAREHOUSE_CATALOG}' and schema_name in ({schemas})
            union all
            select schema_name, view_name from duckdb_views()
            where database_name = '{WAREHOUSE_CATALOG}' and schema_name in ({schemas})
              and not internal
            order by 1, 2"""
    ).fetchall()
    for schema, table in relations:
        con.execute(f"create schema if not exists {_quote(schema)}")
        con.execute(
            f"create table {_quote(schema)}.{_quote(table)} as "
            f"select * from {WAREHOUSE_CATALOG}.{_quote(schema)}.{_quote(table)}"
        )
    return [f"{schema}.{table}" for schema, table in relations]


def _raw_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every raw.<topic> table the sink has loaded (bookkeeping tables start with `_`).

    A declared topic that has never received an event has an empty table: nothing to validate,
    and it must not block publishing the other sources' marts (its staleness shows in the
    pipeline-health mart instead).
    """
    rows = con.execute(
        f"""select table_name from duckdb_tables()
            where database_name = '{WAREHOUSE_CATALOG}' and schema_name = 'raw'
              and not starts_with(table_name, '_')
            order by 1"""
    ).fetchall()
    return [
        name
        for (name,) in rows
        if con.execute(f'select exists (from {WAREHOUSE_CATALOG}.raw."{name}")').fetchall()[0][0]
    ]


def _frames(
    con: duckdb.DuckDBPyConnection, batches: list[Batch], reads: str
) -> dict[str, pd.DataFrame]:
    try:
        return {b.suite_name: con.sql(b.query).df() for b in batches if b.reads == reads}
    except duckdb.Error as exc:
        raise ConfigError(f"quality batch query failed: {exc}") from None


def _attach_and_copy(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Attach the warehouse read-only and copy its marts (the caller holds the lock)."""
    con.execute(f"attach '{settings.warehouse_path}' as {WAREHOUSE_CATALOG} (read_only)")
    copied = _copy_marts(con)
    if not copied:
        raise UrbanFlowError(
            f"warehouse {settings.warehouse_path} has no marts or seeds; run dbt build"
        )
    return copied


def _require_warehouse(settings: Settings) -> None:
    if not settings.warehouse_path.exists():
        raise UrbanFlowError(
            f"warehouse {settings.warehouse_path} does not exist yet; run the sink and dbt first"
        )


def build_candidate(
    settings: Settings, candidate: Path, progress: Progress
) -> tuple[list[Batch], dict[str, pd.DataFrame]]:
    """Copy the marts into `candidate` and read every batch into memory, holding the warehouse
    lock only for the copy and the warehouse-side reads."""
    _require_warehouse(settings)
    candidate.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(candidate))
    try:
        with warehouse_lock(settings.warehouse_path):
            copied = _attach_and_copy(con, settings)
            batches = load_batches(_raw_tables(con), settings.expectations_file)
            frames = _frames(con, batches, "warehouse")
            con.execute(f"detach {WAREHOUSE_CATALOG}")
        progress(f"candidate {candidate.name}: copied {len(copied)} tables, lock released")
        frames |= _frames(con, batches, "candidate")
    finally:
        con.close()
    return batches, frames


def handover_path(settings: Settings, run_id: str) -> Path:
    """Where the build of orchestrator run `run_id` leaves its candidate for that run's gate."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return gate_paths(settings)["candidates"] / f"handover-{safe}.duckdb"


def write_handover(settings: Settings, path: Path) -> list[str]:
    """Write the candidate a build hands to its gate: the marts, and each warehouse-side batch
    query's result as a table (the same DuckDB types the gate would read). The caller holds the
    warehouse lock, right after its build; the file appears whole or not at all."""
    _require_warehouse(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    con = duckdb.connect(str(partial))
    try:
        copied = _attach_and_copy(con, settings)
        raw_tables = _raw_tables(con)
        con.execute(f"create schema {HANDOVER_SCHEMA}")
        con.execute(
            f"create table {HANDOVER_SCHEMA}.{HANDOVER_RAW_TABLES} as "
            "select unnest(?::varchar[]) as table_name",
            [raw_tables],
        )
        for batch in load_batches(raw_tables, settings.expectations_file):
            if batch.reads == "warehouse":
                con.execute(
                    f"create table {HANDOVER_SCHEMA}.{_quote(batch.suite_name)} as {batch.query}"
                )
        con.execute(f"detach {WAREHOUSE_CATALOG}")
    except BaseException:
        con.close()
        partial.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(partial, path)
    return copied


def claim_handover(
    settings: Settings, handover: Path, candidate: Path
) -> tuple[list[Batch], dict[str, pd.DataFrame]] | None:
    """Take the handed-over candidate as `candidate` and read its batches, without the warehouse
    lock; None when there is none (the build made none, or another claim took it)."""
    _remove_stale_handovers(handover.parent)
    try:
        os.replace(handover, candidate)
    except FileNotFoundError:
        return None
    con = duckdb.connect(str(candidate))
    try:
        raw_tables = [
            name
            for (name,) in con.execute(
                f"select table_name from {HANDOVER_SCHEMA}.{HANDOVER_RAW_TABLES} order by 1"
            ).fetchall()
        ]
        batches = load_batches(raw_tables, settings.expectations_file)
        try:
            frames = {
                b.suite_name: con.sql(f"from {HANDOVER_SCHEMA}.{_quote(b.suite_name)}").df()
                for b in batches
                if b.reads == "warehouse"
            }
        except duckdb.CatalogException:  # the expectations file changed since the build
            con.close()
            candidate.unlink(missing_ok=True)
            return None
        con.execute(f"drop schema {HANDOVER_SCHEMA} cascade")
        frames |= _frames(con, batches, "candidate")
    finally:
        con.close()
    return batches, frames


def _remove_stale_handovers(directory: Path) -> None:
    cutoff = datetime.now(UTC).timestamp() - HANDOVER_MAX_AGE_S
    for stale in directory.glob("handover-*.duckdb*"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < cutoff:
                stale.unlink()


def _observed(result: dict[str, Any], exception: dict[str, Any]) -> str:
    if exception.get("raised_exception"):
        return f"error: {exception.get('exception_message')}"
    if "observed_value" in result:
        return str(result["observed_value"])
    count = result.get("unexpected_count")
    examples = result.get("partial_unexpected_list") or []
    sample = f", e.g. {examples[:3]}" if count and examples else ""
    return f"{count} of {result.get('element_count')} rows unexpected{sample}"


def _to_row(batch: Batch, validation: Any) -> ResultRow:
    config = validation.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    result = validation.result or {}
    return ResultRow(
        suite=batch.suite,
        batch=batch.name,
        expectation_type=config.type,
        column_name=Expectation(config.type, kwargs).column,
        kwargs=json.dumps(kwargs, default=str, sort_keys=True),
        success=bool(validation.success),
        observed_value=_observed(result, validation.exception_info or {}),
        unexpected_count=result.get("unexpected_count"),
        element_count=result.get("element_count"),
    )


def _gx_context(data_docs: Path):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name="urbanflow",
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(data_docs),
            },
        },
    )
    return context


def validate(
    batches: list[Batch], frames: dict[str, pd.DataFrame], data_docs: Path, progress: Progress
) -> tuple[list[ResultRow], dict[str, int], Callable[[], None]]:
    """Run one GE validation per batch on its frame; returns the rows, the totals and what
    rebuilds Data Docs for this run."""
    import great_expectations as gx
    from great_expectations.expectations.registry import get_expectation_impl

    context = _gx_context(data_docs)
    datasource = context.data_sources.add_pandas("urbanflow")
    rows: list[ResultRow] = []
    totals = {"evaluated_expectations": 0, "successful_expectations": 0}
    for batch in batches:
        try:
            expectations = [get_expectation_impl(e.type)(**e.kwargs) for e in batch.expectations]
        except Exception as exc:  # GE raises its own and pydantic errors for a bad spec
            raise ConfigError(
                f"quality suite {batch.suite_name}: invalid expectation: {exc}"
            ) from None
        suite = context.suites.add(
            gx.ExpectationSuite(name=batch.suite_name, expectations=expectations)
        )
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(
                name=batch.suite_name,
                data=datasource.add_dataframe_asset(
                    batch.suite_name
                ).add_batch_definition_whole_dataframe("all"),
                suite=suite,
            )
        )
        result = definition.run(
            batch_parameters={"dataframe": frames[batch.suite_name]}, result_format="SUMMARY"
        )
        for key in totals:
            totals[key] += result.statistics[key]
        rows += [_to_row(batch, r) for r in result.results]
        progress(
            f"  {'✓' if result.success else '✗'} {batch.name} ({batch.suite}): "
            f"{result.statistics['successful_expectations']}/"
            f"{result.statistics['evaluated_expectations']} expectations passed"
        )

    def write_data_docs() -> None:
        shutil.rmtree(data_docs, ignore_errors=True)
        context.build_data_docs(site_names=["urbanflow"])

    return rows, totals, write_data_docs


def _results_frame(report: GateReport) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame([vars(row) for row in report.results])
    frame.insert(0, "run_id", report.run_id)
    frame.insert(1, "checked_at", report.checked_at)
    frame["outcome"] = report.outcome
    frame["candidate_path"] = str(report.location)
    return frame[[name for name, _ in RESULT_COLUMNS]]


def write_results(con: duckdb.DuckDBPyConnection, table: str, report: GateReport) -> None:
    """Append this run's rows to `table` (created if missing): the Pipeline Health source."""
    con.execute(f"create schema if not exists {table.split('.')[0]}")
    columns = ", ".join(f"{name} {kind}" for name, kind in RESULT_COLUMNS)
    con.execute(f"create table if not exists {table} ({columns})")
    frame = _results_frame(report)  # noqa: F841 - read by DuckDB's replacement scan
    con.execute(f"insert into {table} select * from frame")


def record_in_candidate(report: GateReport) -> None:
    """Store the results in the candidate, for whoever inspects it (served, or kept as failed)."""
    if report.candidate_path.exists():
        con = duckdb.connect(str(report.candidate_path))
        try:
            write_results(con, CANDIDATE_RESULTS_TABLE, report)
        finally:
            con.close()


def record_in_warehouse(settings: Settings, report: GateReport) -> None:
    """Store the results in the warehouse, for dbt (`fct_quality_runs`)."""
    with connect(settings.warehouse_path) as con:
        write_results(con, RESULTS_TABLE, report)


def new_run_id() -> str:
    now = datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def audit(settings: Settings, progress: Progress, handover: Path | None = None) -> GateReport:
    """Build a candidate (or claim the one a build handed over) and validate it; results are
    stored once the outcome is decided."""
    paths = gate_paths(settings)
    run_id = new_run_id()
    report = GateReport(
        run_id=run_id,
        checked_at=datetime.now(UTC),
        candidate_path=paths["candidates"] / f"serving-{run_id}.duckdb",
        data_docs=paths["data_docs"] / "index.html",
    )
    try:
        claimed = handover and claim_handover(settings, handover, report.candidate_path)
        if claimed:
            batches, frames = claimed
            progress(f"candidate {report.candidate_path.name}: handed over by this run's build")
        else:
            batches, frames = build_candidate(settings, report.candidate_path, progress)
    except BaseException:
        report.candidate_path.unlink(missing_ok=True)
        raise
    progress(f"validating {len(batches)} batches with Great Expectations")
    report.results, report.statistics, report.write_data_docs = validate(
        batches, frames, paths["data_docs"], progress
    )
    return report
