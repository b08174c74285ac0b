"""Kafka plumbing shared by sources and the sink: topic declarations, producer, admin helpers."""
