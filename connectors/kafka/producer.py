"""The one producer every source uses: acks=all, idempotent, retried, delivery confirmed.

Sources send a batch, then call `confirm()`; only when it returns do they checkpoint their state.
A failed delivery raises DeliveryError and the state stays where it was, so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from connectors.errors import DeliveryError
from connectors.events import encode
from connectors.kafka.clients import client_options, unreachable

Header = tuple[str, bytes]


@dataclass
class DeliveryReport:
    sent: int = 0
    bytes: int = 0


class EventProducer:
    """Thin wrapper over kafka-python's KafkaProducer with our delivery guarantees."""

    def __init__(self, bootstrap: str, *, client_id: str = "urbanflow", linger_ms: int = 20):
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap,
                client_id=client_id,
                acks="all",
                enable_idempotence=True,
                retries=10,
                retry_backoff_ms=200,
                delivery_timeout_ms=120_000,
                linger_ms=linger_ms,
                batch_size=256 * 1024,
                max_request_size=2 * 1024 * 1024,
                **client_options(),
            )
        except KafkaError as error:
            raise unreachable(bootstrap, error) from None
        self._pending: list[Any] = []
        self.report = DeliveryReport()

    def send_raw(
        self,
        topic: str,
        value: bytes,
        *,
        key: str | bytes | None,
        headers: list[Header] | None = None,
    ) -> None:
        key_bytes = key.encode() if isinstance(key, str) else key
        self._pending.append(
            self._producer.send(topic, value=value, key=key_bytes, headers=headers)
        )
        self.report.bytes += len(value)

    def send_event(self, topic: str, event: dict[str, Any], *, key: str) -> None:
        """Queue one CloudEvent. Keys are business keys so order holds per key (DESIGN.md §2)."""
        self.send_raw(topic, encode(event), key=key)

    def send_events(self, topic: str, keyed_events: Iterable[tuple[str, dict[str, Any]]]) -> None:
        for key, event in keyed_events:
            self.send_event(topic, event, key=key)

    def confirm(self, timeout_s: float = 120.0) -> int:
        """Block until the broker acknowledged everything queued; raise if anything failed."""
        pending, self._pending = self._pending, []
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise DeliveryError(f"Kafka did not confirm delivery: {exc}") from exc
        failures = [f.exception for f in pending if f.failed()]
        unfinished = sum(1 for f in pending if not f.is_done)
        if failures or unfinished:
            first = failures[0] if failures else "timed out"
            raise DeliveryError(
                f"{len(failures) + unfinished} of {len(pending)} events were not delivered "
                f"(first error: {first}); state not advanced, re-run to retry"
            )
        self.report.sent += len(pending)
        return len(pending)

    def close(self) -> None:
        self._producer.close(timeout=30)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
