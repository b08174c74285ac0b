"""Turn Kafka records into warehouse rows or dead letters. Pure logic: no broker, no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
import pyarrow as pa

from connectors.contracts import Contract, get_contract
from connectors.contracts.fast import compile_event_decoder
from connectors.errors import ContractError
from connectors.kafka.topics import TopicSpec

_ENCODE = msgspec.json.Encoder().encode

# Column order of every raw.<topic> table; the loader relies on it.
RAW_COLUMNS = (
    "event_id",
    "source",
    "type",
    "subject",
    "event_time",
    "specversion",
    "dataschema",
    "data",
    "message_key",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
)


@dataclass(slots=True)
class DeadLetter:
    """A record the warehouse refused, with the reason a human needs to fix it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    error_class: str
    reason: str
    contract: str = ""

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("uf.error.class", self.error_class.encode()),
            ("uf.error.reason", self.reason.encode()[:4000]),
            ("uf.contract", self.contract.encode()),
            ("uf.original.topic", self.topic.encode()),
            ("uf.original.partition", str(self.partition).encode()),
            ("uf.original.offset", str(self.offset).encode()),
            ("uf.original.timestamp", str(self.timestamp).encode()),
        ]


ARROW_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("source", pa.string()),
        ("type", pa.string()),
        ("subject", pa.string()),
        ("event_time", pa.string()),
        ("specversion", pa.string()),
        ("dataschema", pa.string()),
        ("data", pa.string()),
        ("message_key", pa.string()),
        ("kafka_topic", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("kafka_timestamp", pa.timestamp("ms", tz="UTC")),
    ]
)


def _unset_to_none(value: Any) -> Any:
    return None if value is msgspec.UNSET else value


@dataclass
class ColumnBatch:
    """Rows of one raw table, kept column-wise so they become an Arrow table in one step."""

    columns: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in RAW_COLUMNS})

    def __len__(self) -> int:
        return len(self.columns["event_id"])

    def extend_valid(self, records: list[Any], events: list[Any]) -> None:
        """Add records whose events the fast decoder accepted (msgspec structs)."""
        cols = self.columns
        cols["event_id"].extend([e.id for e in events])
        cols["source"].extend([e.source for e in events])
        cols["type"].extend([e.type for e in events])
        cols["subject"].extend([_unset_to_none(e.subject) for e in events])
        cols["event_time"].extend([e.time for e in events])
        cols["specversion"].extend([e.specversion for e in events])
        cols["dataschema"].extend([_unset_to_none(e.dataschema) for e in events])
        cols["data"].extend([_ENCODE(e.data) for e in events])
        cols["message_key"].extend(
            [None if r.key is None else r.key.decode("utf-8", "replace") for r in records]
        )
        cols["kafka_topic"].extend([r.topic for r in records])
        cols["kafka_partition"].extend([r.partition for r in records])
        cols["kafka_offset"].extend([r.offset for r in records])
        cols["kafka_timestamp"].extend([r.timestamp for r in records])

    def to_arrow(self) -> pa.Table:
        return pa.table(self.columns, schema=ARROW_SCHEMA)


class RecordDecoder:
    """Validates each record against the envelope and its contract.

    Fast path: one msgspec call parses and validates (see contracts/fast.py). Anything it refuses
    takes the slow path, where fastjsonschema decides and explains.
    """

    def __init__(self, topics: list[TopicSpec], max_event_bytes: int):
        self.max_event_bytes = max_event_bytes
        self._contracts: dict[str, dict[str, Contract]] = {
            spec.name: {t: get_contract(t) for t in spec.event_types} for spec in topics
        }
        self._fast: dict[str, msgspec.json.Decoder | None] = {
            spec.name: compile_event_decoder(
                get_contract(spec.event_types[0]).event_schema, spec.raw_table
            )
            if len(spec.event_types) == 1
            else None
            for spec in topics
        }

    def decode_records(self, records: list[Any], batch: ColumnBatch) -> list[DeadLetter]:
        """Append the rows of one partition's records to `batch`; return the dead letters.

        The common case (every record valid) is a few list comprehensions over one msgspec call
        per record; only a batch with a bad record is walked record by record.
        """
        fast = self._fast[records[0].topic]
        if fast is not None:
            values = [record.value for record in records]
            try:
                if max(map(len, values)) <= self.max_event_bytes:
                    batch.extend_valid(records, [fast.decode(value) for value in values])
                    return []
            except (msgspec.ValidationError, msgspec.DecodeError, TypeError):
                pass  # some record is bad: find it below
        dead: list[DeadLetter] = []
        for record in records:
            event = self._decode_fast(fast, record.value)
            if event is not None:
                batch.extend_valid([record], [event])
            elif (letter := self.decode_into(record, batch)) is not None:
                dead.append(letter)
        return dead

    def _decode_fast(self, fast: msgspec.json.Decoder | None, value: bytes | None) -> Any:
        if fast is None or value is None or len(value) > self.max_event_bytes:
            return None
        try:
            return fast.decode(value)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None

    def decode_into(self, record: Any, batch: ColumnBatch) -> DeadLetter | None:
        """Append the record's row to `batch`, or return why it must go to the dead-letter topic."""
        value: bytes | None = record.value
        if value is None or len(value) == 0:
            return self._dead(record, "empty", "record has no value (tombstone or empty message)")
        if len(value) > self.max_event_bytes:
            return self._dead(
                record,
                "oversize",
                f"record is {len(value)} bytes; the limit is {self.max_event_bytes} "
                "(UF_MAX_EVENT_BYTES)",
            )
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return self._dead(record, "json", f"not valid JSON: {exc}")
        if not isinstance(event, dict):
            return self._dead(record, "envelope", "a CloudEvent must be a JSON object")
        event_type = event.get("type")
        allowed = self._contracts[record.topic]
        contract = allowed.get(event_type) if isinstance(event_type, str) else None
        if contract is None:
            return self._dead(
                record,
                "unknown_type",
                f"event type {event_type!r} is not declared for topic {record.topic} "
                f"(allowed: {', '.join(allowed) or 'none'})",
            )
        try:
            contract.validate_event(event)
        except ContractError as exc:
            return self._dead(record, "contract", str(exc), event_type)
        cols = batch.columns
        cols["event_id"].append(event["id"])
        cols["source"].append(event["source"])
        cols["type"].append(event_type)
        cols["subject"].append(event.get("subject"))
        cols["event_time"].append(event["time"])
        cols["specversion"].append(event["specversion"])
        cols["dataschema"].append(event.get("dataschema"))
        cols["data"].append(orjson.dumps(event["data"]))
        key = record.key
        cols["message_key"].append(key.decode("utf-8", "replace") if key is not None else None)
        cols["kafka_topic"].append(record.topic)
        cols["kafka_partition"].append(record.partition)
        cols["kafka_offset"].append(record.offset)
        cols["kafka_timestamp"].append(record.timestamp)
        return None

    @staticmethod
    def _dead(record: Any, error_class: str, reason: str, contract: str = "") -> DeadLetter:
        return DeadLetter(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp=record.timestamp,
            key=record.key,
            value=record.value,
            error_class=error_class,
            reason=reason,
            contract=contract,
        )
