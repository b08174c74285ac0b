"""Real Airflow (api-server, scheduler, dag-processor, triggerer via infra/airflow/airflowctl),
real broker, real sink service (infra/sink/sinkctl), real partner API, real dbt and quality gate:
events pushed through the partner API and a source DAG's events reach serving.duckdb through the
batch-landed asset with no manual trigger of the transform DAG, and still through the fallback
timetable after the triggerer was killed; `urbanflow demo --airflow` publishes, then a second run
sends and builds nothing; start twice is harmless, stop leaves no process behind.

Every wait polls for a condition with a generous deadline; nothing assumes a speed. Airflow's
ports are picked free at start, so the suite runs next to `make up` and other test runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import secrets_registry
from api_harness import ApiServer, result_event

from connectors.api.partners import PartnerStore
from connectors.kafka.topics import apply_topics, load_topics
from connectors.orchestration.client import AirflowClient
from connectors.settings import Settings
from connectors.status import broker_status, served_rows

# each test starts Airflow (a minute on a busy machine) and waits on real DAG runs
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
AIRFLOWCTL = REPO / "infra" / "airflow" / "airflowctl"
SINKCTL = REPO / "infra" / "sink" / "sinkctl"
BIN = Path(sys.executable).parent
AIRFLOW_BIN = Path(os.environ.get("UF_AIRFLOW_BIN") or BIN / "airflow")
DEADLINE_S = 600.0  # for one wait; the test's own timeout is above

if importlib.util.find_spec("airflow") is None or not AIRFLOW_BIN.exists():
    pytest.skip(
        f"Airflow is not installed in this venv ({AIRFLOW_BIN} missing; install the "
        "`orchestration` extra)",
        allow_module_level=True,
    )

TRANSFORM = "urbanflow_transform"
SCHEDULES = """\
defaults: {owner: urbanflow-test, retries: 1, retry_delay: 10s, timeout: 10m, tags: [test]}
sources:
  sdmx:
    schedule: null
    inputs: [sample_data/sdmx]
    doc: The sample statistics offices' feeds, run only when triggered.
"""


def wait_for(what: str, condition: Callable[[], Any], deadline_s: float = DEADLINE_S) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {deadline_s:.0f} s waiting for {what}")
        time.sleep(2)


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (kept bound until all are chosen, so they differ)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def processes_of(var_dir: Path) -> list[str]:
    """Live processes started for this var dir: AIRFLOW_HOME or UF_VAR_DIR in their environment."""
    markers = {f"AIRFLOW_HOME={var_dir / 'airflow'}".encode(), f"UF_VAR_DIR={var_dir}".encode()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == str(os.getpid()):
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile, or not ours
            continue
        if markers & environ and "pytest" not in cmdline:
            found.append(f"{entry.name} {cmdline}")
    return found


def ps_groups() -> set[int]:
    """Process groups alive now, as `ps` lists them."""
    out = subprocess.run(["ps", "-A", "-o", "pgid="], capture_output=True, text=True, check=True)
    return {int(line) for line in out.stdout.split()}


def tracked_groups(var_dir: Path) -> dict[str, int]:
    """The process groups airflowctl and sinkctl recorded (pid file = group id)."""
    files = [*sorted((var_dir / "airflow" / "run").glob("*.pid")), var_dir / "sink" / "sink.pid"]
    return {f.stem: int(f.read_text()) for f in files if f.exists()}


def mart_rows(serving: Path, table: str | None = None) -> int:
    if not serving.exists():
        return 0
    with duckdb.connect(str(serving), read_only=True) as con:
        tables = [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
            if table is None or name == table
        ]
        return sum(
            con.execute(f'select count(*) from marts."{name}"').fetchall()[0][0] for name in tables
        )


def partner_results_served(serving: Path) -> int:
    """Partner-result events in serving.duckdb, as its health mart counts the raw table."""
    return served_rows(serving, "partner_push_result_v1") or 0


def push_through_the_api(running: dict[str, Any], count: int) -> None:
    """`count` partner results posted to `urbanflow api serve` (a new partner's key) on the stack's
    var dir and broker; each answered 202. The API is stopped again: the sink has the events."""
    slug = f"airflow-{uuid.uuid4().hex[:8]}"
    partner, key = PartnerStore(running["var_dir"] / "partners.sqlite").add(slug)
    secrets_registry.register(key, "partner API key")
    env = {name: value for name, value in running["env"].items() if name.startswith("UF_")}
    server = ApiServer(env, running["var_dir"] / "api.log").start()
    try:
        events = [result_event(f"{slug}-{n}", partner.default_source) for n in range(count)]
        answer = server.post(key, json={"events": events})
        assert answer.status_code == 202, answer.text
    finally:
        server.stop()


def ctl(script: Path, action: str, env: dict[str, str], timeout: float = 600):
    return subprocess.run(
        [str(script), action], env=env, capture_output=True, text=True, timeout=timeout
    )


@contextlib.contextmanager
def running_stack(
    base_dir: Path, kafka_bootstrap: str, template: Path, **extra_env: str
) -> Iterator[dict[str, Any]]:
    """Airflow on free ports in its own var dir, and the sink service, both stopped at the end;
    the warehouse and serving.duckdb copied from `template` (`published_empty_warehouse`)."""
    run_id = uuid.uuid4().hex[:8]
    var_dir = base_dir / f"airflow-test-{run_id}"
    var_dir.mkdir(parents=True)
    schedules = var_dir / "sources.yml"
    schedules.write_text(SCHEDULES, encoding="utf-8")
    password = f"test-{uuid.uuid4().hex}"
    secrets_registry.register(password, "Airflow admin password")
    port, scheduler_log_port, triggerer_log_port = free_ports(3)
    env = {
        **os.environ,
        "UF_VAR_DIR": str(var_dir),
        "UF_WAREHOUSE_PATH": str(var_dir / "warehouse.duckdb"),
        "UF_STATE_DIR": str(var_dir / "state"),
        "UF_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "UF_SINK_GROUP": f"test-sink-{run_id}",
        "UF_SINK_BATCH_MAX_MS": "500",
        "UF_AIRFLOW_KAFKA_GROUP": f"test-airflow-{run_id}",
        "UF_AIRFLOW_PORT": str(port),
        "UF_AIRFLOW_URL": f"http://127.0.0.1:{port}",
        "UF_AIRFLOW_SCHEDULER_LOG_PORT": str(scheduler_log_port),
        "UF_AIRFLOW_TRIGGERER_LOG_PORT": str(triggerer_log_port),
        "UF_AIRFLOW_BIN": str(AIRFLOW_BIN),
        "UF_URBANFLOW_BIN": str(BIN / "urbanflow"),
        "UF_AIRFLOW_ADMIN_PASSWORD": password,
        "UF_AIRFLOW_SOURCE_SCHEDULES": str(schedules),
        "UF_AIRFLOW_START_TIMEOUT": "300",
        **extra_env,
    }
    apply_topics(kafka_bootstrap, load_topics(Settings.from_env().topics_file))
    for name in ("warehouse.duckdb", "serving.duckdb"):
        shutil.copyfile(template / name, var_dir / name)
    try:
        started = ctl(AIRFLOWCTL, "start", env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"url:      http://127.0.0.1:{port}" in started.stdout
        secrets_registry.register_files(var_dir / "airflow" / "secrets", "*", kind="Airflow secret")
        sink = ctl(SINKCTL, "start", env, timeout=120)
        assert sink.returncode == 0, sink.stdout + sink.stderr
        yield {
            "env": env,
            "var_dir": var_dir,
            "serving": var_dir / "serving.duckdb",
            "api": AirflowClient(f"http://127.0.0.1:{port}", password),
            "start_output": started.stdout,
        }
    finally:
        ctl(SINKCTL, "stop", env, timeout=120)
        ctl(AIRFLOWCTL, "stop", env, timeout=300)


@pytest.fixture(scope="module")
def published_empty_warehouse(tmp_path_factory, kafka_bootstrap: str) -> Path:
    """A warehouse built and published once with nothing landed, as a running platform's is: the
    runs under test then build what their events feed (the full first build is
    `test_airflow_dags_test_...`'s). Built once; every stack starts from a copy."""
    folder = tmp_path_factory.mktemp("published-empty-warehouse")
    env = {
        **os.environ,
        "UF_VAR_DIR": str(folder),
        "UF_WAREHOUSE_PATH": str(folder / "warehouse.duckdb"),
        "UF_STATE_DIR": str(folder / "state"),
        "UF_KAFKA_BOOTSTRAP": kafka_bootstrap,
    }
    for command in (["refresh", "--full-refresh"], ["publish"]):  # full: nothing landed yet
        done = subprocess.run(
            [str(BIN / "urbanflow"), *command], env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return folder


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory, kafka_bootstrap: str, published_empty_warehouse: Path
) -> Iterator[dict[str, Any]]:
    """One stack for the tests below that tolerate each other's runs (the last one stops it).
    Its fallback runs once a day, so only the asset wakes the transform DAG while they run."""
    base = Path(os.environ.get("UF_VAR_DIR") or tmp_path_factory.mktemp("airflow"))
    with running_stack(
        base, kafka_bootstrap, published_empty_warehouse, UF_TRANSFORM_FALLBACK_CRON="0 3 * * *"
    ) as running:
        yield running


def wait_registered(api: AirflowClient) -> None:
    wait_for(
        "the DAGs to be registered",
        lambda: (
            api.dag_ids()
            >= {"urbanflow_source_sdmx", "urbanflow_transform", "urbanflow_pipeline_health"}
        ),
    )


def trigger_sdmx(api: AirflowClient) -> str:
    run_id = f"test__{uuid.uuid4().hex}"
    api.trigger("urbanflow_source_sdmx", run_id)
    wait_for(
        f"the sdmx source DAG run {run_id} to succeed",
        lambda: api.run("urbanflow_source_sdmx", run_id)["state"] == "success",
    )
    return run_id


def sink_caught_up(running: dict[str, Any]) -> bool:
    """Has the stack's sink landed every event on its topics (committed offsets at the ends)?"""
    settings = Settings.from_env()
    report = broker_status(
        running["env"]["UF_KAFKA_BOOTSTRAP"],
        load_topics(settings.topics_file),
        running["env"]["UF_SINK_GROUP"],
    )
    return report.broker_ok and all(p.lag <= 0 for p in report.lag)


def test_after_the_triggerer_is_killed_events_still_reach_serving_via_the_fallback(
    tmp_path_factory, kafka_bootstrap, published_empty_warehouse
):
    """The transform DAG is paused while the events are pushed and landed, so the first fallback
    run after it is unpaused must carry them: no race with minute ticks that come too early. (A run
    started with the triggerer gone keeps its slot until its node reports time out.)"""
    base = Path(os.environ.get("UF_VAR_DIR") or tmp_path_factory.mktemp("airflow"))
    # the fallback every minute, so the first tick after the unpause comes within a minute
    with running_stack(
        base, kafka_bootstrap, published_empty_warehouse, UF_TRANSFORM_FALLBACK_CRON="* * * * *"
    ) as running:
        api: AirflowClient = running["api"]
        wait_registered(api)
        api.pause(TRANSFORM)  # a run a tick started before this plans again once unpaused
        group = tracked_groups(running["var_dir"])["triggerer"]
        os.killpg(group, signal.SIGKILL)  # no clean shutdown: as a crash or an OOM kill would
        wait_for("the triggerer's process group to be gone", lambda: group not in ps_groups())

        pushed = 5
        push_through_the_api(running, pushed)
        trigger_sdmx(api)
        wait_for("the sink to land every event", lambda: sink_caught_up(running))
        api.unpause(TRANSFORM)

        def published_by_the_fallback() -> dict | None:
            for run in api.runs(TRANSFORM):
                # published is enough: the run's node tasks wait for the triggerer that is gone
                if (
                    run["run_type"] == "scheduled"
                    and api.task_states(TRANSFORM, run["dag_run_id"]).get("gate_and_publish")
                    == "success"
                    and mart_rows(running["serving"], "fct_city_indicator") > 0  # the sdmx series
                    and partner_results_served(running["serving"]) >= pushed
                ):
                    return run
            return None

        wait_for(
            "a fallback (scheduled) transform run to publish the sdmx series and the pushes",
            published_by_the_fallback,
        )
        assert group not in ps_groups(), "the killed triggerer came back by itself"
        runs = api.runs(TRANSFORM)
        woken = [r for r in runs if r["run_type"] == "asset_triggered"]
        assert woken == [], f"a wake-up arrived with no triggerer: {woken}"


def test_the_airflow_demo_publishes_through_the_batch_landed_asset_then_sends_and_builds_nothing(
    stack, monkeypatch
):
    """Events pushed through the partner API, the sdmx source DAG's and the demo's direct sends
    reach serving.duckdb through the batch-landed asset, with no manual trigger of the transform
    DAG; a second demo sends and builds nothing."""
    from rich.console import Console

    from connectors.orchestration.demo import run_airflow_demo
    from connectors.settings import OrchestrationSettings

    api: AirflowClient = stack["api"]
    wait_registered(api)
    # A scheduled run Airflow starts when it first sees the DAG would pick the events up too.
    wait_for(
        "the transform DAG to be idle",
        lambda: (
            not any(r["state"] in ("queued", "running") for r in api.runs("urbanflow_transform"))
        ),
    )
    pushed = 5
    push_through_the_api(stack, pushed)
    for name, value in stack["env"].items():
        if name.startswith("UF_"):
            monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    out = io.StringIO()
    console = Console(file=out, width=400)

    first = run_airflow_demo(settings, console, orchestration=OrchestrationSettings.from_env())
    text = out.getvalue()
    assert first.sent > 0 and first.transform_run is not None, text
    # the run published; its node tasks may still be reporting when the demo ends
    assert first.transform_run["state"] == "success" or first.transform_run["state"].startswith(
        "published"
    )
    assert set(first.source_runs) == {"urbanflow_source_sdmx"}
    sent_results = dict(first.runs)["partner results"].sent
    assert sent_results > 0
    # the demo's partner results and the ones pushed through the API before it
    assert partner_results_served(stack["serving"]) >= sent_results + pushed
    assert first.marts["marts.fct_city_indicator"] > 0  # the sdmx DAG's series
    assert api.base in text and "password from UF_AIRFLOW_ADMIN_PASSWORD" in text
    runs = api.runs("urbanflow_transform")
    assert not any(r["run_type"] == "manual" for r in runs)
    assert any(
        r["run_type"] == "asset_triggered"
        and api.task_states("urbanflow_transform", r["dag_run_id"]).get("gate_and_publish")
        == "success"
        for r in runs
    ), f"no asset-triggered transform run published: {runs}"
    events = api.asset_events()
    payloads = [e["extra"]["payload"] for e in events if e["extra"].get("from_trigger")]
    assert payloads and all(p["rows"] > 0 for p in payloads)
    assert any("stats_sdmx_observation_v1" in p["tables"] for p in payloads)

    out.truncate(0)
    second = run_airflow_demo(settings, console, orchestration=OrchestrationSettings.from_env())
    text = out.getvalue()
    assert second.sent == 0 and second.loaded == 0, text
    assert second.transform_run is None
    assert "nothing new was sent" in text and "had nothing to" in text
    assert second.marts == first.marts
    # A late wake-up from the first run's batches may still start a transform run (the watcher is
    # a wake-up call, not a ledger): what matters is that it had nothing to send or change.


def test_airflow_dags_test_of_the_transform_dag_publishes_what_the_warehouse_holds(
    tmp_path, kafka_bootstrap
):
    """`airflow dags test urbanflow_transform` (the whole DAG in one process, Cosmos's watcher
    mode included) on a loaded warehouse: serving.duckdb holds the marts dbt built, totals equal.
    (That a run whose only new input is the gate's results does not publish again is
    `tests/unit/test_orchestration.py`'s.)"""
    run_id = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "UF_VAR_DIR": str(tmp_path / "var"),
        "UF_WAREHOUSE_PATH": str(tmp_path / "var" / "warehouse.duckdb"),
        "UF_STATE_DIR": str(tmp_path / "var" / "state"),
        "UF_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "UF_SINK_GROUP": f"test-dags-test-{run_id}",
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(tmp_path / "cosmos"),
        "GX_ANALYTICS_ENABLED": "false",
    }

    def run(*args: str, timeout: float = 1800) -> str:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{args}: {done.stdout[-4000:]}{done.stderr[-4000:]}"
        return done.stdout + done.stderr

    urbanflow = str(BIN / "urbanflow")
    apply_topics(kafka_bootstrap, load_topics(Settings.from_env().topics_file))
    run(urbanflow, "source", "run", "sdmx", str(REPO / "sample_data" / "sdmx"))
    run(urbanflow, "sink", "run", "--until-caught-up", "--no-progress")
    run(str(AIRFLOW_BIN), "db", "migrate")
    run(
        str(BIN / "python"),
        "-c",
        "from connectors.orchestration.tasks import write_dbt_manifest;"
        "from connectors.settings import OrchestrationSettings;"
        "write_dbt_manifest(OrchestrationSettings.from_env())",
    )
    first = run(str(AIRFLOW_BIN), "dags", "test", "urbanflow_transform")
    assert "urbanflow-dbt: first build of this warehouse" in first

    warehouse, serving = tmp_path / "var" / "warehouse.duckdb", tmp_path / "var" / "serving.duckdb"
    total = "select count(*), sum(value) from marts.fct_city_indicator"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        built = con.execute(total).fetchall()[0]
    with duckdb.connect(str(serving), read_only=True) as con:
        published = con.execute(total).fetchall()[0]
    assert built[0] > 0 and published == built


def test_start_twice_is_harmless_and_stop_leaves_no_process(stack):
    """`make up` twice and `make down`, at the level of the scripts it calls. Runs last on the
    module's stack: it stops it."""
    env, var_dir = stack["env"], stack["var_dir"]
    groups = tracked_groups(var_dir)
    assert set(groups) == {"api-server", "scheduler", "dag-processor", "triggerer", "sink"}
    assert set(groups.values()) <= ps_groups()

    again = ctl(AIRFLOWCTL, "start", env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    sink_again = ctl(SINKCTL, "start", env, timeout=120)
    assert sink_again.returncode == 0 and "already running" in sink_again.stdout, sink_again
    assert tracked_groups(var_dir) == groups, "a second start started other processes"
    status = ctl(AIRFLOWCTL, "status", env, timeout=60)
    assert status.returncode == 0 and "healthy" in status.stdout, status.stdout
    assert processes_of(var_dir), "the scripts started no tracked process"

    assert ctl(SINKCTL, "stop", env, timeout=120).returncode == 0
    stopped = ctl(AIRFLOWCTL, "stop", env, timeout=300)
    assert stopped.returncode == 0, stopped.stderr
    assert processes_of(var_dir) == []
    assert not set(groups.values()) & ps_groups(), "a stopped process group is still alive"
    assert ctl(AIRFLOWCTL, "status", env, timeout=60).returncode == 1
    assert ctl(SINKCTL, "status", env, timeout=60).returncode == 1
