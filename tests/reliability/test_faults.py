"""Faults injected into a running pipeline (issue #13): a broker, a sink, dbt, the quality gate
and publish killed with SIGKILL; the warehouse lock held for a minute; a full disk; and the
misconfigurations an operator makes. Each test asserts what a user would check afterwards (rows,
distinct ids, offsets, dead letters, the served file's bytes) and prints its figures (`-s`).

Waits poll a condition with a generous timeout (WAIT_S); no assertion depends on how fast this
machine is. Randomness is seeded (SEED), counts are capped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml
from sink_harness import (
    CLI,
    DYING_SINK,
    WAIT_S,
    Broker,
    bad_records,
    end_offsets,
    loaded_so_far,
    produce,
    raw_counts,
    read_topic,
    sink_process,
    stored_offsets,
    wait_for,
    write_topics_file,
)

from connectors.errors import DeliveryError, UrbanFlowError
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import TopicSpec, apply_topics, load_topics
from connectors.samples.synthetic import OBSERVATION_TYPE, observation_events
from connectors.settings import Settings
from connectors.sink.service import BATCH_LANDED_TOPIC
from connectors.status import served_rows
from connectors.warehouse import lock_path, warehouse_lock

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SEED = 13
#: This suite's own brokers: the one a test kills and restarts on this port (its controller on the
#: next), the dbt/gate/publish test's on the two after.
FAULT_BROKER_PORT = int(os.environ.get("UF_TEST_FAULT_KAFKA_PORT", "29621"))
SDMX_TOPIC = "stats.sdmx.observation.v1"


def report(test: str, started: float, **figures: object) -> None:
    """One line of figures per test, shown with `-s` (or in the captured output with -rA)."""
    shown = ", ".join(
        f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in figures.items()
    )
    print(f"\n[faults] {test}: {shown}, seconds={time.monotonic() - started:.1f}", flush=True)


def new_topic(bootstrap: str, partitions: int = 3) -> TopicSpec:
    """A fresh observation topic with its DLQ twin, and the batch-landed topic the sink needs,
    on a broker of this suite's own (on the session's broker, use the `observation_topic`
    fixture)."""
    spec = TopicSpec(
        name=f"test.{uuid.uuid4().hex[:10]}.observation.v1",
        partitions=partitions,
        retention_ms=3_600_000,
        event_types=(OBSERVATION_TYPE,),
        sink=True,
        dlq=True,
        dlq_retention_ms=3_600_000,
    )
    landed = [
        s for s in load_topics(Settings.from_env().topics_file) if s.name == BATCH_LANDED_TOPIC
    ]
    apply_topics(bootstrap, [spec, *landed])
    return spec


def event_ids(warehouse: Path, spec: TopicSpec) -> tuple[int, set[str]]:
    """(rows, the set of event ids) in the topic's raw table."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        ids = [i for (i,) in con.execute(f"select event_id from raw.{spec.raw_table}").fetchall()]
    return len(ids), set(ids)


def wait_for_text(what: str, path: Path, pattern: str, *, proc: subprocess.Popen) -> re.Match:
    """Wait until the log at `path` matches `pattern`; fail showing the log if `proc` ends first."""
    found: list[re.Match] = []

    def seen() -> bool:
        if proc.poll() is not None and not re.search(pattern, path.read_text()):
            pytest.fail(f"exited ({proc.returncode}) before {what}:\n{path.read_text()[-3000:]}")
        match = re.search(pattern, path.read_text())
        if match:
            found.append(match)
        return bool(found)

    wait_for(what, seen)
    return found[0]


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- a broker of our own, to kill ----------------------------------------------------------------


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("fault-broker"), FAULT_BROKER_PORT)
    broker.ctl("start")
    try:
        yield broker
    finally:
        broker.ctl("stop")


# --- 1. the broker killed under load -------------------------------------------------------------


class ConfirmingProducer(threading.Thread):
    """Sends chunks of events with unique ids and keeps, per chunk, whether Kafka confirmed it:
    what a source would checkpoint. Runs until stopped, or `cap` events."""

    CHUNK = 500

    def __init__(self, bootstrap: str, topic: str, first_id: int, cap: int = 100_000):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.next_id, self.cap = bootstrap, topic, first_id, cap
        self.acked: set[str] = set()
        self.unconfirmed: set[str] = set()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with EventProducer(self.bootstrap) as producer:
                sent = 0
                while not self.stop.is_set() and sent < self.cap:
                    for key, value in observation_events(self.CHUNK, start=self.next_id):
                        producer.send_raw(self.topic, value, key=key)
                    ids = {f"synth-{n}" for n in range(self.next_id, self.next_id + self.CHUNK)}
                    self.next_id, sent = self.next_id + self.CHUNK, sent + self.CHUNK
                    try:
                        producer.confirm()
                    except DeliveryError:
                        self.unconfirmed |= ids  # may or may not be in Kafka: never promised
                    else:
                        self.acked |= ids
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.error = exc


class SupervisedSink:
    """`urbanflow sink run`, restarted whenever it exits, as its service manager would (compose's
    `restart: unless-stopped`): the exits are counted and their last lines kept for the report."""

    def __init__(self, settings: Settings, topics: Path, folder: Path):
        self.settings, self.topics, self.folder = settings, topics, folder
        self.exits: list[str] = []
        self.proc = self._start()

    def _start(self) -> subprocess.Popen:
        self.log = self.folder / f"sink-{len(self.exits)}.log"
        with self.log.open("w") as output:
            return sink_process(self.settings, self.topics, until_caught_up=False, output=output)

    def running(self) -> bool:
        """True; restarts the sink first if it exited."""
        if self.proc.poll() is not None:
            lines = [line for line in self.log.read_text().splitlines() if line.strip()]
            self.exits.append(f"exit {self.proc.returncode}: {lines[-1] if lines else ''}")
            self.proc = self._start()
        return True

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(WAIT_S)


def test_broker_killed_and_restarted_under_load_loses_no_acknowledged_event(
    own_broker, settings, tmp_path
):
    started = time.monotonic()
    settings = dataclasses.replace(settings, kafka_bootstrap=own_broker.bootstrap)
    spec = new_topic(own_broker.bootstrap)
    sink = SupervisedSink(settings, write_topics_file(tmp_path, spec), tmp_path)
    producers = [
        ConfirmingProducer(own_broker.bootstrap, spec.name, first_id=n * 1_000_000)
        for n in range(2)
    ]
    for producer in producers:
        producer.start()

    def acked() -> int:
        return sum(len(p.acked) for p in producers)

    wait_for(
        "5,000 acknowledged events, some of them loaded",
        lambda: sink.running() and acked() >= 5_000 and loaded_so_far(settings.warehouse_path) > 0,
    )
    own_broker.kill()
    acked_at_kill = acked()
    own_broker.ctl("start")
    wait_for(
        "5,000 more acknowledged events after the restart",
        lambda: sink.running() and acked() >= acked_at_kill + 5_000,
    )
    for producer in producers:
        producer.stop.set()
    for producer in producers:
        producer.join(WAIT_S)
        assert producer.error is None, repr(producer.error)
    in_kafka = sum(end_offsets(settings, spec.name, spec.partitions).values())
    wait_for(
        f"the sink to load the {in_kafka:,} records in Kafka",
        lambda: sink.running() and loaded_so_far(settings.warehouse_path) >= in_kafka,
    )

    assert sink.stop() == 0, sink.log.read_text()[-3000:]
    acked_ids = set().union(*(p.acked for p in producers))
    unconfirmed = set().union(*(p.unconfirmed for p in producers))
    rows, loaded = event_ids(settings.warehouse_path, spec)
    assert rows == len(loaded)  # no event loaded twice
    assert acked_ids <= loaded  # no acknowledged event lost
    assert loaded - acked_ids <= unconfirmed  # the rest were sent, just never confirmed
    report(
        "broker SIGKILL",
        started,
        acknowledged=len(acked_ids),
        unconfirmed=len(unconfirmed),
        acknowledged_at_kill=acked_at_kill,
        rows=rows,
        distinct_ids=len(loaded),
        kills=1,
        sink_exits=len(sink.exits),
        sink_exit_lines=sink.exits,
    )


# --- 2. the sink killed ten times during a 500k load ---------------------------------------------


def produce_fast(
    bootstrap: str, topic: str, count: int, bad: list[bytes], rng: random.Random
) -> None:
    """`count` valid events (ids synth-0..) with `bad` records at seeded random places, sent with
    a long linger and one confirmation at the end: the quickest way kafka-python has."""
    _, template = next(observation_events(1, target_bytes=300))
    template = template.replace(b'"synth-0"', b'"synth-%d"')
    keys = [f"key-{k}".encode() for k in range(30)]  # spread over every partition
    bad_at = dict(zip(sorted(rng.sample(range(count), len(bad))), bad, strict=True))
    with EventProducer(bootstrap, linger_ms=100) as producer:
        for n in range(count):
            if n in bad_at:
                producer.send_raw(topic, bad_at[n], key=b"bad")
            producer.send_raw(topic, template % n, key=keys[n % 30])
        producer.confirm(timeout_s=WAIT_S)


def test_sink_killed_ten_times_during_a_500k_load_loads_each_event_once(
    settings, kafka_bootstrap, observation_topic, tmp_path
):
    started = time.monotonic()
    total, kills, rng = 500_000, 10, random.Random(SEED)
    bad = bad_records(500)
    spec = observation_topic
    produce_fast(kafka_bootstrap, spec.name, total, bad, rng)
    produced_s = time.monotonic() - started
    records, topics = total + len(bad), write_topics_file(tmp_path, spec)
    points = []
    for _ in range(kills):
        before = loaded_so_far(settings.warehouse_path)
        if rng.random() < 0.5:  # inside the transaction of its N-th batch, before the commit
            batch = rng.randint(1, 2)
            dying = sink_process(
                settings, topics, script=DYING_SINK, args=[str(batch)], batch_records=20_000
            )
            output, _ = dying.communicate(timeout=WAIT_S)
            assert dying.returncode == -signal.SIGKILL, output
            points.append(f"in batch {batch}")
        else:  # from outside, wherever the sink is once it committed some more
            more = rng.randint(1, 20_000)
            with (tmp_path / "sink.log").open("w") as output:
                sink = sink_process(
                    settings, topics, until_caught_up=False, output=output, batch_records=20_000
                )
            wait_for(
                f"the sink to commit {more:,} more records",
                lambda n=before + more: loaded_so_far(settings.warehouse_path) >= n,
                proc=sink,
                log=tmp_path / "sink.log",
            )
            sink.send_signal(signal.SIGKILL)
            sink.wait(WAIT_S)
            points.append(f"after {more:,} more")
        assert before <= loaded_so_far(settings.warehouse_path) < records
    final = sink_process(settings, topics, batch_records=20_000)
    output, _ = final.communicate(timeout=WAIT_S)

    assert final.returncode == 0, output
    assert raw_counts(settings.warehouse_path, spec) == (total, total, total)
    ends = end_offsets(settings, spec.name, spec.partitions)
    assert stored_offsets(settings.warehouse_path, spec.name) == ends
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        recorded = con.execute(
            "select count(*), count(distinct (kafka_partition, kafka_offset)) "
            "from raw._sink_dead_letters"
        ).fetchone()
    assert recorded == (len(bad), len(bad))
    dead = read_topic(settings, spec.dlq_name, spec.partitions)
    assert {r.value for r in dead} == set(bad)  # a kill may repeat a dead letter, never lose one
    report(
        "sink SIGKILL x10",
        started,
        events=total,
        malformed=len(bad),
        kills=kills,
        kill_points="; ".join(points),
        rows=total,
        dead_letters=recorded[0],
        dlq_records=len(dead),
        produce_seconds=f"{produced_s:.1f}",
    )


# --- 3. the warehouse lock held for a minute -----------------------------------------------------

#: Holds the warehouse lock (argv[1]) for argv[2] seconds, as a long dbt run would.
_LOCK_HOLDER = """
import sys, time
from pathlib import Path
from connectors.warehouse import warehouse_lock
with warehouse_lock(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""
HOLD_S = 60


class PublishedPipeline(threading.Thread):
    """A warehouse on a broker's real topics, loaded by the sink, built by
    `urbanflow refresh` and published once: the last good serving.duckdb that the kill tests
    must keep. Prepared in the background (see the lock test) and awaited with `ready()`."""

    EVENTS = 2_000

    def __init__(self, broker: Broker, folder: Path):
        super().__init__(daemon=True)
        self.broker, self.folder = broker, folder
        self.warehouse, self.serving = folder / "warehouse.duckdb", folder / "serving.duckdb"
        self.env = {
            **os.environ,
            "UF_KAFKA_BOOTSTRAP": broker.bootstrap,
            "UF_VAR_DIR": str(folder),
            "UF_WAREHOUSE_PATH": str(self.warehouse),
            "UF_STATE_DIR": str(folder / "state"),
            "UF_SINK_GROUP": f"faults-{uuid.uuid4().hex[:8]}",
            "GX_ANALYTICS_ENABLED": "false",
            "DBT_TARGET_PATH": str(folder / "dbt_target"),
            "DBT_LOG_PATH": str(folder / "dbt_logs"),
        }
        self.env.pop("UF_TOPICS_FILE", None)
        self.failure: str | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [CLI, *args], env=self.env, capture_output=True, text=True, timeout=WAIT_S
        )

    def produce(self, start: int) -> None:
        """EVENTS events, sent again until Kafka confirms them all, as a source re-run does
        (topics just created may not have their leaders yet): a repeat is a duplicate that dbt
        staging drops, never a loss."""
        for attempt in range(1, 11):
            try:
                with EventProducer(self.broker.bootstrap) as producer:
                    for key, value in observation_events(self.EVENTS, start=start):
                        producer.send_raw(SDMX_TOPIC, value, key=key)
                    producer.confirm()
                    return
            except DeliveryError:
                if attempt == 10:
                    raise

    def raw_rows(self) -> int:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute("select count(*) from raw.stats_sdmx_observation_v1").fetchone()[0]

    def run(self) -> None:
        try:
            self.broker.ctl("start")
            for step in (("topics", "apply"), None, ("sink", "run", "--until-caught-up")):
                if step is None:
                    self.produce(0)
                    continue
                done = self.cli(*step)
                assert done.returncode == 0, f"urbanflow {' '.join(step)}: {done.stderr}"
            for step in (("refresh",), ("publish",)):
                done = self.cli(*step)
                assert done.returncode == 0, f"urbanflow {step[0]}: {done.stdout}{done.stderr}"
        except subprocess.TimeoutExpired as exc:
            self.failure = f"{exc}:\n{exc.stdout or ''}{exc.stderr or ''}"[-3000:]
        except BaseException as exc:
            self.failure = repr(exc)

    def ready(self) -> PublishedPipeline:
        self.join(WAIT_S * 2)
        assert not self.is_alive(), "the pipeline was not built and published in time"
        assert self.failure is None, self.failure
        return self


@pytest.fixture(scope="module")
def published_pipeline(tmp_path_factory) -> Iterator[PublishedPipeline]:
    """On a broker of its own too (started in the background with the rest), so nothing another
    test did to a broker plays a part."""
    broker = Broker(tmp_path_factory.mktemp("pipeline-broker"), FAULT_BROKER_PORT + 2)
    pipeline = PublishedPipeline(broker, tmp_path_factory.mktemp("published"))
    pipeline.start()
    try:
        yield pipeline
    finally:
        pipeline.join(WAIT_S)
        broker.ctl("stop")


def test_warehouse_lock_held_a_minute_the_sink_waits_says_so_and_catches_up(
    settings, observation_topic, tmp_path, published_pipeline
):
    """`published_pipeline` is requested here only to start it: its dbt build and quality gate
    use the minute this test's sink spends waiting (the next test awaits it)."""
    started = time.monotonic()
    topics = write_topics_file(tmp_path, observation_topic)
    sink_log, holder_log = tmp_path / "sink.log", tmp_path / "holder.log"
    with sink_log.open("w") as output:
        sink = sink_process(settings, topics, until_caught_up=False, output=output)
    produce(settings, observation_topic.name, 3_000, 0)
    wait_for(
        "the sink to load 3,000 events",
        lambda: loaded_so_far(settings.warehouse_path) >= 3_000,
        proc=sink,
        log=sink_log,
    )
    with holder_log.open("w") as output:
        holder = subprocess.Popen(
            [sys.executable, "-c", _LOCK_HOLDER, str(settings.warehouse_path), str(HOLD_S)],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    wait_for_text("the holder to take the lock", holder_log, "holding", proc=holder)
    held_at, lock = time.monotonic(), lock_path(settings.warehouse_path)
    produce(settings, observation_topic.name, 5_000, 3_000)
    waiting = wait_for_text(
        "the sink to say it waits for the lock",
        sink_log,
        rf"waiting \d+ s for the warehouse lock {re.escape(str(lock))}: "
        rf"another sink or dbt run holds it \(pid {holder.pid}: .*\)",
        proc=sink,
    )
    status = subprocess.run(
        [CLI, "status"],
        env={
            **os.environ,
            "UF_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "UF_WAREHOUSE_PATH": str(settings.warehouse_path),
            "UF_TOPICS_FILE": str(topics),
            "UF_SINK_GROUP": settings.sink_group,
        },
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert holder.wait(WAIT_S) == 0, holder_log.read_text()
    assert sink.poll() is None, sink_log.read_text()  # it waited; it did not give up
    wait_for(
        "the sink to catch up",
        lambda: loaded_so_far(settings.warehouse_path) >= 8_000,
        proc=sink,
        log=sink_log,
    )
    sink.send_signal(signal.SIGTERM)
    sink.wait(WAIT_S)

    assert sink.returncode == 0, sink_log.read_text()[-3000:]
    assert raw_counts(settings.warehouse_path, observation_topic) == (8_000, 8_000, 8_000)
    got = re.search(r"got the warehouse lock .* after (\d+) s", sink_log.read_text())
    assert got, sink_log.read_text()[-3000:]
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"is held by pid {holder.pid}" in status.stderr
    assert "row counts wait for it" in status.stderr
    report(
        "warehouse lock held 60 s",
        started,
        events=8_000,
        rows=8_000,
        held_seconds=HOLD_S,
        sink_said_waiting_after=waiting.group(0).split()[1] + " s",
        sink_waited=got.group(1) + " s",
        status_waited=f"{time.monotonic() - held_at:.0f} s since the lock was taken",
    )


# --- 4. dbt, the gate and publish killed ---------------------------------------------------------

#: `urbanflow publish` that SIGKILLs its whole process group at the rename of a passing
#: candidate: validated, results recorded, serving.duckdb about to be replaced.
_DYING_PUBLISH = """
import os, signal, sys
from connectors import cli
from connectors.quality import publish

publish.replace_atomically = lambda *_: os.killpg(0, signal.SIGKILL)
sys.argv = ["urbanflow", "publish"]
cli.main()
"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _served(serving: Path) -> tuple[str, dict[str, int]]:
    """The served file's digest and its row count per mart."""
    with duckdb.connect(str(serving), read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() order by 1, 2"
        ).fetchall()
        counts = {
            f"{s}.{t}": con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0]
            for s, t in tables
        }
    return _sha256(serving), counts


def _sdmx_rows_served(serving: Path) -> int | None:
    return served_rows(serving, "stats_sdmx_observation_v1")


def _kill_group_when(
    pipeline: PublishedPipeline,
    command: list[str],
    log: Path,
    pattern: str | None,
    *,
    whole_group: bool = True,
) -> subprocess.Popen:
    """Start `command` in its own process group; once its output matches `pattern`, SIGKILL the
    group (dbt's forkserver and child with it), or only the command's own process. With no
    pattern, the command kills itself."""
    with log.open("w") as output:
        proc = subprocess.Popen(
            command,
            env=pipeline.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    if pattern is not None:
        wait_for_text(pattern, log, pattern, proc=proc)
        if whole_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.send_signal(signal.SIGKILL)
    proc.wait(WAIT_S)
    assert proc.returncode == -signal.SIGKILL, log.read_text()[-3000:]
    # SIGKILL is delivered at once, but a process with many threads takes a moment to be gone;
    # and when only the parent was killed, whatever it started must let go of the warehouse.
    wait_for(
        "the killed run's processes to let go of the warehouse",
        lambda: not _holding_open(proc.pid, pipeline.warehouse),
    )
    with contextlib.suppress(ProcessLookupError):  # e.g. an idle forkserver its parent left
        os.killpg(proc.pid, signal.SIGKILL)
    return proc


def _holding_open(pgid: int, path: Path) -> list[int]:
    """Live processes of process group `pgid` that have `path` open (or may: a process whose
    open files cannot be read any more but which is not gone yet counts as holding them)."""
    holders = []
    for pid in _group_members(pgid):
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:  # exiting: its files, and DuckDB's lock on one, go with its last thread
            if _alive(pid):
                holders.append(pid)
            continue
        if str(path) in links:
            holders.append(pid)
    return holders


def _alive(pid: int) -> bool:
    """Some thread of `pid` still runs. A killed multi-threaded process's leader shows as a
    zombie while its other threads exit, and the process keeps its files until the last one."""
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for thread in threads:
        try:
            state = (thread / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in "ZX":
            return True
    return False


def _group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (a zombie leader counts while a thread runs)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            group = stat.read_text().rsplit(")", 1)[1].split()[2]
        except (OSError, ValueError, IndexError):
            continue
        if int(group) == pgid and _alive(int(stat.parent.name)):
            members.append(int(stat.parent.name))
    return members


def _assert_last_good_served_and_nothing_locked(pipeline: PublishedPipeline, good) -> None:
    assert _served(pipeline.serving) == good  # same bytes, same rows per mart
    try:
        with warehouse_lock(pipeline.warehouse, timeout_s=0):
            duckdb.connect(str(pipeline.warehouse)).close()  # and no one has the file open
    except UrbanFlowError as exc:
        pytest.fail(f"the killed run left the warehouse locked: {exc}")


def test_dbt_gate_and_publish_killed_keep_the_last_good_serving_and_next_runs_recover(
    published_pipeline, tmp_path
):
    started = time.monotonic()
    pipeline = published_pipeline.ready()
    waited_s = time.monotonic() - started
    good = _served(pipeline.serving)
    served_before = _sdmx_rows_served(pipeline.serving)
    pipeline.produce(PublishedPipeline.EVENTS)  # new events, so the refresh has work to do
    assert pipeline.cli("sink", "run", "--until-caught-up").returncode == 0

    # `urbanflow refresh` killed alone while dbt builds: the lock is free at once, so dbt (in a
    # forkserver child) must stop with it, unfinished, rather than write on without the lock
    orphaned = tmp_path / "refresh-parent.log"
    _kill_group_when(pipeline, [CLI, "refresh"], orphaned, r"OK created", whole_group=False)
    assert "Finished running" not in orphaned.read_text(), orphaned.read_text()[-3000:]
    _assert_last_good_served_and_nothing_locked(pipeline, good)

    # dbt's whole process group killed while it builds (it holds the lock for the whole run)
    _kill_group_when(pipeline, [CLI, "refresh"], tmp_path / "refresh.log", r"OK created")
    _assert_last_good_served_and_nothing_locked(pipeline, good)
    refreshed = pipeline.cli("refresh")
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert "built (new events in stats.sdmx.observation.v1" in refreshed.stdout

    # the gate killed while Great Expectations validates a candidate
    _kill_group_when(pipeline, [CLI, "gate"], tmp_path / "gate.log", r"validating \d+ batches")
    _assert_last_good_served_and_nothing_locked(pipeline, good)

    # publish killed at the rename of a candidate that passed
    dying = [sys.executable, "-c", _DYING_PUBLISH]
    _kill_group_when(pipeline, dying, tmp_path / "publish.log", None)
    _assert_last_good_served_and_nothing_locked(pipeline, good)

    published = pipeline.cli("publish")

    assert published.returncode == 0, published.stdout + published.stderr
    served_after = _sdmx_rows_served(pipeline.serving)
    assert served_after == pipeline.raw_rows() > served_before  # all that landed, now served
    leftovers = sorted(p.name for p in (pipeline.folder / "candidates").glob("serving-*.duckdb"))
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        recorded_published = con.execute(
            "select count(distinct run_id) from raw._quality_results where outcome = 'published'"
        ).fetchone()[0]
    report(
        "dbt/gate/publish SIGKILL",
        started,
        kills=4,
        served_rows_before=served_before,
        served_rows_after=served_after,
        candidates_left_by_kills=len(leftovers),
        runs_recorded_published=recorded_published,
        runs_published=2,
        waited_for_background_build=f"{waited_s:.1f} s",
    )


# --- 5. a full disk under the warehouse ----------------------------------------------------------


@pytest.fixture
def small_volume(tmp_path) -> Iterator[Path]:
    """A 32 MB tmpfs: a warehouse volume that can really fill up (needs root to mount)."""
    volume = tmp_path / "volume"
    volume.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(volume)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {mounted.stderr.strip()}")
    try:
        yield volume
    finally:
        subprocess.run(["umount", "-l", str(volume)], check=False)


def _fill(volume: Path) -> Path:
    """Write a filler file until the volume refuses another byte."""
    filler = volume / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == 28, exc  # ENOSPC
    return filler


def test_full_disk_stops_the_sink_with_one_clear_line_and_it_resumes_when_space_returns(
    settings, observation_topic, tmp_path, small_volume
):
    started = time.monotonic()
    settings = dataclasses.replace(settings, warehouse_path=small_volume / "warehouse.duckdb")
    topics = write_topics_file(tmp_path, observation_topic)
    produce(settings, observation_topic.name, 2_000, 0)
    first = sink_process(settings, topics)
    first_output, _ = first.communicate(timeout=WAIT_S)
    assert first.returncode == 0, first_output
    before = (
        raw_counts(settings.warehouse_path, observation_topic),
        stored_offsets(settings.warehouse_path, observation_topic.name),
    )
    bad = bad_records(10)
    produce(settings, observation_topic.name, 3_000, 2_000)
    with EventProducer(settings.kafka_bootstrap) as producer:
        for value in bad:
            producer.send_raw(observation_topic.name, value, key="bad")
        producer.confirm()
    filler = _fill(small_volume)

    full = sink_process(settings, topics)
    output, _ = full.communicate(timeout=WAIT_S)

    assert full.returncode == 1, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert "no space left" in errors[0] and str(small_volume) in errors[0], errors[0]
    assert (
        raw_counts(settings.warehouse_path, observation_topic),
        stored_offsets(settings.warehouse_path, observation_topic.name),
    ) == before  # nothing of the failing batch, rows nor offsets
    filler.unlink()
    resumed = sink_process(settings, topics)
    resumed_output, _ = resumed.communicate(timeout=WAIT_S)

    assert resumed.returncode == 0, resumed_output
    assert raw_counts(settings.warehouse_path, observation_topic) == (5_000, 5_000, 5_000)
    assert stored_offsets(settings.warehouse_path, observation_topic.name) == end_offsets(
        settings, observation_topic.name, observation_topic.partitions
    )
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        dead = con.execute("select count(*) from raw._sink_dead_letters").fetchone()[0]
    assert dead == len(bad)
    report(
        "disk full",
        started,
        events=5_000,
        malformed=len(bad),
        rows_before=before[0][0],
        rows_after=5_000,
        dead_letters=dead,
        error=errors[0][:120],
    )


# --- 6. misconfiguration: one clear line, never a hang -------------------------------------------


def _topics(path: Path, name: str, event_type: str) -> Path:
    path.write_text(
        yaml.safe_dump({"topics": [{"name": name, "partitions": 1, "event_types": [event_type]}]})
    )
    return path


def test_misconfigurations_each_fail_fast_with_one_line_naming_the_fault_and_the_fix(
    kafka_bootstrap, tmp_path
):
    """Not covered elsewhere: a declared data topic missing (test_sink covers its missing
    `.dlq`), an event type without a contract, and an unreachable broker for the commands that
    need one (test_cli covers `status`). All run at once: an unreachable broker takes kafka-python
    its whole bootstrap timeout to admit."""
    started = time.monotonic()
    missing = f"test.{uuid.uuid4().hex[:10]}.observation.v1"
    unknown_type = "org.urbanflow.nosuch.v1"
    closed = f"127.0.0.1:{free_port()}"
    sdmx_feeds = str(REPO / "sample_data" / "sdmx")
    cases = {
        "missing topic": (
            ["sink", "run", "--until-caught-up"],
            {"UF_TOPICS_FILE": str(_topics(tmp_path / "a.yml", missing, OBSERVATION_TYPE))},
            [missing, f"{missing}.dlq", kafka_bootstrap, "urbanflow topics apply"],
        ),
        "no contract": (
            ["sink", "run", "--until-caught-up"],
            {"UF_TOPICS_FILE": str(_topics(tmp_path / "b.yml", missing, unknown_type))},
            [missing, unknown_type, f"connectors/contracts/{unknown_type}.json"],
        ),
        "sink, broker unreachable": (
            ["sink", "run", "--until-caught-up"],
            {"UF_KAFKA_BOOTSTRAP": closed},
            [closed, "make up"],
        ),
        "topics apply, broker unreachable": (
            ["topics", "apply"],
            {"UF_KAFKA_BOOTSTRAP": closed},
            [closed, "make up", "UF_KAFKA_BOOTSTRAP"],
        ),
        "source run, broker unreachable": (
            ["source", "run", "sdmx", sdmx_feeds],
            {"UF_KAFKA_BOOTSTRAP": closed},
            [closed, "make up"],
        ),
    }
    procs = {}
    for case, (args, env, _) in cases.items():
        folder = tmp_path / re.sub(r"\W+", "-", case)
        procs[case] = subprocess.Popen(
            [CLI, *args],
            env={
                **os.environ,
                "UF_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "UF_VAR_DIR": str(folder),
                "UF_WAREHOUSE_PATH": str(folder / "warehouse.duckdb"),
                "UF_STATE_DIR": str(folder / "state"),
                **env,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    seconds = {}
    for case, proc in procs.items():
        out, err = proc.communicate(timeout=120)  # a hang fails here
        seconds[case] = f"{time.monotonic() - started:.0f}"
        assert proc.returncode == 1, (case, out, err)
        assert "Traceback" not in out + err, (case, err)
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, (case, err)
        for needed in cases[case][2]:
            assert needed in errors[0], (case, needed, errors[0])
    report("misconfiguration", started, cases=len(cases), exited_by_second=seconds)
