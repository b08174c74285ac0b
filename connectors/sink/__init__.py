"""Kafka -> DuckDB sink: exactly-once loading with dead letters (DESIGN.md §3)."""

from connectors.sink.service import Sink, SinkStats

__all__ = ["Sink", "SinkStats"]
