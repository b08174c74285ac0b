"""The connector SDK: typed config, secrets kept out of output, state saved only after delivery."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest

from connectors.errors import ConfigError, DeliveryError
from connectors.sdk import (
    Checkpoint,
    Record,
    Refused,
    Secret,
    Source,
    Stream,
    load_config,
    run_source,
)
from connectors.sdk.state import StateStore
from connectors.sources.registry import all_sources, get_source

STREAM = Stream("things", "test.things.v1", "org.urbanflow.stats.observation.v1", key="id")
DATA = {
    "dataflow": "T:DF(1.0)",
    "series_key": "A",
    "dimensions": {"FREQ": "A"},
    "time_period": "2020",
    "value": 1.0,
}


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    inputs: list[str]
    api_key: Secret | None = None
    page_size: int = 100


class FakeProducer:
    """Records what was sent; `fail` makes confirm() behave like an unreachable broker."""

    def __init__(self, fail: bool = False):
        self.queued: list[tuple[str, dict]] = []
        self.confirmed = 0
        self.fail = fail

    def send_event(self, topic: str, event: dict, *, key: str) -> None:
        self.queued.append((topic, event))

    def send_raw(self, topic: str, value: bytes, *, key: str, headers: list) -> None:
        self.queued.append((topic, {"value": value, "headers": dict(headers)}))

    def confirm(self) -> int:
        if self.fail:
            raise DeliveryError("broker unreachable")
        sent, self.confirmed = len(self.queued) - self.confirmed, len(self.queued)
        return sent


class TwoCheckpoints(Source):
    name = "two"
    description = "test"
    config = Config
    streams = (STREAM,)

    def read(self, config: Config, state: dict) -> Iterator[Record | Checkpoint]:
        start = state.get("next", 0)
        for n in range(start, start + 4):
            yield Record(STREAM, key=str(n), source="urn:test:x", event_id=f"e{n}", data=DATA)
            if n % 2 == 1:
                yield Checkpoint({"next": n + 1})


def test_config_rejects_unknown_keys_naming_them(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("inputs: [a]\npage_sise: 5\n")
    with pytest.raises(ConfigError, match="page_sise") as info:
        load_config("two", Config, file=path)
    assert str(path) in str(info.value)


def test_config_merges_env_file_and_set_with_types(tmp_path, monkeypatch):
    monkeypatch.setenv("UF_SOURCE_TWO_PAGE_SIZE", "7")
    monkeypatch.setenv("UF_SOURCE_TWO_API_KEY", "s3cret")
    config = load_config("two", Config, assignments=["inputs=[x, y]"])
    assert config.inputs == ["x", "y"] and config.page_size == 7
    assert isinstance(config.api_key, Secret) and config.api_key.reveal() == "s3cret"
    assert "s3cret" not in repr(config)


def test_state_is_saved_at_each_confirmed_checkpoint(tmp_path):
    store = StateStore(tmp_path, "two")
    producer = FakeProducer()
    report = run_source(TwoCheckpoints(), Config(inputs=[]), producer, store)
    assert report.sent == 4 and report.checkpoints == 2
    assert store.load() == {"next": 4}
    run_source(TwoCheckpoints(), Config(inputs=[]), producer, store)
    assert [e["id"] for _, e in producer.queued][-4:] == ["e4", "e5", "e6", "e7"]


def test_state_is_not_saved_when_delivery_fails(tmp_path):
    store = StateStore(tmp_path, "two")
    with pytest.raises(DeliveryError):
        run_source(TwoCheckpoints(), Config(inputs=[]), FakeProducer(fail=True), store)
    assert store.load() == {}


def test_a_record_breaking_its_contract_goes_to_the_dlq_and_the_rest_is_sent(tmp_path):
    class OneBad(TwoCheckpoints):
        def read(self, config, state):
            yield Record(STREAM, key="k", source="urn:test:x", event_id="bad", data={"value": "x"})
            yield Record(STREAM, key="k", source="urn:test:x", event_id="good", data=DATA)

    producer = FakeProducer()
    report = run_source(OneBad(), Config(inputs=[]), producer, StateStore(tmp_path, "bad"))
    assert (report.sent, report.rejected) == (1, 1)
    (dlq_topic, dead), (topic, event) = producer.queued
    assert dlq_topic == "test.things.v1.dlq" and topic == "test.things.v1"
    assert dead["headers"]["uf.error.class"] == b"contract"
    assert b"dataflow" in dead["headers"]["uf.error.reason"]
    assert event["id"] == "good"


def test_a_refused_item_goes_to_its_streams_dlq_with_the_reason_in_the_headers(tmp_path):
    class Refusing(TwoCheckpoints):
        def read(self, config, state):
            yield Refused(
                "f.csv:3 value: 'x' is not a number", key="k1", payload=b"row 3", stream=STREAM
            )
            yield Refused("bad version", key="k2", payload=b"{}", contract="x.v2", stream=STREAM)

    producer = FakeProducer()
    report = run_source(Refusing(), Config(inputs=[]), producer, StateStore(tmp_path, "r"))

    assert (report.sent, report.rejected) == (0, 2)
    (topic, first), (_, second) = producer.queued
    assert topic == "test.things.v1.dlq" and first["value"] == b"row 3"
    assert list(first["headers"].items()) == [
        ("uf.error.class", b"source"),
        ("uf.error.reason", b"f.csv:3 value: 'x' is not a number"),
        ("uf.contract", STREAM.event_type.encode()),
        ("uf.source", b"two"),
    ]
    assert second["headers"]["uf.contract"] == b"x.v2"  # the item's own contract wins


def test_a_refused_item_without_its_stream_is_a_source_bug_named_at_once(tmp_path):
    class Streamless(TwoCheckpoints):
        def read(self, config, state):
            yield Refused("no stream", key="k", payload=b"")

    with pytest.raises(TypeError, match="source 'two' refused an item without its stream"):
        run_source(Streamless(), Config(inputs=[]), FakeProducer(), StateStore(tmp_path, "s"))


def test_registry_discovers_source_packages_and_names_unknown_ones():
    assert "sdmx" in all_sources()
    with pytest.raises(ConfigError, match=r"known sources: .*sdmx"):
        get_source("nope")
