"""Pure logic of the utilities source: the simulated meter fleet, pacing and KPI CSV parsing.

Nothing here talks to Kafka or reads the system clock directly: time comes from a `Clock` the
caller passes in, randomness from a seeded `random.Random`, so unit tests replay a stream exactly.
"""

from __future__ import annotations

import csv
import io
import math
import random
import re
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from connectors.errors import SourceFormatError
from connectors.refusals import Refused
from connectors.sources.utilities.settings import (
    KPI_OPTIONAL_COLUMNS,
    KPI_REQUIRED_COLUMNS,
    LATE_MINUTES,
    METER_KINDS,
    METERS_PER_SITE,
    ON_TIME_JITTER_S,
    OUTAGE_CAUSES,
    OUTAGE_CUSTOMERS,
    OUTAGE_SECONDS,
    SERVICES,
    WATER_SHARE,
)

_MONTH_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
_INTEGER_RE = re.compile(r"^[0-9]+$")
#: Rounding leaves 0.9999999 tokens where 1 is due; a sleep for the rest would be too short for
#: the clock to move, so that much is counted as a whole token.
_TOKEN_SLACK = 1e-6


def rfc3339(moment: datetime) -> str:
    """UTC with milliseconds and a `Z`, the form every contract's date-time accepts."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def source_urn(city_code: str, service: str, run_tag: str = "") -> str:
    """`urn:utility:<city>:<service>` (DESIGN.md §2), plus `:<run_tag>` to tell simulator runs
    apart (a load test, an integration test) from a utility's real feed."""
    urn = f"urn:utility:{city_code.lower()}:{service}"
    return f"{urn}:{run_tag}" if run_tag else urn


class Clock:
    """Monotonic time, wall time and sleep in one object, so a test can replace all three."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class Pacer:
    """Token bucket: `rate` tokens a second, at most `burst_s` seconds' worth saved up.

    Handing out every whole token at once lets the caller build events in small bursts instead
    of sleeping per event (a sleep costs more than an event at thousands a second). The cap means
    a stall (a GC pause, a slow broker) is not made up by a flood afterwards: the achieved rate is
    then honestly lower, and the run report shows it.
    """

    def __init__(self, rate: float, clock: Clock, *, burst_s: float = 0.25) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * burst_s)
        self._clock = clock
        self._tokens = 0.0
        self._last = clock.monotonic()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self) -> int:
        """Wait until at least one event is due; return how many are due now (>= 1)."""
        self._refill()
        while self._tokens < 1.0 - _TOKEN_SLACK:
            self._clock.sleep((1.0 - self._tokens) / self.rate)
            self._refill()
        due = max(1, int(self._tokens + _TOKEN_SLACK))
        self._tokens -= due
        return due


@dataclass(frozen=True, slots=True)
class Meter:
    """One simulated meter: the fields every reading repeats are built once, in `template`."""

    meter_id: str
    city_code: str
    service: str
    source: str
    cumulative: bool
    base: float  # register at sequence 0 (cumulative meters)
    mean: float  # mean amount between two readings
    template: Mapping[str, Any]


def build_fleet(cities: Sequence[str], count: int, run_tag: str = "") -> list[Meter]:
    """`count` meters spread over `cities`, WATER_SHARE of them water kiosks.

    Identical for the same cities and count whatever the seed, so the sequences a checkpoint
    saved still belong to the same meters after a restart.
    """
    numbers: dict[tuple[str, str], int] = {}
    fleet = []
    for index in range(count):
        city = cities[index % len(cities)]
        rank = index // len(cities)  # the meter's rank within its city
        service = (
            "water" if int((rank + 1) * WATER_SHARE) > int(rank * WATER_SHARE) else "electricity"
        )
        kind, unit, cumulative, letter, site_letter, mean = METER_KINDS[service]
        number = numbers.get((city, service), 0) + 1
        numbers[city, service] = number
        meter_id = f"{city}-{letter}-{number:06d}"
        site = (number - 1) // METERS_PER_SITE[service] + 1
        template = {
            "meter_id": meter_id,
            "city_code": city,
            "service": service,
            "kind": kind,
            "unit": unit,
            "cumulative": cumulative,
            "site_id": f"{city}-{site_letter}-{site:04d}",
        }
        base = round(random.Random(meter_id).uniform(100.0, 5_000.0), 1) if cumulative else 0.0
        source = source_urn(city, service, run_tag)
        fleet.append(Meter(meter_id, city, service, source, cumulative, base, mean, template))
    return fleet


class ReadingGenerator:
    """Meter readings in arrival order, with late and out-of-order ones mixed in.

    Out of order: with probability p/(1-p) a meter's next two readings are swapped, the lower
    sequence following one slot later, so a fraction p of all readings arrives after a higher
    sequence of its meter. Late: independently, a fraction of readings was measured LATE_MINUTES
    before it is sent (a kiosk that was offline uploading its buffer).
    """

    def __init__(
        self,
        fleet: Sequence[Meter],
        next_sequence: Mapping[str, int],
        rng: random.Random,
        *,
        late_fraction: float,
        out_of_order_fraction: float,
    ) -> None:
        self.fleet = fleet
        self._next = [next_sequence.get(meter.meter_id, 0) for meter in fleet]
        self._rng = rng
        self._late = late_fraction
        self._swap = out_of_order_fraction / (1.0 - out_of_order_fraction)
        self._held: tuple[Meter, dict[str, Any]] | None = None

    @property
    def settled(self) -> bool:
        """No reading is held back, so the sequences are safe to checkpoint."""
        return self._held is None

    def next_sequences(self) -> dict[str, int]:
        """Per meter, the sequence its next reading gets (what a checkpoint saves)."""
        return {m.meter_id: n for m, n in zip(self.fleet, self._next, strict=True) if n}

    def _reading(self, index: int, now: datetime) -> tuple[Meter, dict[str, Any]]:
        meter = self.fleet[index]
        rng = self._rng
        sequence = self._next[index]
        self._next[index] = sequence + 1
        if rng.random() < self._late:
            measured = now - timedelta(minutes=rng.uniform(*LATE_MINUTES))
        else:
            measured = now - timedelta(seconds=rng.uniform(0.0, ON_TIME_JITTER_S))
        if meter.cumulative:  # strictly increasing: the jitter stays under half a mean step
            value = meter.base + meter.mean * (sequence + rng.uniform(-0.45, 0.45))
        else:
            value = rng.uniform(0.0, 2.0 * meter.mean)
        data = dict(meter.template)
        data["reading_time"] = rfc3339(measured)
        data["value"] = round(value, 3)
        data["sequence"] = sequence
        return meter, data

    def next(self, now: datetime) -> tuple[Meter, dict[str, Any]]:
        """The next reading to send at `now`."""
        if self._held is not None:
            held, self._held = self._held, None
            return held
        index = self._rng.randrange(len(self.fleet))
        if self._rng.random() < self._swap:
            self._held = self._reading(index, now)
        return self._reading(index, now)

    def drain(self) -> Iterator[tuple[Meter, dict[str, Any]]]:
        """The held-back reading, if any, so that stopping loses nothing."""
        if self._held is not None:
            held, self._held = self._held, None
            yield held


class OutageSimulator:
    """Outages starting with `probability` per second in a random city and service; each is sent
    when it starts (ended_at null) and again when it ends. Open outages survive a restart."""

    def __init__(
        self,
        cities: Sequence[str],
        probability: float,
        rng: random.Random,
        open_outages: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self._cities = cities
        self._probability = probability
        self._rng = rng
        self.open = [dict(outage) for outage in open_outages]

    def tick(self, now: datetime) -> list[dict[str, Any]]:
        """Outage payloads to send for one elapsed second: the ones ending, then a new one."""
        now_iso = rfc3339(now)
        ending = [o for o in self.open if o["ends_at"] <= now_iso]
        self.open = [o for o in self.open if o["ends_at"] > now_iso]
        changes = [{**o["data"], "ended_at": o["ends_at"]} for o in ending]
        rng = self._rng
        if rng.random() < self._probability:
            city, service = rng.choice(self._cities), rng.choice(SERVICES)
            area = (
                f"Ward {rng.randint(1, 40)}"
                if service == "water"
                else f"Feeder {rng.randint(1, 60)}"
            )
            started = rfc3339(now)
            data = {
                "outage_id": f"{city}-{service[0].upper()}-{rng.getrandbits(40):010x}",
                "city_code": city,
                "service": service,
                "area": area,
                "started_at": started,
                "ended_at": None,
                "customers_affected": rng.randint(*OUTAGE_CUSTOMERS),
                "cause": rng.choice(OUTAGE_CAUSES[service]),
            }
            ends_at = rfc3339(now + timedelta(seconds=rng.uniform(*OUTAGE_SECONDS)))
            self.open.append({"data": data, "ends_at": ends_at})
            changes.append(data)
        return changes


# ------------------------------------------------------------------------------- KPI CSV drops


def _number(text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    if not low <= value <= high:
        raise ValueError(f"{text} is outside {low:g} to {high:g}")
    return value


def _kpi_row(
    cells: dict[str, str], known_cities: Collection[str]
) -> tuple[dict[str, Any], list[str]]:
    """The contract payload of one row (without file and line) and every problem found in it."""
    problems: list[str] = []
    data: dict[str, Any] = {}

    def check(column: str, convert: Any) -> None:
        try:
            data[column] = convert(cells[column])
        except ValueError as exc:
            problems.append(f"{column}: {exc}")

    def city(text: str) -> str:
        if text not in known_cities:
            raise ValueError(f"{text!r} is not a city in ref_cities")
        return text

    def utility(text: str) -> str:
        if not 1 <= len(text) <= 200:
            raise ValueError("must be 1 to 200 characters")
        return text

    def service(text: str) -> str:
        if text.lower() not in SERVICES:
            raise ValueError(f"{text!r} is not one of {', '.join(SERVICES)}")
        return text.lower()

    def month(text: str) -> str:
        if not _MONTH_RE.match(text):
            raise ValueError(f"{text!r} is not a month YYYY-MM")
        return text

    def connections(text: str) -> int:
        if not _INTEGER_RE.match(text):
            raise ValueError(f"{text!r} is not a whole number >= 0")
        if len(text) > 18:  # beyond what an event (orjson) and a BIGINT hold
            raise ValueError(f"{text[:30]!r}... is too large a number of connections")
        return int(text)

    check("city_code", city)
    check("utility", utility)
    check("service", service)
    check("month", month)
    check("coverage_pct", lambda text: _number(text, 0, 100))
    check("hours_of_supply_per_day", lambda text: _number(text, 0, 24))
    check("connections", connections)
    nrw = cells.get("non_revenue_water_pct", "")
    if data.get("service") == "electricity" and nrw:
        problems.append("non_revenue_water_pct: applies to water only, leave it empty")
    elif data.get("service") == "water" and not nrw:
        problems.append("non_revenue_water_pct: required for water")
    elif nrw:
        check("non_revenue_water_pct", lambda text: _number(text, 0, 100))
    data.setdefault("non_revenue_water_pct", None)
    return data, problems


def _kpi_header(header: list[str], origin: str) -> list[str]:
    columns = [cell.strip().lower() for cell in header]
    missing = [c for c in KPI_REQUIRED_COLUMNS if c not in columns]
    known = set(KPI_REQUIRED_COLUMNS) | set(KPI_OPTIONAL_COLUMNS)
    unknown = [c for c in columns if c not in known]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    for problem, names in (
        ("missing required column(s)", missing),
        ("unknown column(s)", unknown),
        ("duplicate column(s)", duplicated),
    ):
        if names:
            expected = ", ".join((*KPI_REQUIRED_COLUMNS, *KPI_OPTIONAL_COLUMNS))
            shown = ", ".join(n if n.isprintable() else repr(n) for n in names)  # one line
            raise SourceFormatError(origin, f"{problem} {shown}; expected {expected}", line=1)
    return columns


def parse_kpi_csv(
    text: str, origin: str, known_cities: Collection[str]
) -> tuple[list[dict[str, Any]], list[Refused]]:
    """Rows of a monthly KPI CSV drop as contract payloads, and the rows that are not valid.

    A bad header refuses the whole file (SourceFormatError naming it and the columns); a bad row
    is a `Refused` naming file, line and column (its payload: the file name, the row and its
    cells), and the other rows still load.
    """
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise SourceFormatError(origin, "file is empty")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        columns = _kpi_header(next(reader), origin)
        rows: list[dict[str, Any]] = []
        rejects: list[Refused] = []
        line = reader.line_num + 1
        for cells in reader:
            if any(cell.strip() for cell in cells):
                row = _kpi_record(columns, cells, line, origin, known_cities)
                (rejects if isinstance(row, Refused) else rows).append(row)
            line = reader.line_num + 1
    except csv.Error as exc:
        raise SourceFormatError(origin, f"unreadable CSV: {exc}", line=reader.line_num) from exc
    return rows, rejects


def _kpi_record(
    columns: list[str], cells: list[str], line: int, origin: str, known_cities: Collection[str]
) -> dict[str, Any] | Refused:
    named = dict(zip(columns, (cell.strip() for cell in cells), strict=False))
    key = named.get("city_code") or Path(origin).name

    def refused(reason: str) -> Refused:
        payload = {"source_file": Path(origin).name, "row": line, "cells": named}
        return Refused(reason, key=key, payload=orjson.dumps(payload), line=line)

    if len(cells) != len(columns):
        return refused(
            f"{origin}:{line} row: has {len(cells)} cells, the header has {len(columns)}"
        )
    data, problems = _kpi_row(named, known_cities)
    if problems:
        return refused(f"{origin}:{line} " + "; ".join(problems))
    data["source_file"] = Path(origin).name
    data["row"] = line
    return data
