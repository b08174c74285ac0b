"""Turn Kafka records into warehouse rows or dead letters. Pure logic: no broker, no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
import pyarrow as pa

from connectors.contracts import Contract, get_contract
from connectors.contracts.fast import compile_event_decoder
from connectors.errors import ConfigError, ContractError
from connectors.kafka.topics import TopicSpec
from connectors.refusals import Refused, dead_letter_headers
from connectors.sink import arrow
from connectors.sink.raw import ARROW_SCHEMA, BATCH_COLUMNS, PAYLOAD_SCHEMA

_ENCODE = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A Kafka record the warehouse refused: the `Refused` (reason, key, payload) and where the
    record was read, which its dead-letter headers and `raw._sink_dead_letters` name."""

    refused: Refused
    topic: str
    partition: int
    offset: int
    timestamp: int

    def headers(self) -> list[tuple[str, bytes]]:
        origin = {
            "original.topic": self.topic,
            "original.partition": self.partition,
            "original.offset": self.offset,
            "original.timestamp": self.timestamp,
        }
        return dead_letter_headers(self.refused, origin)

    @property
    def key(self) -> bytes | None:
        """The record's key as Kafka had it, byte for byte, so a replay lands on its partition."""
        key = self.refused.key
        return None if key is None else key.encode("utf-8", "surrogateescape")


class _Envelope(msgspec.Struct):
    """The CloudEvents attributes a raw row keeps, from an event the slow path validated."""

    id: Any
    source: Any
    type: Any
    time: Any
    specversion: Any
    subject: Any = None
    dataschema: Any = None
    data: Any = None


def _unset_to_none(value: Any) -> Any:
    return None if value is msgspec.UNSET else value


def _message_key(key: bytes | None) -> str | None:
    return None if key is None else key.decode("utf-8", "replace")


def _extend_coordinates(cols: dict[str, list[Any]], records: list[Any]) -> None:
    """The columns read from the Kafka record itself, whichever form the row takes."""
    cols["message_key"].extend([_message_key(r.key) for r in records])
    cols["kafka_topic"].extend([r.topic for r in records])
    cols["kafka_partition"].extend([r.partition for r in records])
    cols["kafka_offset"].extend([r.offset for r in records])
    cols["kafka_timestamp"].extend([r.timestamp for r in records])


@dataclass
class ColumnBatch:
    """Rows of one raw table, kept column-wise so they become Arrow tables in one step.

    An event the fast path validated stays the payload bytes Kafka handed over (`payloads`):
    DuckDB takes its attributes out of them in bulk at commit, so no Python object is made per
    field and `data` is not encoded again. The rare event only the slow path accepts is kept as
    decoded columns (`columns`).
    """

    columns: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in BATCH_COLUMNS})
    payloads: dict[str, list[Any]] = field(
        default_factory=lambda: {c: [] for c in PAYLOAD_SCHEMA.names}
    )

    def __len__(self) -> int:
        return len(self.columns["event_id"]) + len(self.payloads["payload"])

    def extend_payloads(self, records: list[Any]) -> None:
        """Add records whose payloads the fast path validated, as they are."""
        self.payloads["payload"].extend([r.value for r in records])
        _extend_coordinates(self.payloads, records)

    def extend_valid(self, records: list[Any], events: list[Any]) -> None:
        """Add records whose events were validated (msgspec structs with the envelope fields)."""
        cols = self.columns
        cols["event_id"].extend([e.id for e in events])
        cols["source"].extend([e.source for e in events])
        cols["type"].extend([e.type for e in events])
        cols["subject"].extend([_unset_to_none(e.subject) for e in events])
        cols["event_time"].extend([e.time for e in events])
        cols["specversion"].extend([e.specversion for e in events])
        cols["dataschema"].extend([_unset_to_none(e.dataschema) for e in events])
        cols["data"].extend([_ENCODE(e.data) for e in events])
        _extend_coordinates(cols, records)

    def to_arrow(self) -> list[pa.Table]:
        """The batch's non-empty Arrow tables: payloads (`PAYLOAD_SCHEMA`), decoded columns."""
        tables = []
        if self.payloads["payload"]:
            tables.append(arrow.table(self.payloads, PAYLOAD_SCHEMA))
        if self.columns["event_id"]:
            tables.append(arrow.table(self.columns, ARROW_SCHEMA))
        return tables


def _contract_of(spec: TopicSpec, event_type: str) -> Contract:
    """The contract of an event type a topic declares; a clear start-up error when it has none."""
    try:
        return get_contract(event_type)
    except ContractError:
        raise ConfigError(
            f"topic {spec.name} declares event type {event_type}, which has no contract: add "
            f"connectors/contracts/{event_type}.json or fix the topic's event_types in the topics "
            "file"
        ) from None


class RecordDecoder:
    """Validates each record against the envelope and its contract.

    Fast path: one msgspec call parses and validates (see contracts/fast.py). Anything it refuses
    takes the slow path, where fastjsonschema decides and explains.
    """

    def __init__(self, topics: list[TopicSpec], max_event_bytes: int):
        self.max_event_bytes = max_event_bytes
        self._contracts: dict[str, dict[str, Contract]] = {
            spec.name: {t: _contract_of(spec, t) for t in spec.event_types} for spec in topics
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

        The common case (every record valid) is one msgspec call per record, whose result is
        dropped: the payloads themselves go to DuckDB. Only a batch with a bad record is walked
        record by record.
        """
        fast = self._fast[records[0].topic]
        if fast is not None:
            decode = fast.decode
            try:
                values = [r.value for r in records]
                if max(map(len, values)) <= self.max_event_bytes:
                    for value in values:
                        decode(value)
                    # msgspec skips what it need not decode (an unknown field) without checking
                    # its UTF-8, and DuckDB reads the whole payload: one check in C for all (a
                    # newline cannot continue a character, so each payload is checked whole)
                    arrow.check_utf8(b"\n".join(values))
                    batch.extend_payloads(records)
                    return []
            # msgspec raises UnicodeDecodeError for invalid UTF-8 inside a string
            except (
                msgspec.ValidationError,
                msgspec.DecodeError,
                TypeError,
                UnicodeDecodeError,
                pa.ArrowInvalid,
            ):
                pass  # some record is bad: find it below
        dead: list[DeadLetter] = []
        for record in records:
            if self._decode_fast(fast, record.value) is not None:
                batch.extend_payloads([record])
            elif (letter := self.decode_into(record, batch)) is not None:
                dead.append(letter)
        return dead

    def _decode_fast(self, fast: msgspec.json.Decoder | None, value: bytes | None) -> Any:
        if fast is None or value is None or len(value) > self.max_event_bytes:
            return None
        try:
            decoded = fast.decode(value)
            value.decode("utf-8")  # all of it, as DuckDB will read it (see decode_records)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            return None
        return decoded

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
        batch.extend_valid([record], [msgspec.convert(event, _Envelope)])
        return None

    @staticmethod
    def _dead(record: Any, error_class: str, reason: str, contract: str = "") -> DeadLetter:
        key: bytes | None = record.key
        refused = Refused(
            reason,
            key=None if key is None else key.decode("utf-8", "surrogateescape"),
            payload=record.value,
            error_class=error_class,
            contract=contract,
        )
        return DeadLetter(refused, record.topic, record.partition, record.offset, record.timestamp)
