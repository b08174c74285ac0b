"""The utilities source without a broker: a replayable stream, its pacing, and KPI CSV drops."""

from __future__ import annotations

import itertools
import os
import random
import shutil
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from connectors.contracts import get_contract
from connectors.errors import ConfigError, SourceFormatError
from connectors.sdk import Checkpoint, Record, load_config, run_source
from connectors.sdk.state import StateStore
from connectors.sources.utilities import (
    SOURCE,
    Clock,
    UtilitiesConfig,
    UtilitiesSource,
    known_cities,
)
from connectors.sources.utilities.helpers import (
    Pacer,
    ReadingGenerator,
    build_fleet,
    parse_kpi_csv,
    rfc3339,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "utilities"
START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


class FakeClock(Clock):
    """Time moves only when the code under test sleeps; `on_sleep` can act at a given time."""

    def __init__(self, on_sleep=None) -> None:
        self.t = 0.0
        self.on_sleep = on_sleep

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return START + timedelta(seconds=self.t)

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        if self.on_sleep:
            self.on_sleep(self.t)


class FakeProducer:
    """Keeps what run_source sends, per topic."""

    def __init__(self) -> None:
        self.events: dict[str, list[dict]] = {}
        self.raw: dict[str, list[tuple[bytes, dict]]] = {}

    def send_event(self, topic: str, event: dict, *, key: str) -> None:
        self.events.setdefault(topic, []).append(event)

    def send_raw(self, topic: str, value: bytes, *, key: str, headers: list) -> None:
        self.raw.setdefault(topic, []).append((value, dict(headers)))

    def confirm(self) -> int:
        return 0


def stream_config(**settings) -> UtilitiesConfig:
    return load_config(
        "utilities", UtilitiesConfig, overrides={"seed": 7, "meters": 300, **settings}
    )


def records(items) -> list[Record]:
    return [item for item in items if isinstance(item, Record)]


def run_stream(tmp_path: Path, **settings) -> tuple[FakeProducer, StateStore, object]:
    producer, store = FakeProducer(), StateStore(tmp_path, "utilities")
    source = UtilitiesSource(clock=FakeClock())
    report = run_source(source, stream_config(**settings), producer, store)
    return producer, store, report


# ------------------------------------------------------------------------------------- stream


def test_same_seed_gives_the_same_first_100_events_and_another_seed_does_not():
    def first_100(seed: int) -> list[tuple]:
        items = UtilitiesSource(clock=FakeClock()).read(stream_config(seed=seed), {})
        return [(r.event_id, r.key, r.time, r.data) for r in records(items)[:100]]

    first = first_100(7)
    assert len(first) == 100
    assert first == first_100(7)
    assert first != first_100(8)


def test_late_and_out_of_order_fractions_hold_over_5000_readings():
    generator = ReadingGenerator(
        build_fleet(["KENBO", "UGKLA", "TZDAR"], 500),
        {},
        random.Random(3),
        late_fraction=0.02,
        out_of_order_fraction=0.05,
    )
    late = out_of_order = 0
    highest: dict[str, int] = {}
    for _ in range(5_000):
        _, data = generator.next(START)
        late += data["reading_time"] < rfc3339(START - timedelta(minutes=5))
        out_of_order += data["sequence"] < highest.get(data["meter_id"], -1)
        highest[data["meter_id"]] = max(highest.get(data["meter_id"], -1), data["sequence"])
    assert late / 5_000 == pytest.approx(0.02, abs=0.008)
    assert out_of_order / 5_000 == pytest.approx(0.05, abs=0.01)


def test_late_readings_were_measured_5_to_120_minutes_before_sending():
    generator = ReadingGenerator(
        build_fleet(["KENBO"], 50), {}, random.Random(1), late_fraction=1.0, out_of_order_fraction=0
    )
    ages = [
        START - datetime.fromisoformat(generator.next(START)[1]["reading_time"]) for _ in range(500)
    ]
    assert min(ages) >= timedelta(minutes=5) and max(ages) <= timedelta(minutes=120)


def test_electricity_registers_rise_with_sequence_and_water_volumes_are_per_reading():
    fleet = build_fleet(["GHACC"], 10)
    generator = ReadingGenerator(
        fleet, {}, random.Random(5), late_fraction=0, out_of_order_fraction=0
    )
    by_meter: dict[str, list[tuple[int, float]]] = {}
    for _ in range(2_000):
        meter, data = generator.next(START)
        by_meter.setdefault(meter.meter_id, []).append((data["sequence"], data["value"]))
    water = [m for m in fleet if m.service == "water"]
    electricity = [m for m in fleet if m.service == "electricity"]
    assert [m.meter_id for m in water] == [
        "GHACC-W-000001",
        "GHACC-W-000002",
        "GHACC-W-000003",
        "GHACC-W-000004",
    ]
    for meter in electricity:
        values = [value for _, value in sorted(by_meter[meter.meter_id])]
        assert all(b > a for a, b in itertools.pairwise(values))
    for meter in water:
        assert max(value for _, value in by_meter[meter.meter_id]) <= 0.24


def test_pacer_allows_rate_events_per_second_on_an_injected_clock():
    clock = FakeClock()
    pacer = Pacer(1_000, clock)
    taken = 0
    while clock.t < 10.0:
        taken += pacer.take()
    assert abs(taken - 10_000) <= 1


def test_pacer_hands_out_at_most_its_burst_after_a_stall():
    clock = FakeClock()
    pacer = Pacer(1_000, clock, burst_s=0.25)
    clock.t = 5.0  # the caller was busy for 5 s
    assert pacer.take() == 250
    assert pacer.take() == 1 and clock.t == pytest.approx(5.001)


def test_stream_sends_rate_times_duration_valid_readings_and_checkpoints_each_second(tmp_path):
    producer, store, report = run_stream(tmp_path, rate=400, duration_s=3, outage_probability=0)

    readings = producer.events["utility.meter.reading.v1"]
    assert report.by_stream == {"readings": 1_200} and report.rejected == 0
    assert report.checkpoints == 4  # after seconds 1, 2, 3 and at the end
    assert len({event["id"] for event in readings}) == 1_200
    contract = get_contract("org.urbanflow.utility.meter_reading.v1")
    for event in readings:
        contract.validate_event(event)
    saved = store.load()["stream"]
    assert sum(saved["next_sequence"].values()) == 1_200
    assert saved["run"] == {
        "readings": 1_200,
        "seconds": 3.0,
        "target_rate": 400.0,
        "achieved_rate": 400.0,
    }


def test_a_restart_continues_every_meters_sequence(tmp_path):
    _, store, _ = run_stream(tmp_path, rate=300, duration_s=2, outage_probability=0)
    next_sequence = store.load()["stream"]["next_sequence"]

    producer, _, _ = run_stream(tmp_path, rate=300, duration_s=2, outage_probability=0, seed=8)

    first_seen: dict[str, int] = {}
    for event in producer.events["utility.meter.reading.v1"]:
        data = event["data"]
        first_seen[data["meter_id"]] = min(
            first_seen.get(data["meter_id"], 10**9), data["sequence"]
        )
    assert first_seen
    assert all(seq == next_sequence.get(meter, 0) for meter, seq in first_seen.items())


def test_outages_are_sent_when_they_start_and_again_when_they_end(tmp_path):
    producer, _, report = run_stream(tmp_path, rate=20, duration_s=60, outage_probability=0.5)

    outages = producer.events["utility.service.outage.v1"]
    contract = get_contract("org.urbanflow.utility.outage.v1")
    for event in outages:
        contract.validate_event(event)
    started = {e["data"]["outage_id"]: e["data"] for e in outages if not e["data"]["ended_at"]}
    ended = [e["data"] for e in outages if e["data"]["ended_at"]]
    assert report.rejected == 0 and 15 <= len(started) <= 45 and ended
    for data in ended:
        assert data["started_at"] == started[data["outage_id"]]["started_at"]
        assert data["ended_at"] > data["started_at"]


def test_sigterm_ends_an_unbounded_stream_with_a_final_checkpoint(tmp_path):
    def terminate_at_2s(t: float) -> None:
        if 2.0 <= t < 2.01:
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    source = UtilitiesSource(clock=FakeClock(on_sleep=terminate_at_2s))
    items = list(source.read(stream_config(rate=100, duration_s=0, outage_probability=0), {}))

    assert isinstance(items[-1], Checkpoint)
    assert items[-1].state["stream"]["run"]["readings"] == len(records(items)) == 200
    assert signal.getsignal(signal.SIGTERM) is previous


def test_stream_config_refuses_unknown_cities_and_csv_inputs():
    with pytest.raises(ConfigError, match="XXABC not in ref_cities"):
        SOURCE.read(stream_config(cities=["KENBO", "XXABC"]), {})
    with pytest.raises(ConfigError, match="mode stream takes no inputs"):
        SOURCE.read(stream_config(inputs=[str(FIXTURES)]), {})
    with pytest.raises(ConfigError, match="out_of_order_fraction"):
        stream_config(out_of_order_fraction=0.6)


# ---------------------------------------------------------------------------------------- kpi


def parse(name: str):
    path = FIXTURES / name
    return parse_kpi_csv(path.read_text(encoding="utf-8"), str(path), known_cities())


def test_kpi_rows_parse_to_contract_values():
    rows, rejects = parse("kpi_2025_01.csv")

    assert rejects == [] and len(rows) == 8
    assert rows[0] == {
        "city_code": "KENBO",
        "utility": "Nairobi City Water and Sewerage Company",
        "service": "water",
        "month": "2025-01",
        "coverage_pct": 82.5,
        "hours_of_supply_per_day": 17.5,
        "connections": 548_312,
        "non_revenue_water_pct": 41.2,
        "source_file": "kpi_2025_01.csv",
        "row": 2,
    }
    assert rows[1]["non_revenue_water_pct"] is None and rows[1]["service"] == "electricity"
    assert rows[7]["utility"] == "Lusaka Water Supply, Sanitation and Sewerage Company"
    contract = get_contract("org.urbanflow.utility.kpi.v1")
    for row in rows:
        contract.validate_data(row)


def test_kpi_file_without_the_water_only_column_loads_electricity_rows():
    rows, rejects = parse("kpi_zesco_2025_01.csv")
    assert rejects == []
    assert [(r["city_code"], r["non_revenue_water_pct"], r["row"]) for r in rows] == [
        ("ZMLUN", None, 2),
        ("ZMKIW", None, 3),
        ("ZMNLA", None, 4),
    ]


def test_kpi_bad_rows_are_rejected_naming_file_line_and_column_and_the_rest_load():
    rows, rejects = parse("kpi_2025_02.csv")
    origin = str(FIXTURES / "kpi_2025_02.csv")

    assert [(r["city_code"], r["row"]) for r in rows] == [("KENBO", 2), ("GHACC", 6), ("PELIM", 7)]
    assert [r.reason for r in rejects] == [
        f"{origin}:3 coverage_pct: 140 is outside 0 to 100",
        f"{origin}:4 hours_of_supply_per_day: 'n/a' is not a number",
        f"{origin}:5 city_code: 'XXABC' is not a city in ref_cities",
    ]
    payload = orjson.loads(rejects[0].payload)
    assert (payload["source_file"], payload["row"]) == ("kpi_2025_02.csv", 3)
    assert payload["cells"]["coverage_pct"] == "140" and rejects[0].key == "UGKLA"
    assert [r.line for r in rejects] == [3, 4, 5]


def test_kpi_non_revenue_water_is_required_for_water_and_refused_for_electricity():
    text = (
        "city_code,utility,service,month,coverage_pct,hours_of_supply_per_day,"
        "non_revenue_water_pct,connections\n"
        "RWKGL,WASAC,water,2025-01,80,20,,1000\n"
        "RWKGL,REG,electricity,2025-13,70,22,12,-5\n"
    )
    rows, rejects = parse_kpi_csv(text, "drop.csv", known_cities())
    assert rows == []
    assert [r.reason for r in rejects] == [
        "drop.csv:2 non_revenue_water_pct: required for water",
        "drop.csv:3 month: '2025-13' is not a month YYYY-MM; connections: '-5' is not a whole "
        "number >= 0; non_revenue_water_pct: applies to water only, leave it empty",
    ]


def test_kpi_file_missing_required_columns_is_refused_naming_file_and_columns():
    with pytest.raises(SourceFormatError) as info:
        parse("kpi_missing_columns.csv")
    assert info.value.origin == str(FIXTURES / "kpi_missing_columns.csv")
    assert info.value.line == 1
    assert "missing required column(s) hours_of_supply_per_day, connections" in str(info.value)


def test_kpi_run_sends_rows_rejects_bad_ones_to_the_dlq_and_skips_loaded_files(tmp_path):
    drops = tmp_path / "drops"
    drops.mkdir()
    for name in ("kpi_2025_01.csv", "kpi_2025_02.csv", "kpi_zesco_2025_01.csv"):
        shutil.copy(FIXTURES / name, drops / name)
    config = load_config(
        "utilities", UtilitiesConfig, overrides={"mode": "kpi", "inputs": [str(drops)]}
    )
    store, producer = StateStore(tmp_path, "utilities"), FakeProducer()

    first = run_source(SOURCE, config, producer, store)
    second = run_source(SOURCE, config, producer, store)

    assert (first.by_stream, first.rejected, first.checkpoints) == ({"kpis": 14}, 3, 3)
    assert (second.sent, second.rejected) == (0, 0)
    dead = producer.raw["utility.kpi.monthly.v1.dlq"]
    assert [headers["uf.error.reason"].split(b" ", 1)[0] for _, headers in dead] == [
        f"{drops / 'kpi_2025_02.csv'}:{line}".encode() for line in (3, 4, 5)
    ]
    assert b'"row":3' in dead[0][0] and dead[0][1]["uf.error.class"] == b"source"
    sources = {e["source"] for e in producer.events["utility.kpi.monthly.v1"]}
    assert "urn:utility:kenbo:water" in sources and "urn:utility:zmlun:electricity" in sources
    assert len(store.load()["kpi_files"]) == 3


def test_kpi_run_with_a_malformed_file_sends_nothing(tmp_path):
    config = load_config(
        "utilities", UtilitiesConfig, overrides={"mode": "kpi", "inputs": [str(FIXTURES)]}
    )
    producer = FakeProducer()
    with pytest.raises(SourceFormatError, match=r"kpi_missing_columns\.csv:1"):
        run_source(SOURCE, config, producer, StateStore(tmp_path, "utilities"))
    assert producer.events == {} and producer.raw == {}
