"""The connector SDK: what a source declares and how every source is run.

A source is a small package under `connectors/sources/<name>/` whose `__init__.py` exposes
`SOURCE`, a `Source` subclass that declares

* `config`: a msgspec Struct (typed; unknown keys are rejected; secrets wrapped in `Secret`),
* `streams`: name, Kafka topic, contract, message key and cursor of every stream it emits,
* `check(config)`: config and reachability problems, before any data moves,
* `read(config, state)`: yields `Record`s, `Refused` items (bad input: to the stream's DLQ with
  the reason, `connectors.refusals`) and `Checkpoint`s (Singer's RECORD and STATE).

`run_source()` sends records with the shared producer and saves a checkpoint's state only after
Kafka confirmed every record before it, so a crash or a broker outage never loses data and a
re-run resumes where the last confirmed checkpoint left off.
"""

from connectors.refusals import Refused
from connectors.sdk.config import Secret, load_config
from connectors.sdk.source import (
    Checkpoint,
    Record,
    RunReport,
    Source,
    Stream,
    run_source,
)
from connectors.sdk.state import StateStore

__all__ = [
    "Checkpoint",
    "Record",
    "Refused",
    "RunReport",
    "Secret",
    "Source",
    "StateStore",
    "Stream",
    "load_config",
    "run_source",
]
