"""Raw Kafka records fuzzed into every sink topic: each valid one lands once, each other one is a
dead letter with its reason, the sink never crashes, and nothing unchecked reaches serving.

On a broker of its own (the topics are the real ones, so the marts can be built, and the session
broker's topics stay clean for the other suites). The sample world goes in first through the real
sources; then, per sink topic, `PER_TOPIC` seeded records made from that topic's own events:
truncated or damaged bytes, invalid UTF-8, wrong JSON types and odd values at any node, Unicode
edge cases, huge numbers, absurd nesting, another topic's events, empty records and oversize
ones. Which of them are valid is decided here by the reference path (orjson, the topic's declared
event types, the JSON Schema contract, the size limit), independently of the sink's fast path.
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import duckdb
import orjson
import pytest
from fuzzing import ODD_JSON, ODD_TEXT, mutate_bytes, mutate_json_tree
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console
from sink_harness import Broker

from connectors.contracts import get_contract
from connectors.demo import send_samples
from connectors.errors import ContractError
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import TopicSpec, apply_topics, load_topics
from connectors.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 20261201
PER_TOPIC = 450
BASES_PER_TOPIC = 40
PORT = int(os.environ.get("UF_TEST_FUZZ_KAFKA_PORT", "29641"))
CLI = str(Path(sys.executable).with_name("urbanflow"))
WAIT_S = 900


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[dict]:
    """A broker of its own with the declared topics, and the environment of a warehouse on it."""
    var = tmp_path_factory.mktemp("fuzz-kafka")
    broker = Broker(var / "broker", PORT)
    broker.ctl("start")
    env = {
        **os.environ,
        "UF_KAFKA_BOOTSTRAP": broker.bootstrap,
        "UF_VAR_DIR": str(var),
        "UF_WAREHOUSE_PATH": str(var / "warehouse.duckdb"),
        "UF_SERVING_PATH": str(var / "serving.duckdb"),
        "UF_STATE_DIR": str(var / "state"),
        "UF_SINK_GROUP": "fuzz-sink",
    }
    try:
        yield {"env": env, "var": var, "bootstrap": broker.bootstrap}
    finally:
        broker.ctl("stop")


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in env.items():
        if name.startswith("UF_"):
            monkeypatch.setenv(name, value)
    return Settings.from_env()


def _urbanflow(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=WAIT_S, check=False
    )
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode == 0, f"urbanflow {' '.join(args)} exited {done.returncode}:\n{output}"
    return output


def _read(bootstrap: str, spec: TopicSpec, limit: int | None = None) -> list:
    """The records on `spec`'s partitions from the beginning (at most `limit`)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(spec.name, p) for p in range(spec.partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    wanted = sum(consumer.end_offsets(partitions).values())
    wanted = wanted if limit is None else min(limit, wanted)
    records: list = []
    deadline = time.monotonic() + WAIT_S
    try:
        while len(records) < wanted:
            if time.monotonic() > deadline:  # a safety net, not a speed bound: fail by name
                pytest.fail(f"read {len(records)} of {wanted} records on {spec.name}")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records[:wanted]


# ------------------------------------------------------------------------------- the cases


def _dumps(event: object) -> bytes:
    """JSON as any producer might write it: Python's encoder takes integers past 64 bits."""
    return json.dumps(event).encode()


def _deep(depth: int) -> bytes:
    return b'{"specversion":"1.0","data":' + b"[" * depth + b"]" * depth + b"}"


def mutated(rng: random.Random, base: bytes, other: bytes, max_bytes: int) -> bytes:
    """One damaged record made from `base` (a valid event of the topic) or `other` (an event of
    another topic)."""
    kind = rng.randrange(12)
    if kind == 0:
        return base[: rng.randrange(len(base))]
    if kind == 1:
        return mutate_bytes(rng, base)
    if kind == 2:  # invalid UTF-8 inside a string
        at = max(base.find(b'"id":"'), 0) + 6
        return (
            base[:at] + rng.choice([b"\xe1", b"\xff\xfe", b"\xed\xa0\x80", b"\xc0\xaf"]) + base[at:]
        )
    if kind in (3, 4, 5):  # wrong types, odd values, missing keys anywhere in the event
        return _dumps(mutate_json_tree(rng, orjson.loads(base)))
    if kind == 6:  # odd text in a data field
        event = orjson.loads(base)
        if isinstance(event.get("data"), dict) and event["data"]:
            event["data"][rng.choice(list(event["data"]))] = rng.choice(ODD_TEXT)
        return _dumps(event)
    if kind == 7:  # huge or odd numbers written as JSON numbers
        text = base.decode()
        at = max(text.find('"data":{'), 0) + 7
        number = rng.choice(["1e400", "-1e400", "9" * 40, "1.0e-400", "-0"])
        return (text[:at] + '{"x":' + number + "," + text[at + 1 :]).encode()
    if kind == 8:
        return rng.choice([b"", b"null", b"[]", b'"x"', b"{}", b"\x00" * 10, _deep(100_000)])
    if kind == 9:  # another topic's event
        return other
    if kind == 10:  # over the size limit
        event = orjson.loads(base)
        event["padding"] = "x" * max_bytes
        return _dumps(event)
    event = orjson.loads(base)  # the envelope's attributes of odd type or value
    event[rng.choice(["id", "source", "type", "time", "specversion"])] = copy.deepcopy(
        rng.choice(ODD_JSON)
    )
    return _dumps(event)


def reference_valid(value: bytes, spec: TopicSpec, max_bytes: int) -> bool:
    """The contract's verdict, by the reference path the sink's fast path is held equal to."""
    if not value or len(value) > max_bytes:
        return False
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(event, dict) or event.get("type") not in spec.event_types:
        return False
    try:
        get_contract(event["type"]).validate_event(event)
    except ContractError:
        return False
    return True


# ------------------------------------------------------------------------------ the test


def test_fuzzed_records_on_every_sink_topic_land_once_or_dead_letter_and_the_marts_pass(
    platform, monkeypatch
):
    started = time.monotonic()
    settings = _settings(platform["env"], monkeypatch)
    specs = [spec for spec in load_topics(settings.topics_file) if spec.sink]
    apply_topics(settings.kafka_bootstrap, load_topics(settings.topics_file))
    send_samples(settings, settings.sample_data_dir, Console(file=open(os.devnull, "w")))  # noqa: SIM115

    sample = {spec.name: len(_read(settings.kafka_bootstrap, spec)) for spec in specs}
    bases = {
        spec.name: [r.value for r in _read(settings.kafka_bootstrap, spec, BASES_PER_TOPIC)]
        for spec in specs
    }
    assert sum(sample.values()) > 0 and sum(1 for b in bases.values() if b) >= len(specs) - 1
    everything = [value for values in bases.values() for value in values]

    rng = random.Random(SEED)
    expected_valid: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    with EventProducer(settings.kafka_bootstrap, client_id="fuzz") as producer:
        for spec in specs:
            own = bases[spec.name] or everything
            for number in range(PER_TOPIC):
                value = mutated(
                    rng, rng.choice(own), rng.choice(everything), settings.max_event_bytes
                )
                expected_valid[spec.name] += reference_valid(value, spec, settings.max_event_bytes)
                producer.send_raw(spec.name, value, key=f"fuzz-{number % 7}", headers=[])
                sent[spec.name] += 1
        producer.confirm()

    sink_output = _urbanflow(platform["env"], "sink", "run", "--until-caught-up", "--no-progress")

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        for spec in specs:
            rows = con.execute(f"select count(*) from raw.{spec.raw_table}").fetchone()[0]
            dead, reasons = con.execute(
                "select count(*), count(*) filter (where coalesce(reason, '') <> '') "
                "from raw._sink_dead_letters where kafka_topic = ?",
                [spec.name],
            ).fetchone()
            fuzzed_invalid = sent[spec.name] - expected_valid[spec.name]
            assert rows == sample[spec.name] + expected_valid[spec.name], spec.name
            assert dead == reasons == fuzzed_invalid, spec.name
            assert len(_read(settings.kafka_bootstrap, _dlq(spec))) == fuzzed_invalid, spec.name

    # marts on top of it: events the contract accepts may still break a model, a data test or a
    # gate expectation (a country code of odd shape): the refresh or the gate then stops naming
    # what broke, never with a traceback, and nothing unchecked is published
    serving = platform["var"] / "serving.duckdb"
    stopped_by = ""
    for step in ("refresh", "publish"):
        done = subprocess.run(
            [CLI, step], env=platform["env"], capture_output=True, text=True, timeout=WAIT_S
        )
        output = done.stdout + done.stderr
        assert "Traceback" not in output, output
        if done.returncode != 0:
            assert "error:" in output, output
            assert "Failure in" in output or "quality gate blocked publishing" in output, output
            assert not serving.exists()
            stopped_by = f"{step} stopped: " + "; ".join(
                line.strip()
                for line in output.splitlines()
                if "Failure in " in line or line.strip().startswith("✗ suite")
            )
            break
    else:
        with duckdb.connect(str(serving), read_only=True) as con:
            assert con.execute("select count(*) from marts.fct_city_indicator").fetchone()[0] > 0
    marts = stopped_by or "built, gated and published"

    total = sum(sent.values())
    print(
        f"\nkafka fuzz: {total:,} fuzzed records on {len(specs)} sink topics "
        f"({sum(expected_valid.values()):,} valid, {total - sum(expected_valid.values()):,} dead "
        f"letters) after {sum(sample.values()):,} sample events, in "
        f"{time.monotonic() - started:.0f} s; sink: {sink_output.strip().splitlines()[-1]}; "
        f"marts: {marts}"
    )


def _dlq(spec: TopicSpec) -> TopicSpec:
    return TopicSpec(spec.dlq_name, spec.partitions, 0, (), False, False, 0)
