"""dbt runs under the warehouse lock, so the sink and dbt never write at once (DESIGN.md §3).

`refresh_warehouse` is how the platform keeps the marts current: it builds only what the events
loaded since the last successful build feed (dbt's `source:<table>+` for each topic whose
offsets moved), everything on the first build, everything from scratch when the dbt project
changed (a model's SQL or a seed it joins may have changed what existing rows should be), and
nothing when no event arrived. Incremental models then process only the new rows.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from connectors.errors import UrbanFlowError
from connectors.kafka.topics import load_topics
from connectors.settings import Settings, api_rejections_dir
from connectors.sink.loader import TopicPartitionKey, ensure_schema, stored_offsets
from connectors.warehouse import warehouse_lock

#: What refreshing the warehouse runs: seeds, snapshots, models and their data tests. Unit tests
#: check SQL logic on fixed inputs, so they belong in development and CI (`make test` runs them
#: through the integration suite), not in every refresh (dbt's own advice).
WAREHOUSE_BUILD_FLAGS = ["--exclude-resource-type", "unit_test"]
WAREHOUSE_BUILD = ["build", *WAREHOUSE_BUILD_FLAGS]


def declare_raw_tables(settings: Settings) -> None:
    """Create every declared topic's raw table (empty until the sink loads it), so each dbt source
    resolves even for a topic that has not received its first event. Caller holds the lock."""
    specs = [spec for spec in load_topics(settings.topics_file) if spec.sink]
    with duckdb.connect(str(settings.warehouse_path)) as con:
        ensure_schema(con, [spec.raw_table for spec in specs])


def run_dbt(
    settings: Settings, args: list[str], *, capture: bool = False
) -> subprocess.CompletedProcess:
    """Run `dbt <args>` against the warehouse; raise UrbanFlowError naming the command if it fails.
    With `capture`, dbt's output is returned (and quoted in the error) instead of printed."""
    with warehouse_lock(settings.warehouse_path):
        declare_raw_tables(settings)
        return _run_dbt_locked(settings, args, capture=capture)


# --- how dbt runs ------------------------------------------------------------------------------

#: dbt runs in a child process forked from a server that imported dbt once: each run's DuckDB
#: handle is gone when the child exits (so the lock can be released), and only the first run in a
#: process pays dbt's ~2 s of imports (multiprocessing's forkserver, preloaded).
_DBT_PROCESSES = multiprocessing.get_context("forkserver")
_DBT_PROCESSES.set_forkserver_preload(
    [
        "connectors.transform",
        "dbt.cli.main",
        # what `dbt build` imports on first use (~0.8 s more per run if left to the child)
        "dbt.adapters.duckdb.impl",
        "dbt.compilation",
        "dbt.graph",
        "dbt.parser.manifest",
        "dbt.task.build",
        "daff",
        "sqlparse",
        "babel.dates",
    ]
)


def _dbt_child(
    args: list[str], env: dict[str, str], cwd: str, log: str | None, lock_holder: int
) -> None:
    """Body of the child process: `dbt <args>` in-process, exit 0 on success, 1 on failure."""
    _die_with(lock_holder)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    if log is not None:
        with open(log, "wb", buffering=0) as out:
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
    success = _invoke_dbt(args)
    sys.stdout.flush()
    sys.exit(0 if success else 1)


def _die_with(pid: int) -> None:
    """End this process as soon as `pid`, which holds the warehouse lock for it, is gone. The
    child descends from the forkserver, not from `pid`: killed alone (an OOM kill, a task
    timeout), `pid` releases the lock while dbt would go on writing the warehouse, and the sink,
    let in by the lock, would then fail on DuckDB's own file lock."""
    try:
        watched = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)  # already gone: the lock is free, so dbt must not start
    except (AttributeError, OSError):  # no pidfd (not Linux >= 5.3): nothing to watch with
        return

    def watch() -> None:
        select.select([watched], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="die-with-lock-holder", daemon=True).start()


def _invoke_dbt(args: list[str]) -> bool:
    """`dbt <args>` in this process, for a process that lives for one dbt command."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.cli.main import dbtRunner

    # Cyclic garbage collection during one dbt command only costs time (gen-2 passes over dbt's
    # manifest took up to ~2 s of a 5 s refresh); collect once at the end.
    gc.disable()
    result = dbtRunner().invoke(args)
    gc.enable()
    if result.exception is not None:  # e.g. an unknown option: dbt has not printed it
        print(f"dbt: {result.exception}", file=sys.stderr)
    # The process may end with os._exit, skipping interpreter shutdown: drop dbt-duckdb's
    # database now, so DuckDB checkpoints and closes the file as a `dbt` command would, and the
    # lock is released only after that.
    DuckDBConnectionManager.close_all_connections()
    gc.collect()
    return bool(result.success)


@contextmanager
def _main_not_reimported() -> Iterator[None]:
    """dbt runs in a forkserver child, and multiprocessing re-runs `__main__` by path in each
    child. In an Airflow task, for one, `__main__` is the `airflow` script, whose import initialises
    Airflow against a metadata DB the task runner is (rightly) denied, and the child dies. Hiding
    the path for the child's start makes it import only what it needs."""
    main = sys.modules.get("__main__")
    path = main.__dict__.pop("__file__", None) if main is not None else None
    try:
        yield
    finally:
        if path is not None:
            main.__file__ = path


def _run_dbt_locked(
    settings: Settings, args: list[str], *, capture: bool
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,  # the forkserver's environment is a snapshot of when it started
        "UF_WAREHOUSE_PATH": str(settings.warehouse_path),
        "DBT_PROFILES_DIR": str(settings.dbt_project_dir),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    project = str(settings.dbt_project_dir)
    with tempfile.TemporaryDirectory(prefix="uf-dbt-") as tmp:
        log = str(Path(tmp) / "dbt.log") if capture else None
        child = _DBT_PROCESSES.Process(
            target=_dbt_child,
            args=([*args, "--project-dir", project], env, project, log, os.getpid()),
        )
        with _main_not_reimported():
            child.start()
        child.join()
        output = Path(log).read_text(encoding="utf-8", errors="replace") if log else ""
    if child.exitcode != 0:
        # dbt ends with a summary of what failed and why: quote that, else the output's end
        summary = output.rfind("Completed with")
        tail = output[summary:][:3000] if summary >= 0 else output[-3000:]
        raise UrbanFlowError(
            f"`dbt {' '.join(args)}` failed (exit {child.exitcode}){tail and ':'}\n{tail}"
        )
    return subprocess.CompletedProcess(["dbt", *args], child.exitcode, output, "")


# --- refreshing the warehouse after new events ------------------------------------------------

BUILDS_TABLE = "raw._dbt_builds"
BUILT_OFFSETS_TABLE = "raw._dbt_built_offsets"
_BUILD_STATE_DDL = f"""
create table if not exists {BUILDS_TABLE} (
    started_at timestamptz not null,
    finished_at timestamptz not null,
    project_hash varchar not null,
    selection varchar not null
);
create table if not exists {BUILT_OFFSETS_TABLE} (
    kafka_topic varchar not null,
    kafka_partition integer not null,
    next_offset bigint not null,
    primary key (kafka_topic, kafka_partition)
);
"""
#: The one input that does not arrive through Kafka: the quality gate's results, written after a
#: build; the next refresh picks them up (fct_quality_runs).
QUALITY_SELECTOR = "source:quality+"
#: Airflow's pipeline-health DAG appends its checks (lag, freshness, failed runs) to raw tables;
#: the next refresh builds and publishes them (fct_pipeline_health, fct_source_freshness, ...).
HEALTH_SELECTOR = "source:orchestration+"
#: What the partner API refused never reaches Kafka: it is a log of files the staging view reads.
API_REJECTIONS_SELECTOR = "stg_ops__api_rejections+"
#: The raw tables each of those two selectors reads, with the column saying when a row was written.
_RESULT_TABLES = {
    QUALITY_SELECTOR: [("_quality_results", "checked_at")],
    HEALTH_SELECTOR: [
        ("_pipeline_health", "checked_at"),
        ("_source_freshness", "checked_at"),
        ("_run_failures", "failed_at"),
    ],
}
#: The sink's bookkeeping moves with every load; fct_source_health reads it and measures every raw
#: table from dbt's graph (not recorded as lineage), so it is rebuilt whenever any topic moved.
SINK_SELECTOR = "source:sink+"
#: What makes up the dbt project: a change to any of these rebuilds everything.
_PROJECT_PARTS = ("models", "seeds", "snapshots", "macros", "tests", "dbt_project.yml")


@dataclass(frozen=True, slots=True)
class BuildPlan:
    """What a refresh builds: `selectors` None = the whole project, [] = nothing; `full_refresh`
    rebuilds incremental models from scratch (their SQL, or a seed they join, may have changed)."""

    selectors: list[str] | None
    reason: str
    full_refresh: bool = False

    @property
    def selection_args(self) -> list[str]:
        selection = ["--select", *self.selectors] if self.selectors else []
        rebuild = ["--full-refresh"] if self.full_refresh else []
        return [*selection, *rebuild]

    @property
    def dbt_args(self) -> list[str]:
        # A refresh runs after every batch of events: keep logs/dbt.log at info (not every
        # statement), and skip dbt's JSON artifacts (~3 MB of manifest and run results rewritten
        # each time, read by nothing here; `urbanflow dbt ...` writes them). A failure is still
        # reported from dbt's own summary.
        quiet = ["--log-level-file", "info", "--no-write-json"]
        return [*WAREHOUSE_BUILD, *quiet, *self.selection_args]


def plan_build(
    *,
    offsets: Mapping[TopicPartitionKey, int],
    built_offsets: Mapping[TopicPartitionKey, int],
    project_hash: str,
    built_project_hash: str | None,
    topic_sources: Mapping[str, str],
    new_quality_results: bool = False,
    new_health_results: bool = False,
    new_api_rejections: bool = False,
) -> BuildPlan:
    """Decide what to build from the sink's offsets now vs at the last successful build."""
    if built_project_hash is None:
        if not any(offsets.values()):
            # empty marts are not worth a build (nor a task per node in Airflow), even when the
            # health DAG has recorded its checks of the empty pipeline: wait for data
            return BuildPlan([], "nothing has landed yet: the first build waits for an event")
        return BuildPlan(None, "first build of this warehouse")
    if project_hash != built_project_hash:
        return BuildPlan(None, "the dbt project changed since the last build", full_refresh=True)
    moved = sorted(
        {key[0] for key, offset in offsets.items() if offset > built_offsets.get(key, 0)}
    )
    fed = [topic for topic in moved if topic in topic_sources]
    selectors = [f"source:{topic_sources[topic]}+" for topic in fed]
    if fed:
        selectors.append(SINK_SELECTOR)
    reasons = [f"new events in {', '.join(fed)}"] if fed else []
    if new_quality_results:
        selectors.append(QUALITY_SELECTOR)
        reasons.append("new quality gate results")
    if new_health_results:
        selectors.append(HEALTH_SELECTOR)
        reasons.append("new pipeline health checks")
    if new_api_rejections:
        selectors.append(API_REJECTIONS_SELECTOR)
        reasons.append("new API rejections")
    return BuildPlan(selectors, "; ".join(reasons) or "no new events since the last build")


def project_fingerprint(project_dir: Path) -> str:
    """sha256 over the paths and bytes of every file that defines the dbt project."""
    digest = hashlib.sha256()
    for part in _PROJECT_PARTS:
        root = project_dir / part
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            if path.is_file():
                digest.update(str(path.relative_to(project_dir)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def topic_sources(settings: Settings) -> dict[str, str]:
    """Kafka topic -> dbt source (`<source>.<raw table>`), from topics.yml and the staging layer's
    source files, so a new source is picked up where it is declared."""
    declared: dict[str, str] = {}
    for path in (settings.dbt_project_dir / "models").rglob("*__sources.yml"):
        for source in yaml.safe_load(path.read_text(encoding="utf-8")).get("sources", []):
            for table in source.get("tables", []):
                declared[table.get("identifier", table["name"])] = (
                    f"{source['name']}.{table['name']}"
                )
    specs = load_topics(settings.topics_file)
    return {spec.name: declared[spec.raw_table] for spec in specs if spec.raw_table in declared}


@dataclass(frozen=True, slots=True)
class RefreshResult:
    plan: BuildPlan
    seconds: float


@dataclass(frozen=True, slots=True)
class PlannedRefresh:
    """A plan and what it was made from: recorded after a successful build, so the next refresh
    starts where this one did (events loaded while dbt ran are built again: safe, incremental)."""

    plan: BuildPlan
    project_hash: str
    offsets: dict[TopicPartitionKey, int]
    planned_at: float


def refresh_warehouse(
    settings: Settings, *, full_refresh: bool = False, capture: bool = False
) -> RefreshResult:
    """Build what the events loaded since the last successful build feed (see the module doc);
    `full_refresh` rebuilds every model from scratch. Raises UrbanFlowError if dbt fails."""
    started = time.monotonic()
    with warehouse_lock(settings.warehouse_path):
        planned = _plan_locked(settings, full_refresh=full_refresh)
        if planned.plan.selectors != []:
            _run_dbt_locked(settings, planned.plan.dbt_args, capture=capture)
            _record_locked(settings, planned)
    return RefreshResult(planned.plan, time.monotonic() - started)


def plan_refresh(settings: Settings) -> BuildPlan:
    """What a refresh would build now, without building it (the lock is held for a moment)."""
    with warehouse_lock(settings.warehouse_path):
        return _plan_locked(settings, full_refresh=False).plan


def _plan_locked(settings: Settings, *, full_refresh: bool) -> PlannedRefresh:
    declare_raw_tables(settings)
    project_hash = project_fingerprint(settings.dbt_project_dir)
    planned_at = time.time()
    with _build_state(settings) as con:
        offsets = stored_offsets(con)
        plan = (
            BuildPlan(None, "full refresh requested", full_refresh=True)
            if full_refresh
            else plan_build(
                offsets=offsets,
                built_offsets=_built_offsets(con),
                project_hash=project_hash,
                built_project_hash=_built_project_hash(con),
                topic_sources=topic_sources(settings),
                new_quality_results=_new_results(con, QUALITY_SELECTOR),
                new_health_results=_new_results(con, HEALTH_SELECTOR),
                new_api_rejections=_new_api_rejections(con, api_rejections_dir(settings)),
            )
        )
    return PlannedRefresh(plan, project_hash, dict(offsets), planned_at)


def _record_locked(settings: Settings, planned: PlannedRefresh) -> None:
    with _build_state(settings) as con:
        _record_build(con, planned.planned_at, planned.project_hash, planned.plan, planned.offsets)


@contextmanager
def _build_state(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse with the build bookkeeping tables in place. Caller holds the lock."""
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(_BUILD_STATE_DDL)
        yield con


def _built_offsets(con: duckdb.DuckDBPyConnection) -> dict[TopicPartitionKey, int]:
    rows = con.execute(
        f"select kafka_topic, kafka_partition, next_offset from {BUILT_OFFSETS_TABLE}"
    )
    return {(topic, partition): offset for topic, partition, offset in rows.fetchall()}


def _new_results(con: duckdb.DuckDBPyConnection, selector: str) -> bool:
    """Have results of `selector`'s raw tables been written since the last build started?"""
    existing = {
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw'"
        ).fetchall()
    }
    last_build = f"(select max(started_at) from {BUILDS_TABLE})"
    for table, written_at in _RESULT_TABLES[selector]:
        if table not in existing:
            continue
        query = f"select coalesce(max({written_at}) > {last_build}, false) from raw.{table}"
        if con.execute(query).fetchall()[0][0]:
            return True
    return False


def _new_api_rejections(con: duckdb.DuckDBPyConnection, folder: Path) -> bool:
    """Has the API written to its rejection log since the last build started?"""
    last = con.execute(f"select epoch(max(started_at)) from {BUILDS_TABLE}").fetchall()[0][0]
    if last is None or not folder.is_dir():
        return False
    return any(f.stat().st_mtime > last for f in folder.glob("*.jsonl"))


def _built_project_hash(con: duckdb.DuckDBPyConnection) -> str | None:
    rows = con.execute(
        f"select project_hash from {BUILDS_TABLE} order by finished_at desc limit 1"
    ).fetchall()
    return rows[0][0] if rows else None


def _record_build(
    con: duckdb.DuckDBPyConnection,
    started_at: float,
    project_hash: str,
    plan: BuildPlan,
    offsets: Mapping[TopicPartitionKey, int],
) -> None:
    """After a successful build: what it covered, so the next refresh starts from there."""
    con.execute("begin")
    con.execute(f"delete from {BUILT_OFFSETS_TABLE}")
    if offsets:
        con.executemany(
            f"insert into {BUILT_OFFSETS_TABLE} values (?, ?, ?)",
            [(topic, partition, offset) for (topic, partition), offset in offsets.items()],
        )
    con.execute(
        f"insert into {BUILDS_TABLE} values (to_timestamp(?), now(), ?, ?)",
        [started_at, project_hash, " ".join(plan.selectors or ["everything"])],
    )
    con.execute("commit")


# --- dbt as Airflow runs it (Cosmos) -----------------------------------------------------------


def dbt_main(after_build: Callable[[Settings], None] | None = None) -> None:
    """The body of `urbanflow-dbt <dbt args>` (`connectors.orchestration.dbt`), the dbt
    executable the transform DAG gives Cosmos (DESIGN.md §5).

    Every command runs under the warehouse lock, so Cosmos's tasks and the sink never write at
    once. A `build` with no selection of its own (Cosmos's one producer task) builds what
    `refresh_warehouse` would, plans and records it under the same lock hold, then calls
    `after_build` still holding it; it does nothing when nothing new landed (Cosmos's node tasks
    of what it did not build are skipped by the DAG). Any other command (a node task's re-run)
    runs as given."""
    args = sys.argv[1:]
    settings = Settings.from_env()
    os.environ["UF_WAREHOUSE_PATH"] = str(settings.warehouse_path)
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    try:
        with warehouse_lock(settings.warehouse_path):
            if args[:1] != ["build"] or {"--select", "-s", "--selector"} & set(args):
                declare_raw_tables(settings)  # a model task's own run, as Cosmos gives it
                sys.exit(0 if _invoke_dbt(args) else 1)
            planned = _plan_locked(settings, full_refresh="--full-refresh" in args)
            print(f"urbanflow-dbt: {planned.plan.reason}", flush=True)
            if planned.plan.selectors == []:
                return
            if not _invoke_dbt([*args, *WAREHOUSE_BUILD_FLAGS, *planned.plan.selection_args]):
                sys.exit(1)
            _record_locked(settings, planned)
            if after_build is not None:
                after_build(settings)
    except UrbanFlowError as exc:
        print(f"urbanflow-dbt: {exc}", file=sys.stderr)
        sys.exit(2)
