"""All configuration in one place: environment variables with embedded local defaults.

Every variable is documented in `.env.example` and the README's configuration table. This is the
only module that knows where files live: everything else receives a path from `Settings`, so an
installed package (no source tree, e.g. the Docker image) is configured by `UF_HOME` or by the
individual path variables, never by guessing from a module's own location.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.errors import ConfigError

#: The installed `connectors` package: contracts ship inside it as package data.
PACKAGE_DIR = Path(__file__).resolve().parent
#: The source checkout, when the package runs from one (editable install, `make`): the default home.
SOURCE_TREE = PACKAGE_DIR.parent


def _int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def _path(name: str, default: Path) -> Path:
    return Path(os.environ.get(name) or default).resolve()


def project_home() -> Path:
    """Where the project's files (dbt project, topics, expectations, samples) live.

    `UF_HOME` when set; otherwise the source checkout this package runs from; otherwise (an
    installed package outside any checkout) the working directory.
    """
    if os.environ.get("UF_HOME"):
        return Path(os.environ["UF_HOME"]).resolve()
    if (SOURCE_TREE / "dbt_project" / "dbt_project.yml").is_file():
        return SOURCE_TREE
    return Path.cwd().resolve()


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with `Settings.from_env()` so tests can override the environment."""

    home: Path
    kafka_bootstrap: str
    var_dir: Path
    warehouse_path: Path
    state_dir: Path
    topics_file: Path
    contracts_dir: Path
    sink_group: str
    #: replicas and min in-sync replicas `urbanflow topics apply` gives the topics it creates
    topic_replication_factor: int
    topic_min_insync_replicas: int
    sink_instance_id: str | None
    sink_batch_max_records: int
    sink_batch_max_ms: int
    #: how long the sink keeps the warehouse open across back-to-back batches (HeldWriter)
    sink_writer_hold_ms: int
    max_event_bytes: int
    dbt_project_dir: Path
    reference_dir: Path
    expectations_file: Path
    sample_data_dir: Path
    #: How much the sink's consumer fetches per request and hands over per poll: enough to keep the
    #: pipe full at ~1 KB events, small enough to keep its memory bounded. bench/raw_consume.py
    #: uses the same, so the ceiling it measures is fair.
    #: Measured here (200k 1 KB events): 32 MB / 8 MB / 10,000 were no faster than 16 MB / 4 MB /
    #: 5,000 and cost ~50 MB more peak RSS; 8 MB / 2 MB keep the ratio to raw and save ~25 MB more.
    sink_poll_max_records: int = 5_000
    sink_fetch_max_bytes: int = 8 * 1024 * 1024
    sink_max_partition_fetch_bytes: int = 2 * 1024 * 1024
    sink_fetch_max_wait_ms: int = 100
    #: The sink also commits a batch at this many payload bytes: DuckDB's writer (64 MB) could not
    #: hold a transaction of 128 MB of 32 KB events, nor parse 1,000 8 KB events in one statement.
    sink_batch_max_bytes: int = 16 * 1024 * 1024
    #: How long the sink may go without any partition assigned before it says so: as an error
    #: with `--until-caught-up`, as a warning (and it keeps trying) when it runs as a service.
    #: (Seen here once: kafka-python 3.0.12 looping on "coordinator not ready" for 16 minutes.)
    sink_join_timeout_s: float = 120.0

    @property
    def sink_fetch_settings(self) -> dict[str, int]:
        """The sink's fetch sizes as KafkaConsumer keyword arguments."""
        return {
            "max_poll_records": self.sink_poll_max_records,
            "fetch_max_bytes": self.sink_fetch_max_bytes,
            "max_partition_fetch_bytes": self.sink_max_partition_fetch_bytes,
            "fetch_max_wait_ms": self.sink_fetch_max_wait_ms,
        }

    @classmethod
    def from_env(cls) -> Settings:
        home = project_home()
        var_dir = _path("UF_VAR_DIR", home / "var")
        dbt_project_dir = _path("UF_DBT_PROJECT_DIR", home / "dbt_project")
        port = _int("UF_KAFKA_PORT", 19092)
        return cls(
            home=home,
            kafka_bootstrap=os.environ.get("UF_KAFKA_BOOTSTRAP") or f"127.0.0.1:{port}",
            var_dir=var_dir,
            warehouse_path=_path("UF_WAREHOUSE_PATH", var_dir / "warehouse.duckdb"),
            state_dir=_path("UF_STATE_DIR", var_dir / "state"),
            topics_file=_path("UF_TOPICS_FILE", home / "infra" / "kafka" / "topics.yml"),
            contracts_dir=_path("UF_CONTRACTS_DIR", PACKAGE_DIR / "contracts"),
            sink_group=os.environ.get("UF_SINK_GROUP") or "urbanflow-sink",
            topic_replication_factor=_int("UF_TOPIC_REPLICATION_FACTOR", 1),
            topic_min_insync_replicas=_int("UF_TOPIC_MIN_INSYNC_REPLICAS", 1),
            sink_instance_id=os.environ.get("UF_SINK_INSTANCE_ID") or None,
            sink_batch_max_records=_int("UF_SINK_BATCH_MAX_RECORDS", 6_000),
            sink_batch_max_ms=_int("UF_SINK_BATCH_MAX_MS", 1_000),
            sink_batch_max_bytes=_int("UF_SINK_BATCH_MAX_BYTES", 16 * 1024 * 1024),
            sink_writer_hold_ms=_int("UF_SINK_WRITER_HOLD_MS", 2_000),
            sink_join_timeout_s=float(_int("UF_SINK_JOIN_TIMEOUT_S", 120)),
            max_event_bytes=_int("UF_MAX_EVENT_BYTES", 256 * 1024),
            dbt_project_dir=dbt_project_dir,
            reference_dir=_path("UF_REFERENCE_DIR", dbt_project_dir / "seeds"),
            expectations_file=_path("UF_EXPECTATIONS_FILE", home / "quality" / "expectations.yml"),
            sample_data_dir=_path("UF_SAMPLE_DATA_DIR", home / "sample_data"),
        )


def kafka_client_log_level() -> str:
    """How much of kafka-python's own logging the CLI shows (UF_KAFKA_CLIENT_LOG_LEVEL, default
    CRITICAL): its connection retries are noise next to our one-line errors; WARNING shows them
    when debugging a broker."""
    return (os.environ.get("UF_KAFKA_CLIENT_LOG_LEVEL") or "CRITICAL").upper()


#: Client security protocols Kafka names (security.protocol), and the SASL mechanisms we support.
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


@dataclass(frozen=True)
class KafkaSecurity:
    """How every Kafka client of ours authenticates and encrypts: one set for the whole process.

    From UF_KAFKA_SECURITY_PROTOCOL (PLAINTEXT locally; SASL_SSL in the production compose file),
    UF_KAFKA_SASL_MECHANISM, UF_KAFKA_SASL_USERNAME, UF_KAFKA_SASL_PASSWORD and UF_KAFKA_SSL_CAFILE
    (the CA that signed the brokers' certificates; the system's CAs when unset).
    """

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)  # a secret: never in a log
    ssl_cafile: Path | None = None

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.protocol.endswith("SSL")

    @classmethod
    def from_env(cls) -> KafkaSecurity:
        protocol = (os.environ.get("UF_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
        if protocol not in KAFKA_SECURITY_PROTOCOLS:
            raise ConfigError(
                f"UF_KAFKA_SECURITY_PROTOCOL={protocol!r} is not one of "
                f"{', '.join(KAFKA_SECURITY_PROTOCOLS)}"
            )
        mechanism = (os.environ.get("UF_KAFKA_SASL_MECHANISM") or "SCRAM-SHA-512").upper()
        if mechanism not in KAFKA_SASL_MECHANISMS:
            raise ConfigError(
                f"UF_KAFKA_SASL_MECHANISM={mechanism!r} is not one of "
                f"{', '.join(KAFKA_SASL_MECHANISMS)}"
            )
        security = cls(
            protocol=protocol,
            sasl_mechanism=mechanism,
            sasl_username=os.environ.get("UF_KAFKA_SASL_USERNAME") or None,
            sasl_password=os.environ.get("UF_KAFKA_SASL_PASSWORD") or None,
            ssl_cafile=_path("UF_KAFKA_SSL_CAFILE", Path())
            if os.environ.get("UF_KAFKA_SSL_CAFILE")
            else None,
        )
        if security.uses_sasl and not (security.sasl_username and security.sasl_password):
            raise ConfigError(
                f"UF_KAFKA_SECURITY_PROTOCOL={protocol} needs UF_KAFKA_SASL_USERNAME and "
                "UF_KAFKA_SASL_PASSWORD (the broker's SCRAM user)"
            )
        if security.ssl_cafile is not None and not security.ssl_cafile.is_file():
            raise ConfigError(f"UF_KAFKA_SSL_CAFILE={security.ssl_cafile} is not a file")
        return security

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's producer, consumer and admin client."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_sasl:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password,
            }
        if self.uses_tls and self.ssl_cafile is not None:
            options["ssl_cafile"] = str(self.ssl_cafile)
        return options

    def librdkafka_options(self) -> dict[str, str]:
        """The same in librdkafka's names, for the Airflow Kafka connection (confluent-kafka)."""
        options = {"security.protocol": self.protocol}
        if self.uses_sasl:
            options |= {
                "sasl.mechanism": self.sasl_mechanism,
                "sasl.username": self.sasl_username or "",
                "sasl.password": self.sasl_password or "",
            }
        if self.uses_tls and self.ssl_cafile is not None:
            options["ssl.ca.location"] = str(self.ssl_cafile)
        return options


def kafka_client_options() -> dict[str, Any]:
    """Security options for a kafka-python client built now (see KafkaSecurity)."""
    return KafkaSecurity.from_env().client_options()


def airflow_kafka_connection(bootstrap: str, group_id: str) -> str:
    """The Airflow connection (JSON) the batch-landed watcher's Kafka trigger uses: our bootstrap,
    its consumer group and the same credentials as every other client (infra/airflow/airflowctl)."""
    extra = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        **KafkaSecurity.from_env().librdkafka_options(),
    }
    return json.dumps({"conn_type": "kafka", "extra": extra})


def api_rejections_dir(base: Settings) -> Path:
    """Where the API logs what it refused: beside the warehouse, whose build reads it back
    (stg_ops__api_rejections globs this folder next to the warehouse file)."""
    return base.warehouse_path.parent / "api" / "rejections"


@dataclass(frozen=True)
class ApiSettings:
    """Settings of the partner push API; `ApiSettings.from_env()` lets tests set the env.

    The Kafka bootstrap, the topics file and UF_VAR_DIR come from `base`, so every process agrees.
    """

    base: Settings
    partners_db: Path
    host: str
    port: int
    max_body_bytes: int
    max_file_bytes: int
    max_batch: int
    rate_per_s: int
    rate_burst: int
    key_cache_s: int
    linger_ms: int
    #: the published database `GET /v1/feeds` reads, read-only (as Superset does)
    serving_path: Path
    #: where the API records what it refused, one JSON line per refusal: beside the warehouse,
    #: whose build reads it back (stg_ops__api_rejections)
    rejections_dir: Path

    @classmethod
    def from_env(cls) -> ApiSettings:
        base = Settings.from_env()
        return cls(
            base=base,
            partners_db=_path("UF_PARTNERS_DB", base.var_dir / "partners.sqlite"),
            host=os.environ.get("UF_API_HOST") or "127.0.0.1",
            port=_int("UF_API_PORT", 8080),
            max_body_bytes=_int("UF_API_MAX_BODY_BYTES", 1024 * 1024),
            max_file_bytes=_int("UF_API_MAX_FILE_BYTES", 10 * 1024 * 1024),
            max_batch=_int("UF_API_MAX_BATCH", 500),
            rate_per_s=_int("UF_API_RATE_PER_S", 50),
            rate_burst=_int("UF_API_RATE_BURST", 100),
            key_cache_s=_int("UF_API_KEY_CACHE_S", 60, minimum=0),
            linger_ms=_int("UF_API_LINGER_MS", 5, minimum=0),
            serving_path=_path("UF_SERVING_PATH", base.var_dir / "serving.duckdb"),
            rejections_dir=api_rejections_dir(base),
        )


@dataclass(frozen=True)
class OrchestrationSettings:
    """What the Airflow DAGs read at parse time (DESIGN.md §5); `from_env()` lets tests set the env.

    `infra/airflow/airflowctl` sets the Airflow side (ports, AIRFLOW_HOME, the Kafka connection);
    these are the UrbanFlow side the DAG files need and nothing else.
    """

    base: Settings
    source_schedules_file: Path
    transform_fallback_cron: str
    kafka_conn_id: str
    watcher_poll_interval_s: float
    airflow_url: str
    airflow_admin_password_file: Path
    dbt_manifest_path: Path
    dbt_executable: Path

    @classmethod
    def from_env(cls) -> OrchestrationSettings:
        base = Settings.from_env()
        return cls(
            base=base,
            source_schedules_file=_path(
                "UF_AIRFLOW_SOURCE_SCHEDULES", base.home / "dags" / "sources.yml"
            ),
            transform_fallback_cron=os.environ.get("UF_TRANSFORM_FALLBACK_CRON") or "*/10 * * * *",
            kafka_conn_id=os.environ.get("UF_AIRFLOW_KAFKA_CONN_ID") or "urbanflow_kafka",
            watcher_poll_interval_s=float(_int("UF_WATCHER_POLL_INTERVAL_S", 1)),
            airflow_url=os.environ.get("UF_AIRFLOW_URL")
            or f"http://127.0.0.1:{_int('UF_AIRFLOW_PORT', 8081)}",
            airflow_admin_password_file=base.var_dir / "airflow" / "admin_password",
            # Cosmos renders one task per model from this manifest (airflowctl start writes it)
            dbt_manifest_path=_path(
                "UF_AIRFLOW_DBT_MANIFEST", base.var_dir / "airflow" / "dbt" / "manifest.json"
            ),
            # dbt under the warehouse lock (connectors.transform.dbt_main), next to this Python
            dbt_executable=_path(
                "UF_AIRFLOW_DBT_EXECUTABLE", Path(sys.executable).parent / "urbanflow-dbt"
            ),
        )
