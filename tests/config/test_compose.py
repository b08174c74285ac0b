"""The production deployment (docker-compose.yml), .env.example and the README's configuration
table, checked as data: no Docker engine and no network needed."""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "infra" / "docker" / "Dockerfile"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
README = REPO_ROOT / "README.md"
# Where the code reads its UF_ variables from: the whole package (settings.py reads them; any other
# module that names one, in code or in a message, must name a documented one) and the scripts.
CONFIG_SOURCES = [
    *sorted((REPO_ROOT / "connectors").rglob("*.py")),
    REPO_ROOT / "infra" / "kafka" / "kafkactl",
    REPO_ROOT / "infra" / "sink" / "sinkctl",
    REPO_ROOT / "infra" / "airflow" / "airflowctl",
    REPO_ROOT / "infra" / "superset" / "supersetctl",
    *sorted((REPO_ROOT / "infra" / "superset").glob("*.py")),
    REPO_ROOT / "dbt_project" / "profiles.yml",
    REPO_ROOT / "tests" / "run.sh",
]
SETTINGS_MODULE = REPO_ROOT / "connectors" / "settings.py"
UF_VARIABLE = re.compile(r"\bUF_[A-Z0-9_]*[A-Z0-9]\b")
# Families of variables built from a name at run time, documented once as a pattern, e.g.
# UF_SOURCE_<NAME>_<KEY> (connectors/sdk/config.py) and UF_QUALITY_<NAME> (quality/suites.py).
FAMILIES = {"UF_SOURCE_": "UF_SOURCE_<NAME>_<KEY>", "UF_QUALITY_": "UF_QUALITY_<"}
ENV_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?+][^}]*)?\}$")
SECRET_WORDS = ("PASSWORD", "SECRET", "KEY")


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def kafka_services() -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in services().items()
        if str(svc.get("image", "")).startswith("apache/kafka:")
    }


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def uf_variables_read_by_the_code() -> set[str]:
    """Every UF_ name in the code, a family's members (e.g. an example in a docstring) excepted."""
    found: set[str] = set()
    for path in CONFIG_SOURCES:
        found |= set(UF_VARIABLE.findall(path.read_text(encoding="utf-8")))
    settings = set(UF_VARIABLE.findall(SETTINGS_MODULE.read_text(encoding="utf-8")))
    return {name for name in found if name in settings or not name.startswith(tuple(FAMILIES))}


def undocumented(text: str) -> set[str]:
    """The code's variables and families that `text` does not mention."""
    named = set(UF_VARIABLE.findall(text))
    missing = uf_variables_read_by_the_code() - named
    return missing | {pattern for pattern in FAMILIES.values() if pattern not in text}


def readme_configuration_rows() -> dict[str, str]:
    """Variable -> its default cell, from the README's configuration table."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Configuration\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert section, "README has no '## Configuration' section"
    rows = {}
    for line in section.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 3:
            rows[cells[0].strip("`")] = cells[1]
    return rows


def url_parts(url: str) -> SplitResult:
    """urlsplit after replacing `${...}` references, whose `:?message` would confuse it."""
    return urlsplit(re.sub(r"\$\{[^}]*\}", "ENVREF", url))


def image_is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return False
    tag = name.split(":", 1)[1]
    return bool(tag) and tag != "latest" and "$" not in tag


# -- images ----------------------------------------------------------------------------------------
def test_every_service_image_has_a_pinned_tag_other_than_latest():
    unpinned = {
        name: svc.get("image")
        for name, svc in services().items()
        if not image_is_pinned(str(svc.get("image", "")))
    }
    assert unpinned == {}


def test_every_dockerfile_base_image_has_a_pinned_tag():
    bases = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert bases, "the Dockerfile has no FROM line"
    assert [b for b in bases if not image_is_pinned(b)] == []


def test_every_built_image_uses_a_target_of_the_project_dockerfile():
    targets = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE))
    builds = {name: svc["build"] for name, svc in services().items() if "build" in svc}
    assert {"sink", "topics-init"} <= set(builds)
    for name, build in builds.items():
        assert (REPO_ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE, name
        assert build["target"] in targets, f"{name}: unknown build target {build['target']!r}"


# -- Kafka -----------------------------------------------------------------------------------------
def test_every_kafka_node_runs_in_kraft_mode_as_broker_and_controller():
    nodes = kafka_services()
    assert nodes
    for name, svc in nodes.items():
        env = env_of(svc)
        roles = set(env.get("KAFKA_PROCESS_ROLES", "").split(","))
        assert roles == {"broker", "controller"}, name
        assert env.get("KAFKA_CONTROLLER_QUORUM_VOTERS"), name
        assert env.get("CLUSTER_ID"), name
        assert not any("ZOOKEEPER" in key for key in env), name


def test_scale_out_profile_has_three_kafka_nodes_with_distinct_ids_and_one_quorum():
    nodes = {
        name: env_of(svc)
        for name, svc in kafka_services().items()
        if "scale-out" in svc.get("profiles", [])
    }
    assert len(nodes) == 3
    ids = {env["KAFKA_NODE_ID"] for env in nodes.values()}
    assert len(ids) == 3
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in nodes.values()}
    assert len(voters) == 1
    expected = {f"{env['KAFKA_NODE_ID']}@{name}:9093" for name, env in nodes.items()}
    assert set(voters.pop().split(",")) == expected
    assert len({env["CLUSTER_ID"] for env in nodes.values()}) == 1


def test_scale_out_kafka_replicates_internal_topics_on_all_three_nodes():
    nodes = {n: s for n, s in kafka_services().items() if "scale-out" in s.get("profiles", [])}
    assert len(nodes) == 3
    for name, svc in nodes.items():
        env = env_of(svc)
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3", name
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3", name
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2", name


def test_default_kafka_node_starts_without_a_profile():
    defaults = [name for name, svc in kafka_services().items() if not svc.get("profiles")]
    assert len(defaults) == 1
    assert env_of(services()[defaults[0]])["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@") == 1


# -- Kafka security: SASL/SCRAM over TLS, nothing plaintext ---------------------------------------
BROKER_ENTRYPOINT = REPO_ROOT / "infra" / "kafka" / "compose-broker.sh"
TLS_PROTOCOLS = {"SSL", "SASL_SSL"}


def listener_protocols(env: dict[str, str]) -> dict[str, str]:
    """Listener name -> security protocol, from KAFKA_LISTENER_SECURITY_PROTOCOL_MAP."""
    pairs = (item.split(":", 1) for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    return {name.strip(): protocol.strip() for name, protocol in pairs}


def listener_names(value: str) -> set[str]:
    return {item.split("://", 1)[0] for item in value.split(",") if item}


def kafka_clients() -> dict[str, dict[str, str]]:
    """Every service that talks to Kafka (it is given UF_KAFKA_BOOTSTRAP), with its environment."""
    return {
        name: env_of(svc) for name, svc in services().items() if "UF_KAFKA_BOOTSTRAP" in env_of(svc)
    }


def test_no_kafka_listener_is_plaintext_and_clients_get_sasl_ssl_with_scram():
    for name, svc in kafka_services().items():
        env = env_of(svc)
        protocols = listener_protocols(env)
        used = listener_names(env["KAFKA_LISTENERS"]) | listener_names(
            env["KAFKA_ADVERTISED_LISTENERS"]
        )
        assert used <= set(protocols), name
        assert {protocols[listener] for listener in used} <= TLS_PROTOCOLS, name
        advertised = listener_names(env["KAFKA_ADVERTISED_LISTENERS"])
        assert {protocols[listener] for listener in advertised} == {"SASL_SSL"}, name
        assert protocols[env["KAFKA_INTER_BROKER_LISTENER_NAME"]] == "SASL_SSL", name
        assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512", name
        assert env["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == "SCRAM-SHA-512", name


def test_no_kafka_port_is_published_to_the_host():
    assert {name: svc["ports"] for name, svc in kafka_services().items() if "ports" in svc} == {}


def test_brokers_log_in_to_each_other_with_a_password_from_the_environment():
    for name, svc in kafka_services().items():
        env = env_of(svc)
        jaas = env["KAFKA_LISTENER_NAME_SASL__SSL_SCRAM___SHA___512_SASL_JAAS_CONFIG"]
        assert "ScramLoginModule required" in jaas, name
        password = re.search(r'password="([^"]*)"', jaas)
        assert password and ENV_REFERENCE.match(password[1]), f"{name}: literal JAAS password"
        assert ENV_REFERENCE.match(env["KAFKA_BROKER_SASL_PASSWORD"]), name
        assert ENV_REFERENCE.match(env["UF_KAFKA_SASL_PASSWORD"]), name


def test_each_node_formats_its_storage_with_the_scram_users_through_the_mounted_entrypoint():
    script = BROKER_ENTRYPOINT.read_text(encoding="utf-8")
    formatted_map = re.search(r"^listener\.security\.protocol\.map=(.*)$", script, re.M)[1]
    for name, svc in kafka_services().items():
        assert svc["entrypoint"] == ["/opt/urbanflow/compose-broker.sh"], name
        mounts = {volume.rsplit(":", 2)[1]: volume.split(":", 1)[0] for volume in svc["volumes"]}
        assert mounts["/opt/urbanflow/compose-broker.sh"] == "./infra/kafka/compose-broker.sh"
        assert "/etc/kafka/secrets" in mounts, f"{name}: no keystore folder mounted"
        # the storage is formatted with the listeners the broker then runs
        assert formatted_map == env_of(svc)["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"], name
        assert "--command-config /tmp/urbanflow-healthcheck.properties" in " ".join(
            svc["healthcheck"]["test"]
        ), f"{name}: a plaintext healthcheck cannot reach a SASL_SSL-only broker"
    assert script.count("--add-scram") == 2
    assert os.access(BROKER_ENTRYPOINT, os.X_OK)


def test_every_kafka_client_container_uses_sasl_ssl_and_trusts_the_mounted_ca():
    clients = kafka_clients()
    assert {"sink", "topics-init", "ingest-api", "airflow-triggerer"} <= set(clients)
    for name, env in clients.items():
        assert env["UF_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env["UF_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert env["UF_KAFKA_SASL_USERNAME"], name
        assert ENV_REFERENCE.match(env["UF_KAFKA_SASL_PASSWORD"]), name
        targets = {volume.rsplit(":", 2)[1] for volume in services()[name].get("volumes", [])}
        assert env["UF_KAFKA_SSL_CAFILE"] in targets, f"{name}: the CA file is not mounted"


# -- secrets ---------------------------------------------------------------------------------------
#: The apache/kafka image's names of files in its secrets folder (a keystore, the file holding its
#: password) and their types: a key word in the name, no secret in the value.
SECRET_FILE_SETTINGS = ("_FILENAME", "_CREDENTIALS", "_TYPE", "_LOCATION")


def test_every_secret_setting_is_an_environment_reference_not_a_literal():
    literals = {
        f"{name}.{key}": value
        for name, svc in services().items()
        for key, value in env_of(svc).items()
        if any(word in key.upper() for word in SECRET_WORDS)
        and not key.endswith(SECRET_FILE_SETTINGS)
        and not ENV_REFERENCE.match(value)
    }
    assert literals == {}


def test_passwords_inside_connection_urls_come_from_the_environment():
    with_password = 0
    for name, svc in services().items():
        for text in [*env_of(svc).values(), command_text(svc)]:
            text = re.sub(r"\$\{[^}]*\}", "ENVREF", text)
            for url in re.findall(r"[a-z0-9+]+://\S+", text):
                password = urlsplit(url).password
                if password is not None:
                    with_password += 1
                    assert password == "ENVREF", f"{name}: literal password in {url}"
    assert with_password > 0


def test_env_example_holds_no_uncommented_values():
    live = [
        line
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert live == []


# -- UrbanFlow services ----------------------------------------------------------------------------
def test_sink_stops_on_sigterm_with_time_to_commit_its_batch():
    sink = services()["sink"]
    assert sink["stop_signal"] == "SIGTERM"
    assert sink["stop_grace_period"] == "60s"
    assert sink["restart"] == "unless-stopped"
    assert command_text(sink).startswith("sink run")


def test_sink_keeps_the_warehouse_on_a_named_volume():
    sink = services()["sink"]
    warehouse_dir = str(Path(env_of(sink)["UF_WAREHOUSE_PATH"]).parent)
    source_by_target = {v.split(":")[1]: v.split(":")[0] for v in sink["volumes"]}
    assert source_by_target.get(warehouse_dir) in compose()["volumes"]


def test_topics_are_applied_before_the_sink_starts():
    assert command_text(services()["topics-init"]) == "topics apply"
    condition = services()["sink"]["depends_on"]["topics-init"]["condition"]
    assert condition == "service_completed_successfully"


def test_app_services_point_settings_at_files_inside_the_image():
    """An installed package has no source tree, so the settings' repo-relative defaults must not
    be relied on in containers."""
    for name in ("topics-init", "sink"):
        env = env_of(services()[name])
        for key in ("UF_TOPICS_FILE", "UF_DBT_PROJECT_DIR", "UF_WAREHOUSE_PATH", "UF_STATE_DIR"):
            assert env.get(key, "").startswith("/"), f"{name}.{key}"


def dockerfile_stage(target: str) -> str:
    text = DOCKERFILE.read_text(encoding="utf-8")
    stages = re.split(r"^(?=FROM )", text, flags=re.MULTILINE)
    [stage] = [s for s in stages if re.match(rf"FROM\s+\S+\s+AS\s+{target}\b", s)]
    return stage


@pytest.mark.parametrize("target", ["app", "airflow"])
def test_image_installs_the_package_from_a_wheel_and_keeps_no_source_tree(target: str):
    """As tests/integration/test_installed_package.py runs it: a wheel, no `-e`, source deleted."""
    stage = dockerfile_stage(target)
    assert re.search(r"(uv build[^\n]*--wheel|pip wheel)", stage), target
    assert re.search(r"install[^\n]*\.whl|/tmp/dist/\*\.whl", stage), target
    assert " -e " not in stage and "--editable" not in stage, target
    assert re.search(r"rm -rf [^\n]*/tmp/src", stage), target


@pytest.mark.parametrize("target", ["app", "airflow"])
def test_image_sets_uf_home_and_copies_every_file_the_cli_reads(target: str):
    stage = dockerfile_stage(target)
    assert re.search(r"UF_HOME=/opt/urbanflow\b", stage), target
    copied = set(re.findall(r"^COPY\s+(?:--\S+\s+)*(\S+)\s+/opt/urbanflow/", stage, re.MULTILINE))
    assert {
        "infra/kafka/topics.yml",
        "dbt_project",
        "quality/expectations.yml",
        "sample_data",
    } <= copied, target


def test_the_ingest_api_serves_and_shares_the_warehouse_volume():
    """It reads serving.duckdb for GET /v1/feeds and logs rejections beside the warehouse."""
    api = services()["ingest-api"]
    assert "profiles" not in api
    assert command_text(api) == "api serve --host 0.0.0.0 --port 8080"
    assert "warehouse:/var/lib/urbanflow" in api["volumes"]


# -- wiring ----------------------------------------------------------------------------------------
def test_every_depends_on_target_is_a_defined_service():
    missing = {
        f"{name} -> {target}"
        for name, svc in services().items()
        for target in svc.get("depends_on", {})
        if target not in services()
    }
    assert missing == set()


def test_every_named_volume_a_service_mounts_is_declared():
    declared = set(compose().get("volumes", {}))
    named = {
        f"{name}: {volume.split(':', 1)[0]}": volume.split(":", 1)[0]
        for name, svc in services().items()
        for volume in svc.get("volumes", [])
        if not volume.startswith((".", "/", "${"))  # bind mounts of host paths
    }
    assert named, "no service mounts a named volume"
    assert {mount for mount, source in named.items() if source not in declared} == set()


@pytest.mark.parametrize("name", ["airflow-postgres", "superset-postgres", "redis"])
def test_backing_store_has_a_healthcheck(name: str):
    assert services()[name]["healthcheck"]["test"]


# -- Airflow and Superset --------------------------------------------------------------------------
def airflow_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services().items() if n.startswith("airflow-") and "postgres" not in n}


def test_airflow_runs_the_celery_executor_with_a_redis_broker():
    for name, svc in airflow_services().items():
        env = env_of(svc)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert url_parts(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis", name


def test_airflow_runs_each_component_as_its_own_service():
    commands = {command_text(svc) for svc in airflow_services().values()}
    expected = {"api-server", "scheduler", "dag-processor", "triggerer", "celery worker"}
    assert expected <= commands


def postgres_host(url: str) -> str:
    parts = url_parts(url.removeprefix("db+"))
    assert parts.scheme.startswith("postgresql"), url
    host = parts.hostname or ""
    assert str(services()[host]["image"]).startswith("postgres:"), url
    return host


def test_airflow_metadata_and_celery_results_live_in_postgres():
    for name, svc in airflow_services().items():
        env = env_of(svc)
        assert postgres_host(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]), name
        assert postgres_host(env["AIRFLOW__CELERY__RESULT_BACKEND"]), name


def test_superset_metadata_lives_in_postgres_and_caches_in_redis():
    for name in ("superset", "superset-init"):
        env = env_of(services()[name])
        assert postgres_host(env["SUPERSET_DATABASE_URI"]) == "superset-postgres"
        assert url_parts(env["SUPERSET_REDIS_URL"]).hostname == "redis"
    assert "RedisCache" in DOCKERFILE.read_text(encoding="utf-8")


# -- documentation of settings ---------------------------------------------------------------------
def test_code_reads_the_uf_variables_we_expect_to_find():
    assert {
        "UF_KAFKA_BOOTSTRAP",
        "UF_WAREHOUSE_PATH",
        "UF_KAFKA_HEAP",
        "UF_HOME",
        "UF_EXPECTATIONS_FILE",
        "UF_API_PORT",
    } <= uf_variables_read_by_the_code()


def test_env_example_mentions_every_uf_variable_the_code_reads():
    assert undocumented(ENV_EXAMPLE.read_text(encoding="utf-8")) == set()


def test_env_example_shows_a_default_line_for_every_setting_of_the_settings_module():
    """`# NAME=default` (commented out), so a user sees what changing it changes from."""
    settings = set(UF_VARIABLE.findall(SETTINGS_MODULE.read_text(encoding="utf-8")))
    shown = set(re.findall(r"^# (UF_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert settings - shown == set()


def test_readme_configuration_table_mentions_every_uf_variable_the_code_reads():
    rows = readme_configuration_rows()
    assert undocumented("\n".join(f"{name} {default}" for name, default in rows.items())) == set()


def test_readme_configuration_table_gives_every_setting_a_default():
    settings = set(UF_VARIABLE.findall(SETTINGS_MODULE.read_text(encoding="utf-8")))
    rows = readme_configuration_rows()
    assert {name for name in settings if not rows.get(name)} == set()


# -- Airflow runs the platform's DAGs --------------------------------------------------------------
#: Where the airflow image keeps the project (UF_HOME) and where the shared volume is mounted.
IMAGE_HOME = "/opt/urbanflow"
VOLUME_DIR = "/var/lib/urbanflow"
#: Files `docker build` writes itself (not copied from the repo), and the RUN step that does.
BUILT_IN_IMAGE = {
    "/opt/urbanflow/airflow/dbt/manifest.json": (
        r"dbt parse [^\n]*--target-path /opt/urbanflow/airflow/dbt\b"
    ),
    "/opt/urbanflow/bin/urbanflow-dbt": (
        r"ln -s [^\n]*urbanflow-dbt[^\n]* /opt/urbanflow/bin/urbanflow-dbt\b"
    ),
}


def resolved(value: str) -> str:
    """A compose value as a container sees it when .env sets only the required secrets."""
    value = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}", "from-the-env", value)


def dockerfile_env(target: str) -> dict[str, str]:
    """`ENV A=b \\ C=d` lines of a Dockerfile stage."""
    env: dict[str, str] = {}
    for block in re.findall(r"^ENV\s+((?:[^\n]*\\\n)*[^\n]*)", dockerfile_stage(target), re.M):
        for pair in block.replace("\\\n", " ").split():
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def dockerfile_copies(target: str) -> dict[str, str]:
    """Destination in the image -> source in the repo, for each COPY of a stage."""
    copies = {}
    for line in re.findall(r"^COPY\s+(?:--\S+\s+)*(.+)$", dockerfile_stage(target), re.M):
        *sources, dest = line.split()
        if len(sources) == 1:
            copies[dest.rstrip("/")] = sources[0]
    return copies


def container_env(name: str) -> dict[str, str]:
    """The environment an Airflow service's processes get: the image's ENV, then compose's."""
    env = {**dockerfile_env("airflow")}
    env.update({key: resolved(value) for key, value in env_of(services()[name]).items()})
    return env


@pytest.fixture
def orchestration_settings_in(monkeypatch):
    """OrchestrationSettings as the DAG code builds them inside an Airflow container."""

    def settings_in(name: str):
        from connectors.settings import OrchestrationSettings

        for key in list(os.environ):
            if key.startswith(("UF_", "DBT_", "AIRFLOW")):
                monkeypatch.delenv(key)
        for key, value in container_env(name).items():
            monkeypatch.setenv(key, value)
        return OrchestrationSettings.from_env()

    return settings_in


def test_airflow_containers_resolve_every_orchestration_setting_inside_the_image(
    orchestration_settings_in,
):
    """Every path the DAG code reads points into the image (files the Dockerfile copies from the
    repo, or writes itself) or onto the shared volume, never at a repo-relative default."""
    copies = dockerfile_copies("airflow")
    stage = dockerfile_stage("airflow")
    for name in airflow_services():
        settings = orchestration_settings_in(name)
        base = settings.base
        assert str(base.home) == IMAGE_HOME, name
        assert base.kafka_bootstrap == "kafka:9092", name
        paths = {
            field: getattr(obj, field)
            for obj in (base, settings)
            for field in vars(obj)
            # contracts ship inside the installed package; home is checked above
            if isinstance(getattr(obj, field), Path) and field not in {"contracts_dir", "home"}
        }
        for field, path in paths.items():
            where = f"{name}: {field} = {path}"
            if str(path) == VOLUME_DIR or str(path).startswith(VOLUME_DIR + "/"):
                continue
            assert str(path).startswith(IMAGE_HOME + "/"), where
            if str(path) in BUILT_IN_IMAGE:
                assert re.search(BUILT_IN_IMAGE[str(path)], stage), where
                continue
            dest = next(
                (d for d in copies if str(path) == d or str(path).startswith(d + "/")), None
            )
            assert dest is not None, f"{where}: not copied into the airflow image"
            assert (REPO_ROOT / copies[dest] / str(path)[len(dest) :].lstrip("/")).exists(), where
        assert url_parts(settings.airflow_url).hostname == "airflow-api-server", name


def test_airflow_reads_the_repos_schedule_file_from_its_dag_folder(orchestration_settings_in):
    copies = dockerfile_copies("airflow")
    dags_in_image = next(dest for dest, source in copies.items() if source.rstrip("/") == "dags")
    for name in airflow_services():
        env = container_env(name)
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == dags_in_image, name
        schedules = orchestration_settings_in(name).source_schedules_file
        assert str(schedules) == f"{dags_in_image}/sources.yml", name
        # the DAG files come from the same build as the package they call, not a bind mount
        assert not [v for v in services()[name].get("volumes", []) if "dags" in v], name
    assert (REPO_ROOT / "dags" / "sources.yml").is_file()


def test_airflow_loads_the_node_report_trigger_from_the_repos_plugins_folder():
    """The triggerer imports the transform DAG's node-report trigger from the plugins folder."""
    copies = dockerfile_copies("airflow")
    plugins_in_image = next(
        dest for dest, source in copies.items() if source.rstrip("/") == "infra/airflow/plugins"
    )
    for name in airflow_services():
        assert container_env(name)["AIRFLOW__CORE__PLUGINS_FOLDER"] == plugins_in_image, name
    assert (REPO_ROOT / "infra" / "airflow" / "plugins" / "urbanflow_node_reports.py").is_file()


def test_the_watchers_kafka_connection_is_the_one_the_transform_dag_names(
    orchestration_settings_in,
):
    for name in airflow_services():
        settings = orchestration_settings_in(name)
        env = container_env(name)
        key = f"AIRFLOW_CONN_{settings.kafka_conn_id.upper()}"
        assert key in env, f"{name}: the DAG uses connection {settings.kafka_conn_id!r}"
        connection = json.loads(env[key])
        assert connection["conn_type"] == "kafka", name
        extra = connection["extra"]
        assert extra["bootstrap.servers"] == env["UF_KAFKA_BOOTSTRAP"], name
        # its own consumer group: sharing the sink's would steal the sink's partitions
        assert extra["group.id"] and extra["group.id"] != settings.base.sink_group, name
        assert extra["auto.offset.reset"] == "earliest", name
        # the same user and CA as every other client of the container
        assert extra["security.protocol"] == env["UF_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert extra["sasl.mechanism"] == env["UF_KAFKA_SASL_MECHANISM"], name
        assert extra["sasl.username"] == env["UF_KAFKA_SASL_USERNAME"], name
        assert extra["sasl.password"] == env["UF_KAFKA_SASL_PASSWORD"], name
        assert extra["ssl.ca.location"] == env["UF_KAFKA_SSL_CAFILE"], name
        stray = [k for k in env if k.startswith("AIRFLOW_CONN_") and "KAFKA" in k and k != key]
        assert stray == [], name


def test_airflow_shares_the_warehouse_volume_and_paths_with_the_sink():
    sink = services()["sink"]
    sink_env = env_of(sink)
    warehouse_dir = str(Path(sink_env["UF_WAREHOUSE_PATH"]).parent)
    sink_volume = {v.split(":")[1]: v.split(":")[0] for v in sink["volumes"]}[warehouse_dir]
    for name, svc in airflow_services().items():
        env = env_of(svc)
        for key in ("UF_WAREHOUSE_PATH", "UF_STATE_DIR", "UF_VAR_DIR", "UF_TOPICS_FILE"):
            assert env[key] == sink_env[key], f"{name}.{key}"
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
        assert mounts.get(warehouse_dir) == sink_volume, name
        assert env["DBT_TARGET_PATH"].startswith(warehouse_dir + "/"), name


def test_airflow_image_owns_the_volume_dir_and_can_import_the_watchers_apply_function():
    stage = dockerfile_stage("airflow")
    assert re.search(r"mkdir -p [^\n]*/var/lib/urbanflow\b", stage)
    assert re.search(r"chown -R airflow:0 [^\n]*/var/lib/urbanflow\b", stage)
    assert re.search(r"python -c [^\n]*APPLY_FUNCTION", stage), "build-time apply_function check"
    assert stage.rstrip().splitlines()[-1].strip() != "USER root"
    assert re.findall(r"^USER\s+(\S+)", stage, re.M)[-1] == "airflow"


def test_airflow_starts_the_dags_unpaused():
    for name in airflow_services():
        assert container_env(name)["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "false", name
