"""Declared topics (infra/kafka/topics.yml) and their idempotent application to the broker."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError

from connectors.errors import BrokerUnavailableError, ConfigError
from connectors.kafka.clients import client_options, unreachable

DLQ_SUFFIX = ".dlq"
_ALLOWED_KEYS = {
    "name",
    "partitions",
    "retention_ms",
    "dlq",
    "dlq_retention_ms",
    "sink",
    "event_types",
    "description",
}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    event_types: tuple[str, ...]
    sink: bool
    dlq: bool
    dlq_retention_ms: int
    description: str = ""

    @property
    def dlq_name(self) -> str:
        return self.name + DLQ_SUFFIX

    @property
    def raw_table(self) -> str:
        return self.name.replace(".", "_").replace("-", "_")


def load_topics(path: Path) -> list[TopicSpec]:
    """Parse topics.yml; unknown keys and missing names are errors that name the entry."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"topics file {path} does not exist (set UF_TOPICS_FILE)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    defaults: dict[str, Any] = doc.get("defaults", {})
    specs = []
    for index, entry in enumerate(doc.get("topics", [])):
        unknown = set(entry) - _ALLOWED_KEYS
        if unknown or "name" not in entry:
            problem = f"unknown keys {sorted(unknown)}" if unknown else "missing 'name'"
            raise ConfigError(f"{path}: topics[{index}]: {problem}")
        merged = {**defaults, **entry}
        specs.append(
            TopicSpec(
                name=merged["name"],
                partitions=int(merged.get("partitions", 1)),
                retention_ms=int(merged.get("retention_ms", -1)),
                event_types=tuple(merged.get("event_types", [])),
                sink=bool(merged.get("sink", True)),
                dlq=bool(merged.get("dlq", True)),
                dlq_retention_ms=int(merged.get("dlq_retention_ms", -1)),
                description=merged.get("description", ""),
            )
        )
    return specs


def admin_client(bootstrap: str) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="urbanflow-admin",
            request_timeout_ms=10_000,
            bootstrap_timeout_ms=10_000,  # an unreachable broker is an error in seconds
            **client_options(),
        )
    except KafkaError as error:
        raise unreachable(bootstrap, error) from None


def _desired(specs: Iterable[TopicSpec]) -> dict[str, tuple[int, int]]:
    """Physical topics to exist: name -> (partitions, retention.ms), DLQ twins included."""
    wanted = {}
    for spec in specs:
        wanted[spec.name] = (spec.partitions, spec.retention_ms)
        if spec.dlq:
            wanted[spec.dlq_name] = (spec.partitions, spec.dlq_retention_ms)
    return wanted


def apply_topics(
    bootstrap: str,
    specs: list[TopicSpec],
    *,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> dict[str, str]:
    """Create missing topics (with `replication_factor` replicas), add partitions, align retention
    and `min.insync.replicas`. Returns topic -> action taken. Kafka cannot change an existing
    topic's replica count in place: that is reported, not done."""
    admin = admin_client(bootstrap)
    try:
        wanted = _desired(specs)

        def configs(name: str) -> dict[str, str]:
            return {
                "retention.ms": str(wanted[name][1]),
                "min.insync.replicas": str(min_insync_replicas),
            }

        existing = set(admin.list_topics())
        actions = {name: "unchanged" for name in wanted if name in existing}
        missing = {
            name: {
                "num_partitions": partitions,
                "replication_factor": replication_factor,
                "configs": configs(name),
            }
            for name, (partitions, _retention) in wanted.items()
            if name not in existing
        }
        if missing:
            admin.create_topics(missing, wait_for_metadata=True)
            actions.update(dict.fromkeys(missing, "created"))
        present = sorted(actions.keys() - missing.keys())
        if not present:
            return actions

        def note(name: str, change: str) -> None:
            actions[name] = change if actions[name] == "unchanged" else f"{actions[name]}, {change}"

        for meta in admin.describe_topics(present):
            name, have = meta["name"], len(meta["partitions"])
            want = wanted[name][0]
            if want > have:
                admin.create_partitions({name: want})
                actions[name] = f"partitions {have} -> {want}"
            elif want < have:
                actions[name] = f"keeps {have} partitions (declared {want}; Kafka cannot shrink)"
            counts = [len(p.get("replica_nodes") or []) for p in meta["partitions"]]
            replicas = min(counts, default=0)
            if replicas and replicas < replication_factor:
                note(
                    name,
                    f"has {replicas} replica(s), {replication_factor} wanted "
                    "(raise it with kafka-reassign-partitions.sh)",
                )
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in present]
        )["topic"]
        for name in present:
            want_configs = configs(name)
            have = {key: described.get(name, {}).get(key, {}).get("value") for key in want_configs}
            changed = [f"{k} {have[k]} -> {v}" for k, v in want_configs.items() if have[k] != v]
            if changed:
                # AlterConfigs replaces a topic's whole config: always send every managed key
                admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, want_configs)])
                note(name, ", ".join(changed))
        return actions
    except KafkaError as exc:
        raise BrokerUnavailableError(f"applying topics at {bootstrap} failed: {exc}") from exc
    finally:
        admin.close()
