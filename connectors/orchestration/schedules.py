"""The source-schedule file (`dags/sources.yml`): when each pull source runs and on what.

Declarative, so adding a source's schedule is a reviewed YAML change, not code: one entry per DAG,
its source, schedule (cron or preset), inputs, `--set` settings, retries with exponential backoff,
timeout, owner, tags and doc. The file is read by the DAG file at parse time, so this module does
no more than read one small YAML file; the sources' own settings are checked by
`check_source_configs` (tests and `urbanflow`), not at every parse.

Layout::

    defaults:            # optional; every key of an entry except source/schedule/inputs/config/doc
      owner: urbanflow-data
      retries: 3
      retry_delay: 2m    # first retry; doubles each time up to max_retry_delay
      max_retry_delay: 30m
      timeout: 30m       # per run (Airflow's execution_timeout)
      tags: [source]
    sources:
      sdmx:              # DAG id urbanflow_source_sdmx
        schedule: "0 5 * * *"
        inputs: [sample_data/sdmx]      # relative paths are under UF_HOME; URLs as they are
        config: {timeout_s: 120}        # what `urbanflow source run --set key=value` would set
        doc: National statistics offices' city SDG series.
      hxl_displacement_cities:
        source: hxl                     # default: the entry's key
        ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import msgspec
import yaml

from connectors.errors import ConfigError

DAG_ID_PREFIX = "urbanflow_source_"
PRESETS = frozenset({"@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"})
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?LW#]+$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

Duration = int | float | str
Retries = Annotated[int, msgspec.Meta(ge=0, le=20)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class ScheduleFileError(ConfigError):
    """The schedule file is missing, not YAML, or an entry is invalid; names the file and key."""


class _Defaults(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    owner: Annotated[str, msgspec.Meta(min_length=1)] = "urbanflow"
    retries: Retries = 2
    retry_delay: Duration = "2m"
    max_retry_delay: Duration = "30m"
    timeout: Duration = "30m"
    tags: list[Tag] = []
    enabled: bool = True


class _Entry(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    schedule: str | None
    doc: Annotated[str, msgspec.Meta(min_length=1)]
    source: str | None = None
    inputs: list[str] = []
    config: dict[str, Any] = {}
    owner: Annotated[str, msgspec.Meta(min_length=1)] | None = None
    retries: Retries | None = None
    retry_delay: Duration | None = None
    max_retry_delay: Duration | None = None
    timeout: Duration | None = None
    tags: list[Tag] = []
    enabled: bool | None = None


class _File(msgspec.Struct, forbid_unknown_fields=True):
    sources: dict[str, dict[str, Any]]
    defaults: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class SourceSchedule:
    """One source DAG, resolved: the entry merged over the file's defaults, durations parsed."""

    name: str
    source: str
    schedule: str | None  # None: runs only when triggered
    inputs: tuple[str, ...]
    config: dict[str, Any]
    owner: str
    retries: int
    retry_delay: timedelta
    max_retry_delay: timedelta
    timeout: timedelta
    tags: tuple[str, ...]
    doc: str
    enabled: bool

    @property
    def dag_id(self) -> str:
        return DAG_ID_PREFIX + self.name

    def resolved_inputs(self, home: Path) -> list[str]:
        """Inputs as the source reads them: URLs unchanged, relative paths under `home`."""
        return [
            item if "://" in item or Path(item).is_absolute() else str(home / item)
            for item in self.inputs
        ]


def parse_duration(value: Duration, where: str) -> timedelta:
    """`90` (seconds), `"90s"`, `"5m"`, `"2h"`, `"1d"` -> timedelta; > 0."""
    if isinstance(value, bool):
        raise ScheduleFileError(f"{where}: expected a duration such as 90s, 5m or 2h, got {value}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if not match:
            raise ScheduleFileError(
                f"{where}: {value!r} is not a duration; write e.g. 90s, 5m, 2h or 1d"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ScheduleFileError(f"{where}: a duration must be positive, got {value!r}")
    return timedelta(seconds=seconds)


def check_schedule(value: str | None, where: str) -> str | None:
    """A preset (@daily ...), a 5-field cron expression, or None (manual runs only)."""
    if value is None:
        return None
    text = " ".join(value.split())
    if text.startswith("@"):
        if text not in PRESETS:
            raise ScheduleFileError(
                f"{where}: unknown preset {value!r}; use one of {', '.join(sorted(PRESETS))} "
                "or a cron expression"
            )
        return text
    fields = text.split(" ")
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ScheduleFileError(
            f"{where}: {value!r} is not a cron expression (minute hour day month weekday, "
            "e.g. '0 5 * * *') or a preset such as @daily"
        )
    return text


def _validation_message(exc: msgspec.ValidationError, where: str) -> str:
    """msgspec says `... - at `$.retries``: name the key the way the file spells it."""
    text = str(exc)
    match = re.search(r" - at `\$(.*)`$", text)
    if match:
        text = text[: match.start()]
        where = where + match.group(1).replace("[", ".").replace("]", "")
    return f"{where}: {text}"


def parse_schedules(document: Any, origin: str) -> list[SourceSchedule]:
    """Validate a loaded schedule document; `origin` (the file) prefixes every error."""
    try:
        parsed = msgspec.convert(document, _File)
    except msgspec.ValidationError as exc:
        raise ScheduleFileError(_validation_message(exc, origin)) from None
    try:
        defaults = msgspec.convert(parsed.defaults, _Defaults)
    except msgspec.ValidationError as exc:
        raise ScheduleFileError(_validation_message(exc, f"{origin}: defaults")) from None
    if not parsed.sources:
        raise ScheduleFileError(f"{origin}: sources: no entry; declare at least one source")
    result = []
    for name, raw in parsed.sources.items():
        where = f"{origin}: sources.{name}"
        if not _NAME.match(str(name)):
            raise ScheduleFileError(
                f"{where}: an entry's key names its DAG ({DAG_ID_PREFIX}<key>): use lowercase "
                "letters, digits and underscores, starting with a letter"
            )
        try:
            entry = msgspec.convert(raw, _Entry)
        except msgspec.ValidationError as exc:
            raise ScheduleFileError(_validation_message(exc, where)) from None
        retry_delay = parse_duration(
            entry.retry_delay if entry.retry_delay is not None else defaults.retry_delay,
            f"{where}.retry_delay",
        )
        max_retry_delay = parse_duration(
            entry.max_retry_delay
            if entry.max_retry_delay is not None
            else defaults.max_retry_delay,
            f"{where}.max_retry_delay",
        )
        if max_retry_delay < retry_delay:
            raise ScheduleFileError(
                f"{where}.max_retry_delay: {max_retry_delay} is shorter than retry_delay "
                f"{retry_delay}"
            )
        result.append(
            SourceSchedule(
                name=name,
                source=entry.source or name,
                schedule=check_schedule(entry.schedule, f"{where}.schedule"),
                inputs=tuple(entry.inputs),
                config=dict(entry.config),
                owner=entry.owner or defaults.owner,
                retries=entry.retries if entry.retries is not None else defaults.retries,
                retry_delay=retry_delay,
                max_retry_delay=max_retry_delay,
                timeout=parse_duration(
                    entry.timeout if entry.timeout is not None else defaults.timeout,
                    f"{where}.timeout",
                ),
                tags=tuple(dict.fromkeys([*defaults.tags, *entry.tags])),
                doc=entry.doc.strip(),
                enabled=entry.enabled if entry.enabled is not None else defaults.enabled,
            )
        )
    return result


def load_schedules(path: Path) -> list[SourceSchedule]:
    """Read and validate the schedule file; errors name the file and the key at fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScheduleFileError(
            f"source-schedule file {path} does not exist (set UF_AIRFLOW_SOURCE_SCHEDULES)"
        ) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScheduleFileError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ScheduleFileError(f"{path}: expected a mapping with a `sources:` key")
    return parse_schedules(document, str(path))


def check_source_configs(schedules: list[SourceSchedule], home: Path) -> list[str]:
    """Problems of each entry's source name and settings, checked against the source's own typed
    config (what `urbanflow source run` would refuse); empty when every entry would start."""
    from connectors.sdk import load_config
    from connectors.sources.registry import get_source

    problems = []
    for entry in schedules:
        try:
            source = get_source(entry.source)
            load_config(entry.source, source.config, overrides=run_overrides(entry, home))
        except ConfigError as exc:
            problems.append(f"sources.{entry.name}: {exc}")
    return problems


def run_overrides(entry: SourceSchedule, home: Path) -> dict[str, Any]:
    """The settings a run of `entry` passes to the source: its config, then its inputs."""
    overrides = dict(entry.config)
    if entry.inputs:
        overrides["inputs"] = entry.resolved_inputs(home)
    return overrides
