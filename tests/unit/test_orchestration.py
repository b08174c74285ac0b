"""The orchestration package's pure logic: the schedule file and the watcher's apply_function."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from connectors.orchestration import health, watcher
from connectors.orchestration.health import freshness_rows, health_rows
from connectors.orchestration.schedules import (
    ScheduleFileError,
    load_schedules,
    parse_schedules,
    run_overrides,
)
from connectors.orchestration.tasks import should_publish

REPO = Path(__file__).resolve().parents[2]
WAREHOUSE = "/srv/var/warehouse.duckdb"


def landed(rows: dict[str, int], dead: int = 0, warehouse: str = WAREHOUSE, **event) -> bytes:
    data = {
        "batch_id": "b1",
        "warehouse": warehouse,
        "rows_by_table": rows,
        "dead_lettered": dead,
        "offsets": [{"topic": "stats.sdmx.observation.v1", "partition": 0, "next_offset": 7}],
    }
    return json.dumps(
        {"specversion": "1.0", "id": "e1", "type": watcher.BATCH_LANDED_TYPE, "data": data, **event}
    ).encode()


class Message:
    def __init__(self, value: bytes | None):
        self._value = value

    def value(self) -> bytes | None:
        return self._value

    def topic(self) -> str:
        return watcher.BATCH_LANDED_TOPIC

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 41


# --- watcher --------------------------------------------------------------------------------


def test_watcher_constants_match_what_the_sink_emits():
    from connectors.sink import service

    assert watcher.BATCH_LANDED_TOPIC == service.BATCH_LANDED_TOPIC
    assert watcher.BATCH_LANDED_TYPE == service.BATCH_LANDED_TYPE


def test_watcher_apply_function_is_importable_by_its_dotted_name():
    import importlib

    module, name = watcher.APPLY_FUNCTION.rsplit(".", 1)
    assert getattr(importlib.import_module(module), name) is watcher.batch_landed


def test_a_landed_batch_wakes_the_transform_dag_with_a_small_payload():
    payload = watcher.batch_landed(Message(landed({"stats_sdmx_observation": 3, "x": 0})))
    assert payload == {
        "batch_id": "b1",
        "event_id": "e1",
        "time": "",
        "rows": 3,
        "dead_lettered": 0,
        "tables": ["stats_sdmx_observation"],
        "kafka": {"topic": watcher.BATCH_LANDED_TOPIC, "partition": 0, "offset": 41},
    }
    json.dumps(payload)  # the asset event stores it as JSON


def test_a_batch_of_dead_letters_only_still_wakes_the_dag():
    assert watcher.batch_landed(Message(landed({}, dead=2)))["dead_lettered"] == 2


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps({"type": "org.urbanflow.other.v1", "data": {}}).encode(),
        json.dumps({"type": watcher.BATCH_LANDED_TYPE, "data": "x"}).encode(),
        landed({}),
        landed({"t": 0}, dead=0),
    ],
)
def test_messages_that_landed_nothing_or_are_not_batch_events_are_skipped(value):
    assert watcher.batch_landed(Message(value)) is None


def test_batches_of_another_warehouse_are_skipped_when_the_watcher_names_one():
    message = Message(landed({"t": 1}, warehouse="/tmp/other/warehouse.duckdb"))
    assert watcher.batch_landed(message, warehouse=WAREHOUSE) is None
    assert watcher.batch_landed(message) is not None
    same = Message(landed({"t": 1}, warehouse="/srv/var/../var/warehouse.duckdb"))
    assert watcher.batch_landed(same, warehouse=WAREHOUSE) is not None


# --- schedule file -------------------------------------------------------------------------


def doc(**entry) -> dict:
    base = {"schedule": "@daily", "doc": "A source."}
    return {"sources": {"sdmx": {**base, **entry}}}


def test_the_repo_schedule_file_is_valid_and_names_known_sources_with_valid_settings():
    from connectors.orchestration.schedules import check_source_configs

    schedules = load_schedules(REPO / "dags" / "sources.yml")
    assert schedules, "dags/sources.yml declares no source"
    assert check_source_configs(schedules, REPO) == []
    assert len({s.dag_id for s in schedules}) == len(schedules)


def test_an_entry_inherits_the_defaults_and_merges_tags():
    document = {
        "defaults": {"owner": "data", "retries": 4, "retry_delay": "1m", "tags": ["source"]},
        **doc(tags=["stats", "source"], timeout=600),
    }
    (entry,) = parse_schedules(document, "sources.yml")
    assert (entry.owner, entry.retries, entry.source) == ("data", 4, "sdmx")
    assert entry.retry_delay == timedelta(minutes=1)
    assert entry.timeout == timedelta(seconds=600)
    assert entry.tags == ("source", "stats")
    assert entry.dag_id == "urbanflow_source_sdmx"


def test_cron_expressions_presets_and_manual_schedules_are_accepted():
    assert parse_schedules(doc(schedule="0  5 * * 1-5"), "f")[0].schedule == "0 5 * * 1-5"
    assert parse_schedules(doc(schedule="@hourly"), "f")[0].schedule == "@hourly"
    assert parse_schedules(doc(schedule=None), "f")[0].schedule is None


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"schedule": "@dayly"}, "sources.yml: sources.sdmx.schedule: unknown preset '@dayly'"),
        ({"schedule": "5 * *"}, "sources.yml: sources.sdmx.schedule: '5 * *' is not a cron"),
        ({"retries": "three"}, "sources.yml: sources.sdmx.retries: Expected `int | null`"),
        ({"retries": -1}, "sources.yml: sources.sdmx.retries: Expected `int` >= 0"),
        ({"retry_delay": "5 minutes"}, "sources.sdmx.retry_delay: '5 minutes' is not a duration"),
        ({"timeout": 0}, "sources.sdmx.timeout: a duration must be positive"),
        ({"retry_delay": "1h", "max_retry_delay": "5m"}, "max_retry_delay: 0:05:00 is shorter"),
        ({"schedul": "@daily"}, "sources.yml: sources.sdmx: Object contains unknown field"),
        ({"doc": ""}, "sources.yml: sources.sdmx.doc: Expected `str` of length >= 1"),
        ({"tags": "stats"}, "sources.yml: sources.sdmx.tags: Expected `array`"),
    ],
)
def test_an_invalid_entry_names_the_file_and_key(entry, expected):
    with pytest.raises(ScheduleFileError) as raised:
        parse_schedules(doc(**entry), "sources.yml")
    assert expected in str(raised.value)


def test_a_missing_doc_or_schedule_is_refused():
    with pytest.raises(
        ScheduleFileError, match=r"sources.sdmx: Object missing required field `doc`"
    ):
        parse_schedules({"sources": {"sdmx": {"schedule": "@daily"}}}, "f")
    with pytest.raises(ScheduleFileError, match="missing required field `schedule`"):
        parse_schedules({"sources": {"sdmx": {"doc": "x"}}}, "f")


def test_bad_keys_defaults_and_empty_files_are_refused(tmp_path):
    with pytest.raises(ScheduleFileError, match=r"sources\.Bad-Name: an entry's key names its DAG"):
        parse_schedules({"sources": {"Bad-Name": {"schedule": None, "doc": "x"}}}, "f")
    with pytest.raises(ScheduleFileError, match=r"f: defaults.owner: Expected `str`"):
        parse_schedules({"defaults": {"owner": 1}, **doc()}, "f")
    with pytest.raises(ScheduleFileError, match="no entry"):
        parse_schedules({"sources": {}}, "f")
    with pytest.raises(ScheduleFileError, match="unknown field `source`"):
        parse_schedules({"source": {}}, "f")
    path = tmp_path / "sources.yml"
    with pytest.raises(ScheduleFileError, match=f"{path} does not exist"):
        load_schedules(path)
    path.write_text("sources: [unclosed", encoding="utf-8")
    with pytest.raises(ScheduleFileError, match=f"{path}: not valid YAML"):
        load_schedules(path)
    path.write_text("- a list", encoding="utf-8")
    with pytest.raises(ScheduleFileError, match="expected a mapping"):
        load_schedules(path)


def test_unknown_sources_and_bad_settings_are_reported_per_entry(tmp_path):
    from connectors.orchestration.schedules import check_source_configs

    schedules = parse_schedules(
        {
            "sources": {
                "nowhere": {"schedule": None, "doc": "x"},
                "sdmx": {"schedule": None, "doc": "x", "config": {"timeout_s": "soon"}},
            }
        },
        "f",
    )
    problems = check_source_configs(schedules, tmp_path)
    assert problems[0].startswith("sources.nowhere: unknown source 'nowhere'")
    assert problems[1].startswith("sources.sdmx: source 'sdmx' config")


def test_relative_inputs_resolve_under_home_and_urls_stay_as_they_are(tmp_path):
    (entry,) = parse_schedules(
        doc(inputs=["sample_data/sdmx", "https://x.org/data", "/abs/file"], config={"a": 1}), "f"
    )
    assert run_overrides(entry, tmp_path) == {
        "a": 1,
        "inputs": [str(tmp_path / "sample_data/sdmx"), "https://x.org/data", "/abs/file"],
    }


# --- tasks' pure parts ---------------------------------------------------------------------


def test_publish_follows_data_changes_not_the_gates_own_results():
    assert should_publish({"data_changed": True}, serving_exists=True)
    assert not should_publish({"data_changed": False, "built": True}, serving_exists=True)
    assert should_publish({"data_changed": False}, serving_exists=False)


def test_a_health_snapshot_sums_lag_per_topic_and_counts_dead_letters():
    lag = SimpleNamespace
    report = SimpleNamespace(
        broker_ok=True,
        lag=[lag(topic="a", lag=2), lag(topic="a", lag=3), lag(topic="b", lag=0)],
        topics={"a": 10, "a.dlq": 1, "b": 4},
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert health_rows(report, {"raw.a": 7}, now) == [
        (now, "broker_up", "broker", 1),
        (now, "consumer_lag", "a", 5),
        (now, "consumer_lag", "b", 0),
        (now, "dead_letters", "a.dlq", 1),
        (now, "raw_rows", "raw.a", 7),
    ]


FRESHNESS_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dbt_freshness"


def _recorded_freshness() -> tuple[list[dict], dict]:
    """A real `dbt source freshness` run (JSON file log + sources.json) on a warehouse with SDMX
    rows ten days old, nothing else loaded, no quality results table, fresh health snapshots."""
    log = (FRESHNESS_FIXTURES / "dbt.log").read_text(encoding="utf-8").splitlines()
    artifact = json.loads((FRESHNESS_FIXTURES / "sources.json").read_text(encoding="utf-8"))
    return [json.loads(line) for line in log], artifact


def test_freshness_rows_keep_dbts_verdict_age_and_thresholds_per_source_table():
    events, artifact = _recorded_freshness()
    now = datetime(2026, 12, 1, tzinfo=UTC)
    rows = {(r[1], r[2]): r for r in freshness_rows(events, artifact, now)}

    assert len(rows) == 14 and {r[0] for r in rows.values()} == {now}
    _, _, _, status, loaded_at, age, warn_s, error_s, error = rows[
        ("sdmx", "stats_sdmx_observation_v1")
    ]
    assert (status, warn_s, error_s, error) == ("warn", 7 * 86400, 35 * 86400, None)
    assert loaded_at == datetime.fromisoformat("2026-11-21T13:15:16.930558+00:00")
    assert age == pytest.approx(10 * 86400, abs=60)
    assert rows[("orchestration", "_pipeline_health")][3:4] == ("pass",)
    assert rows[("orchestration", "_pipeline_health")][6:8] == (3600, 86400)


def test_a_table_never_loaded_is_an_error_with_no_load_time_not_year_one():
    events, artifact = _recorded_freshness()
    rows = {(r[1], r[2]): r for r in freshness_rows(events, artifact, datetime.now(UTC))}
    gdacs = rows[("gdacs", "hazard_gdacs_event_v1")]
    assert gdacs[3:6] == ("error", None, None)
    assert gdacs[6:8] == (30 * 86400, 90 * 86400)


def test_a_table_dbt_could_not_query_is_a_runtime_error_with_dbts_message():
    """sources.json leaves such tables out; the JSON log still names them and the error."""
    events, artifact = _recorded_freshness()
    assert "source.urbanflow.quality._quality_results" not in {
        r["unique_id"] for r in artifact["results"]
    }
    rows = {(r[1], r[2]): r for r in freshness_rows(events, artifact, datetime.now(UTC))}
    _, _, _, status, loaded_at, age, warn_s, error_s, error = rows[("quality", "_quality_results")]
    assert (status, loaded_at, age, warn_s, error_s) == ("runtime error", None, None, None, None)
    assert "Table with name _quality_results does not exist" in error
    assert sorted(r[3] for r in rows.values()).count("runtime error") == 1


def test_dbts_on_run_start_creates_the_health_tables_exactly_as_the_dag_code_does():
    """The macro behind dbt's on-run-start and health.TABLES_DDL: same tables, same columns."""
    import duckdb
    import jinja2

    macros = Path(__file__).resolve().parents[2] / "dbt_project" / "macros"
    text = (macros / "pipeline_health_tables.sql").read_text(encoding="utf-8")
    dbt_sql = jinja2.Environment().from_string(text + "{{ create_pipeline_health_tables() }}")

    def columns(ddl: str) -> dict[str, list[tuple]]:
        con = duckdb.connect()
        con.execute(ddl)
        con.execute(ddl)  # idempotent: every writer and every dbt run executes it
        tables = [t.split(".")[1] for t in health.TABLES]
        return {t: con.execute(f"describe raw.{t}").fetchall() for t in tables}

    assert columns(dbt_sql.render()) == columns(health.TABLES_DDL)
    assert "run_id" in [c[0] for c in columns(health.TABLES_DDL)["_run_failures"]]


def test_a_failure_table_from_before_run_ids_gains_the_column_and_takes_new_rows(tmp_path):
    import dataclasses

    import duckdb

    from connectors.settings import Settings

    settings = dataclasses.replace(Settings.from_env(), warehouse_path=tmp_path / "w.duckdb")
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(
            "create schema raw; create table raw._run_failures (failed_at timestamptz not null,"
            " dag_id varchar not null, task_id varchar not null, attempt integer not null,"
            " source varchar, error varchar not null);"
            "insert into raw._run_failures values (now(), 'd', 't', 1, null, 'old')"
        )
    assert health.record_run_failure("d", "t", 2, "new", settings=settings, run_id="r1")
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "select attempt, error, run_id from raw._run_failures order by attempt"
        ).fetchall()
    assert rows == [(1, "old", None), (2, "new", "r1")]


def test_a_failure_is_not_recorded_but_reported_when_the_warehouse_lock_is_busy(tmp_path, capsys):
    import dataclasses

    from connectors.settings import Settings
    from connectors.warehouse import warehouse_lock

    settings = dataclasses.replace(Settings.from_env(), warehouse_path=tmp_path / "w.duckdb")
    with warehouse_lock(settings.warehouse_path):  # the sink or dbt, busy for longer
        recorded = health.record_run_failure(
            "d", "t", 1, "e", settings=settings, lock_timeout_s=0.2
        )
    assert recorded is False
    assert "could not record the failure of d.t" in capsys.readouterr().out


def test_the_admin_password_comes_from_the_environment_then_the_generated_file(
    tmp_path, monkeypatch
):
    from connectors.orchestration.client import AirflowError, admin_password
    from connectors.settings import OrchestrationSettings

    monkeypatch.setenv("UF_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("UF_AIRFLOW_ADMIN_PASSWORD", raising=False)
    settings = OrchestrationSettings.from_env()
    with pytest.raises(AirflowError, match="admin_password does not exist"):
        admin_password(settings)
    (tmp_path / "airflow").mkdir()
    (tmp_path / "airflow" / "admin_password").write_text("from-the-file\n")
    assert admin_password(settings) == "from-the-file"
    monkeypatch.setenv("UF_AIRFLOW_ADMIN_PASSWORD", "from-the-env")
    assert admin_password(settings) == "from-the-env"


def test_the_airflow_demo_module_imports_nothing_from_airflow():
    import subprocess
    import sys

    code = (
        "import sys, connectors.orchestration.demo, connectors.orchestration.status;"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
