"""Settings, topics.yml and source state: bad configuration fails with a message naming it."""

from __future__ import annotations

import json

import pytest

from connectors.errors import ConfigError
from connectors.kafka.topics import load_topics
from connectors.sdk.state import StateStore
from connectors.settings import SOURCE_TREE as REPO_ROOT
from connectors.settings import KafkaSecurity, Settings, airflow_kafka_connection


def test_declared_topics_have_dlq_twins_and_raw_tables():
    specs = {s.name: s for s in load_topics(REPO_ROOT / "infra" / "kafka" / "topics.yml")}
    observation = specs["stats.sdmx.observation.v1"]
    assert observation.dlq_name == "stats.sdmx.observation.v1.dlq"
    assert observation.raw_table == "stats_sdmx_observation_v1"
    assert observation.sink and observation.partitions == 3
    assert not specs["ops.warehouse.batch_landed.v1"].sink


def test_topics_file_with_unknown_key_names_the_entry(tmp_path):
    path = tmp_path / "topics.yml"
    path.write_text("topics:\n  - name: a.b.c.v1\n    partitons: 3\n")
    with pytest.raises(ConfigError, match=r"topics\[0\]: unknown keys \['partitons'\]"):
        load_topics(path)


def test_missing_topics_file_says_which_setting_to_change(tmp_path):
    with pytest.raises(ConfigError, match="UF_TOPICS_FILE"):
        load_topics(tmp_path / "nope.yml")


def test_settings_default_to_local_embedded_services(monkeypatch, tmp_path):
    for name in ("UF_KAFKA_BOOTSTRAP", "UF_KAFKA_PORT", "UF_WAREHOUSE_PATH", "UF_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UF_VAR_DIR", str(tmp_path))
    settings = Settings.from_env()
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.warehouse_path == tmp_path / "warehouse.duckdb"
    assert settings.state_dir == tmp_path / "state"


def test_non_numeric_setting_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("UF_SINK_BATCH_MAX_RECORDS", "lots")
    with pytest.raises(ConfigError, match="UF_SINK_BATCH_MAX_RECORDS='lots'"):
        Settings.from_env()


def test_state_round_trips_and_a_corrupt_file_is_named(tmp_path):
    store = StateStore(tmp_path, "sdmx")
    assert store.load() == {}
    store.save({"sent": {"a": "1"}})
    assert store.load() == {"sent": {"a": "1"}}
    store.path.write_text("{broken")
    with pytest.raises(ConfigError, match=str(store.path)):
        store.load()


PATH_VARIABLES = (
    "UF_VAR_DIR",
    "UF_WAREHOUSE_PATH",
    "UF_STATE_DIR",
    "UF_TOPICS_FILE",
    "UF_CONTRACTS_DIR",
    "UF_DBT_PROJECT_DIR",
    "UF_REFERENCE_DIR",
    "UF_EXPECTATIONS_FILE",
    "UF_SAMPLE_DATA_DIR",
)


def test_every_project_path_follows_uf_home_so_an_installed_package_needs_one_variable(
    monkeypatch, tmp_path
):
    for name in PATH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UF_HOME", str(tmp_path))
    settings = Settings.from_env()
    assert settings.home == tmp_path
    assert settings.var_dir == tmp_path / "var"
    assert settings.warehouse_path == tmp_path / "var" / "warehouse.duckdb"
    assert settings.state_dir == tmp_path / "var" / "state"
    assert settings.topics_file == tmp_path / "infra" / "kafka" / "topics.yml"
    assert settings.dbt_project_dir == tmp_path / "dbt_project"
    assert settings.reference_dir == tmp_path / "dbt_project" / "seeds"
    assert settings.expectations_file == tmp_path / "quality" / "expectations.yml"
    assert settings.sample_data_dir == tmp_path / "sample_data"
    assert (settings.contracts_dir / "org.urbanflow.stats.observation.v1.json").is_file()


def test_each_path_variable_overrides_its_default(monkeypatch, tmp_path):
    for name in PATH_VARIABLES:
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    settings = Settings.from_env()
    assert settings.expectations_file == tmp_path / "uf_expectations_file"
    assert settings.reference_dir == tmp_path / "uf_reference_dir"
    assert settings.sample_data_dir == tmp_path / "uf_sample_data_dir"
    assert settings.contracts_dir == tmp_path / "uf_contracts_dir"
    assert settings.warehouse_path == tmp_path / "uf_warehouse_path"


def test_kafka_clients_are_plaintext_unless_the_environment_says_otherwise(monkeypatch):
    for name in ("SECURITY_PROTOCOL", "SASL_MECHANISM", "SASL_USERNAME", "SSL_CAFILE"):
        monkeypatch.delenv(f"UF_KAFKA_{name}", raising=False)
    assert KafkaSecurity.from_env().client_options() == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_credentials_reach_kafka_python_and_airflow_and_never_a_repr(
    monkeypatch, tmp_path
):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("UF_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("UF_KAFKA_SASL_USERNAME", "urbanflow")
    monkeypatch.setenv("UF_KAFKA_SASL_PASSWORD", "pa55word")
    monkeypatch.setenv("UF_KAFKA_SSL_CAFILE", str(ca))
    security = KafkaSecurity.from_env()

    assert security.client_options() == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "urbanflow",
        "sasl_plain_password": "pa55word",
        "ssl_cafile": str(ca),
    }
    extra = json.loads(airflow_kafka_connection("kafka:9092", "urbanflow-airflow"))["extra"]
    assert extra == {
        "bootstrap.servers": "kafka:9092",
        "group.id": "urbanflow-airflow",
        "auto.offset.reset": "earliest",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "urbanflow",
        "sasl.password": "pa55word",
        "ssl.ca.location": str(ca),
    }
    assert "pa55word" not in repr(security)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"UF_KAFKA_SECURITY_PROTOCOL": "TLS"}, r"UF_KAFKA_SECURITY_PROTOCOL='TLS' is not one of"),
        ({"UF_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, r"needs UF_KAFKA_SASL_USERNAME and"),
        (
            {"UF_KAFKA_SECURITY_PROTOCOL": "SSL", "UF_KAFKA_SSL_CAFILE": "/nowhere/ca.pem"},
            r"UF_KAFKA_SSL_CAFILE=/nowhere/ca.pem is not a file",
        ),
        ({"UF_KAFKA_SASL_MECHANISM": "GSSAPI"}, r"UF_KAFKA_SASL_MECHANISM='GSSAPI' is not one"),
    ],
)
def test_bad_kafka_security_settings_are_refused_by_name(monkeypatch, env, message):
    for name in ("SECURITY_PROTOCOL", "SASL_USERNAME", "SASL_PASSWORD", "SSL_CAFILE"):
        monkeypatch.delenv(f"UF_KAFKA_{name}", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        KafkaSecurity.from_env()
