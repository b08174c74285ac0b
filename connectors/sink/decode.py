"""Turn Kafka records into warehouse rows or dead letters. Pure logic: no broker, no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

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


@dataclass
class ColumnBatch:
    """Rows of one raw table, kept column-wise so they become an Arrow table without copying."""

    columns: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in RAW_COLUMNS})

    def __len__(self) -> int:
        return len(self.columns["event_id"])


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
        """Append the rows of one partition's records to `batch`; return the dead letters."""
        dead: list[DeadLetter] = []
        fast = self._fast[records[0].topic]
        if fast is None:
            for record in records:
                if (letter := self.decode_into(record, batch)) is not None:
                    dead.append(letter)
            return dead
        decode, encode, unset, limit = fast.decode, _ENCODE, msgspec.UNSET, self.max_event_bytes
        cols = batch.columns
        event_id, source, type_, subject = (
            cols["event_id"],
            cols["source"],
            cols["type"],
            cols["subject"],
        )
        event_time, specversion, dataschema, data = (
            cols["event_time"],
            cols["specversion"],
            cols["dataschema"],
            cols["data"],
        )
        key_col, topic, partition, offset, timestamp = (
            cols["message_key"],
            cols["kafka_topic"],
            cols["kafka_partition"],
            cols["kafka_offset"],
            cols["kafka_timestamp"],
        )
        for record in records:
            value = record.value
            try:
                if value is None or len(value) > limit:
                    raise msgspec.ValidationError
                event = decode(value)
            except (msgspec.ValidationError, msgspec.DecodeError):
                if (letter := self.decode_into(record, batch)) is not None:
                    dead.append(letter)
                continue
            event_id.append(event.id)
            source.append(event.source)
            type_.append(event.type)
            subject.append(None if event.subject is unset else event.subject)
            event_time.append(event.time)
            specversion.append(event.specversion)
            dataschema.append(None if event.dataschema is unset else event.dataschema)
            data.append(encode(event.data))
            key = record.key
            key_col.append(key.decode("utf-8", "replace") if key is not None else None)
            topic.append(record.topic)
            partition.append(record.partition)
            offset.append(record.offset)
            timestamp.append(record.timestamp)
        return dead

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
