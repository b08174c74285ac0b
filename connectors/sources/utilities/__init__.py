"""City utilities: streamed meter readings and outages, and monthly KPI CSV drops.

One source, `utilities`, in two modes (one package holds one `SOURCE`, and both modes share the
`urn:utility:<city>:<service>` sources):

* `mode: stream` simulates a fleet of water-kiosk and prepaid-electricity meters sending readings
  at `rate` events/s (late and out-of-order ones included) plus service outages, checkpointing
  every second the next sequence of every meter, so a restart continues them;
* `mode: kpi` loads header-checked monthly KPI CSV files, each once (by content hash); a bad row
  goes to the dead-letter topic with `file:line column: reason` and the rest still loads.

    urbanflow source run utilities --set rate=2000 --set duration_s=0     # until Ctrl-C / SIGTERM
    urbanflow source run utilities drops/ --set mode=kpi
"""

from __future__ import annotations

import hashlib
import random
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from connectors.errors import ConfigError, SourceFormatError
from connectors.events import stable_event_id
from connectors.reference import load_cities
from connectors.sdk import Checkpoint, Record, Refused, Source, Stream
from connectors.sources.utilities.helpers import (
    Clock,
    OutageSimulator,
    Pacer,
    ReadingGenerator,
    build_fleet,
    parse_kpi_csv,
    rfc3339,
    source_urn,
)
from connectors.sources.utilities.settings import (
    KPI_SUFFIX,
    KPI_TOPIC,
    KPI_TYPE,
    OUTAGE_TYPE,
    OUTAGES_TOPIC,
    READING_TYPE,
    READINGS_TOPIC,
    SOURCE_NAME,
)

__all__ = [
    "KPIS",
    "OUTAGES",
    "READINGS",
    "SOURCE",
    "Clock",
    "UtilitiesConfig",
    "UtilitiesSource",
    "known_cities",
    "kpi_files",
]

#: Checkpoint (and roll for a new outage) once per this many seconds.
TICK_S = 1.0

Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class UtilitiesConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`stream`: simulated meters and outages; `kpi`: monthly KPI CSV files or folders."""

    mode: Literal["stream", "kpi"] = "stream"
    inputs: tuple[str, ...] = ()
    rate: Annotated[float, msgspec.Meta(gt=0)] = 500.0
    duration_s: Annotated[float, msgspec.Meta(ge=0)] = 10.0  # 0: until SIGTERM / SIGINT
    meters: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 2_000
    cities: tuple[str, ...] = ()  # UN/LOCODEs from ref_cities; empty: all of them
    late_fraction: Fraction = 0.02
    out_of_order_fraction: Annotated[float, msgspec.Meta(ge=0.0, le=0.45)] = 0.05
    outage_probability: Fraction = 0.02  # chance per second that an outage starts
    seed: int | None = None
    #: Appended to every source URN, to tell a test or load-test run from a utility's own feed.
    run_tag: Annotated[str, msgspec.Meta(pattern="^[a-z0-9-]*$", max_length=40)] = ""


READINGS = Stream(
    name="readings",
    topic=READINGS_TOPIC,
    event_type=READING_TYPE,
    key="meter id",
    cursor="next sequence per meter",
)
OUTAGES = Stream(name="outages", topic=OUTAGES_TOPIC, event_type=OUTAGE_TYPE, key="outage id")
KPIS = Stream(
    name="kpis",
    topic=KPI_TOPIC,
    event_type=KPI_TYPE,
    key="city code",
    cursor="content hash of each CSV file",
)


def known_cities() -> set[str]:
    """City codes of `ref_cities`, the seed the warehouse joins on."""
    return {city.code for city in load_cities()}


def kpi_files(inputs: Iterable[str]) -> list[Path]:
    """Files as given; folders contribute their *.csv files in name order."""
    found: list[Path] = []
    for text in inputs:
        path = Path(text)
        if not path.exists():
            raise SourceFormatError(text, "no such file or directory")
        found.extend(sorted(path.glob(f"*{KPI_SUFFIX}")) if path.is_dir() else [path])
    return found


@contextmanager
def _stop_on_signals() -> Iterator[Callable[[], bool]]:
    """SIGTERM / SIGINT end the stream cleanly (last checkpoint sent) instead of killing it.

    Only the main thread may install handlers; elsewhere the stream stops at its duration.
    """
    stopped = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stopped.is_set
        return
    previous = {
        sig: signal.signal(sig, lambda *_: stopped.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield stopped.is_set
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class UtilitiesSource(Source):
    name = SOURCE_NAME
    description = (
        "City utilities: simulated meter readings and outages streamed at a set rate "
        "(mode=stream), monthly KPI CSV drops (mode=kpi)"
    )
    config = UtilitiesConfig

    def __init__(
        self,
        readings: Stream = READINGS,
        outages: Stream = OUTAGES,
        kpis: Stream = KPIS,
        clock: Clock | None = None,
    ) -> None:
        """Streams and clock are replaceable so benchmarks use a scratch topic and tests a fake
        clock; `SOURCE` uses the declared topics and the system clock."""
        self.readings, self.outages, self.kpis = readings, outages, kpis
        self.streams = (readings, outages, kpis)  # type: ignore[misc]
        self.clock = clock or Clock()

    def check(self, config: UtilitiesConfig) -> list[str]:
        problems = []
        unknown = sorted(set(config.cities) - known_cities())
        if unknown:
            problems.append(f"cities: {', '.join(unknown)} not in ref_cities")
        if config.mode == "kpi" and not config.inputs:
            problems.append("mode kpi: no inputs; give KPI CSV files or folders")
        if config.mode == "stream" and config.inputs:
            problems.append("mode stream takes no inputs; add --set mode=kpi to load CSV files")
        problems += [
            f"{p}: no such file or directory" for p in config.inputs if not Path(p).exists()
        ]
        return problems

    def read(self, config: UtilitiesConfig, state: dict) -> Iterator[Record | Refused | Checkpoint]:
        """Refuse an inconsistent config before anything is sent, then run the chosen mode."""
        problems = self.check(config)
        if problems:
            raise ConfigError(f"source {SOURCE_NAME!r}: " + "; ".join(problems))
        if config.mode == "kpi":
            return self._kpi(config, state)
        return self._stream(config, state)

    # ----------------------------------------------------------------------------- stream mode

    def _stream(self, config: UtilitiesConfig, state: dict) -> Iterator[Record | Checkpoint]:
        cities = config.cities or sorted(known_cities())
        saved = state.get("stream", {})
        rng = random.Random(config.seed)
        readings = ReadingGenerator(
            build_fleet(cities, config.meters, config.run_tag),
            saved.get("next_sequence", {}),
            rng,
            late_fraction=config.late_fraction,
            out_of_order_fraction=config.out_of_order_fraction,
        )
        outages = OutageSimulator(cities, config.outage_probability, rng, saved.get("open", []))
        clock = self.clock
        pacer = Pacer(config.rate, clock)
        started = clock.monotonic()
        next_tick = started + TICK_S
        sent = 0

        def checkpoint() -> Checkpoint:
            seconds = clock.monotonic() - started
            run = {"readings": sent, "seconds": round(seconds, 3), "target_rate": config.rate}
            run["achieved_rate"] = round(sent / seconds, 1) if seconds else 0.0
            stream = {
                "next_sequence": readings.next_sequences(),
                "open": list(outages.open),
                "run": run,
            }
            return Checkpoint({**state, "stream": stream})

        with _stop_on_signals() as stopped:
            while not stopped() and not (
                config.duration_s and clock.monotonic() - started >= config.duration_s
            ):
                due = pacer.take()
                now = clock.now()
                now_iso = rfc3339(now)
                for _ in range(due):
                    meter, data = readings.next(now)
                    yield self._reading(meter.meter_id, meter.source, data, now_iso)
                sent += due
                if clock.monotonic() >= next_tick and readings.settled:
                    while clock.monotonic() >= next_tick:
                        next_tick += TICK_S
                        yield from self._outages(outages.tick(now), config.run_tag)
                    yield checkpoint()
        now_iso = rfc3339(clock.now())
        for meter, data in readings.drain():
            yield self._reading(meter.meter_id, meter.source, data, now_iso)
            sent += 1
        yield checkpoint()

    def _reading(self, meter_id: str, source: str, data: dict[str, Any], now_iso: str) -> Record:
        return Record(
            stream=self.readings,
            key=meter_id,
            source=source,
            event_id=stable_event_id(source, meter_id, data["sequence"]),
            data=data,
            subject=data["city_code"],
            time=now_iso,
        )

    def _outages(self, changes: list[dict[str, Any]], run_tag: str) -> Iterator[Record]:
        for data in changes:
            source = source_urn(data["city_code"], data["service"], run_tag)
            yield Record(
                stream=self.outages,
                key=data["outage_id"],
                source=source,
                event_id=stable_event_id(source, data["outage_id"], data["ended_at"]),
                data=data,
                subject=data["city_code"],
                time=data["ended_at"] or data["started_at"],
            )

    # -------------------------------------------------------------------------------- kpi mode

    def _kpi(self, config: UtilitiesConfig, state: dict) -> Iterator[Record | Refused | Checkpoint]:
        """Parse every new file first (a bad header refuses the run before anything is sent),
        then send each file's rows and checkpoint its hash."""
        loaded: dict[str, str] = dict(state.get("kpi_files", {}))
        cities = known_cities()
        parsed = []
        for path in kpi_files(config.inputs):
            payload = path.read_bytes()
            digest = hashlib.sha256(payload).hexdigest()
            if digest in loaded or any(digest == d for d, *_ in parsed):
                continue
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SourceFormatError(str(path), f"not UTF-8 text (byte {exc.start})") from None
            parsed.append((digest, path, *parse_kpi_csv(text, str(path), cities)))
        for digest, path, rows, rejects in parsed:
            for data in rows:
                source = source_urn(data["city_code"], data["service"], config.run_tag)
                yield Record(
                    stream=self.kpis,
                    key=data["city_code"],
                    source=source,
                    event_id=stable_event_id(source, data),
                    data=data,
                    subject=data["city_code"],
                )
            yield from (reject.replace(stream=self.kpis) for reject in rejects)
            loaded[digest] = path.name
            yield Checkpoint({**state, "kpi_files": dict(loaded)})


SOURCE = UtilitiesSource()
