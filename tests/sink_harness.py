"""What the sink's integration and reliability tests share: producing, reading the warehouse and
topics back, and running the sink as a process (`urbanflow sink run`, or one that dies on cue).

Every wait here polls a condition with a generous timeout and fails naming what it awaited: the
tests assert outcomes, never how fast they came, so a busy machine only makes them slower.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import duckdb
import pytest
import yaml
from kafka import KafkaConsumer, TopicPartition

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import TopicSpec
from connectors.samples.synthetic import observation_events
from connectors.settings import Settings
from connectors.warehouse import connect

#: How long any wait may take before the test fails naming what it awaited.
WAIT_S = 300.0
CLI = str(Path(sys.executable).with_name("urbanflow"))


def wait_for(
    what: str,
    condition: Callable[[], bool],
    *,
    timeout_s: float = WAIT_S,
    proc: subprocess.Popen | None = None,
    log: Path | None = None,
) -> None:
    """Poll `condition` until true; fail naming `what` after `timeout_s`, or at once if `proc`
    (a sink process that should still be working) exits first, showing its output (or the end
    of `log`, where it writes)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc is not None and proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            if log is not None:
                output += log.read_text()[-3000:]
            pytest.fail(f"the sink exited ({proc.returncode}) before {what}:\n{output}")
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(0.1)


def produce(settings: Settings, topic: str, count: int, start: int = 0) -> None:
    """`count` synthetic observation events with ids synth-<start>.., confirmed by the broker."""
    with EventProducer(settings.kafka_bootstrap) as producer:
        for key, value in observation_events(count, start=start, target_bytes=400):
            producer.send_raw(topic, value, key=key)
        producer.confirm()


def raw_counts(warehouse: Path, spec: TopicSpec) -> tuple[int, int, int]:
    """(rows, distinct Kafka coordinates, distinct event ids) in the raw table."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            f"""select count(*), count(distinct (kafka_partition, kafka_offset)),
                       count(distinct event_id) from raw.{spec.raw_table}"""
        ).fetchone()


def stored_offsets(warehouse: Path, topic: str) -> dict[int, int]:
    """The sink's next offset per partition of `topic`, as committed with the data."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return dict(
            con.execute(
                "select kafka_partition, next_offset from raw._sink_offsets where kafka_topic = ?",
                [topic],
            ).fetchall()
        )


def end_offsets(settings: Settings, topic: str, partitions: int) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        consumer.close()


def read_topic(settings: Settings, topic: str, partitions: int) -> list:
    """Every record of `topic`, from the beginning to its end offsets now."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    wanted = sum(consumer.end_offsets(tps).values())
    records: list = []

    def read_all() -> bool:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
        return len(records) >= wanted

    try:
        wait_for(f"the {wanted} records of {topic}", read_all)
    finally:
        consumer.close()
    return records


def sink_process(
    settings: Settings,
    topics_file: Path,
    *,
    until_caught_up: bool = True,
    instance: str = "test-sink-1",
    script: str | None = None,
    args: list[str] | None = None,
    output: IO[str] | None = None,
    batch_records: int = 1_000,
) -> subprocess.Popen:
    """`urbanflow sink run` on the test's topics and warehouse, or `script` run with `args`.
    Its output (stdout and stderr) is piped, or written to `output` (a file to poll while it
    runs)."""
    env = {
        **os.environ,
        "UF_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "UF_WAREHOUSE_PATH": str(settings.warehouse_path),
        "UF_TOPICS_FILE": str(topics_file),
        "UF_SINK_GROUP": settings.sink_group,
        "UF_SINK_INSTANCE_ID": instance,
        "UF_SINK_BATCH_MAX_RECORDS": str(batch_records),
        "UF_SINK_BATCH_MAX_MS": "200",
    }
    mode = ["--until-caught-up"] if until_caught_up else []
    command = (
        [CLI, "sink", "run", "--no-progress", *mode]
        if script is None
        else [sys.executable, "-c", script, *(args or [])]
    )
    return subprocess.Popen(
        command,
        env=env,
        stdout=output if output is not None else subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def write_topics_file(tmp_path: Path, spec: TopicSpec) -> Path:
    """A topics file declaring only `spec`, so the sink reads nothing else."""
    path = tmp_path / "topics.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "topics": [
                    {
                        "name": spec.name,
                        "partitions": spec.partitions,
                        "event_types": list(spec.event_types),
                    }
                ]
            }
        )
    )
    return path


def loaded_so_far(warehouse: Path) -> int:
    """Records committed so far (rows and dead letters), read under the warehouse lock the sink
    also takes."""
    if not warehouse.exists():
        return 0
    with connect(warehouse, read_only=True) as con:
        found = con.execute(
            "select count(*) from information_schema.tables where table_name = '_sink_offsets'"
        ).fetchone()[0]
        if not found:
            return 0
        return con.execute(
            "select coalesce(sum(next_offset), 0) from raw._sink_offsets"
        ).fetchone()[0]


#: A sink that SIGKILLs itself inside its N-th batch transaction (argv[1]), once the offset fence
#: passed and the batch's dead letters went to Kafka, before the commit: a crash mid-load on
#: every machine, however fast.
DYING_SINK = """
import os, signal, sys
from connectors.kafka.topics import load_topics
from connectors.settings import Settings
from connectors.sink import Sink, service

write_batch, batches = service.write_batch, []

def dying_write_batch(*args, before_write=None):
    batches.append(None)
    if len(batches) < int(sys.argv[1]):
        return write_batch(*args, before_write=before_write)

    def die():
        if before_write is not None:
            before_write()
        os.kill(os.getpid(), signal.SIGKILL)

    return write_batch(*args, before_write=die)

service.write_batch = dying_write_batch
settings = Settings.from_env()
Sink(settings, load_topics(settings.topics_file)).run(until_caught_up=True)
"""


def bad_records(count: int) -> list[bytes]:
    """`count` distinct payloads that are not JSON: each must become exactly one dead letter."""
    return [b"not json %d" % i for i in range(count)]


# --- a broker of our own, to kill or to fill ----------------------------------------------------

KAFKACTL = Path(__file__).resolve().parents[1] / "infra" / "kafka" / "kafkactl"


@dataclasses.dataclass
class Broker:
    """A single-node broker started by infra/kafka/kafkactl on its own port and data directory,
    so killing it leaves the session's broker alone."""

    var_dir: Path
    port: int
    #: more kafkactl settings, e.g. UF_KAFKA_SECURITY_PROTOCOL and the SASL user
    env: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.var_dir / "kafka" / "kafka.pid"

    def ctl(self, command: str) -> None:
        env = {
            **os.environ,
            **self.env,
            "UF_VAR_DIR": str(self.var_dir),
            "UF_KAFKA_PORT": str(self.port),
        }
        done = subprocess.run(
            [str(KAFKACTL), command], env=env, capture_output=True, text=True, timeout=WAIT_S
        )
        assert done.returncode == 0, f"kafkactl {command}: {done.stdout}{done.stderr}"

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no controlled leadership hand-over."""
        pid = int(self.pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        # its sockets close when its last thread is gone, maybe after the main one shows a zombie
        wait_for(
            "the killed broker to be gone",
            lambda: (
                not _running(pid) and not _listening(self.port) and not _listening(self.port + 1)
            ),
        )
        self.pid_file.unlink()  # kafkactl would take a reaped-late zombie for a live broker


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
