"""Kafka over SASL/SCRAM and TLS, as the production compose file runs it, on a real broker.

`infra/kafka/kafkactl` starts a broker of our own that takes clients on SASL_SSL only (port
UF_TEST_SECURE_KAFKA_PORT, default 29661, and the next one for its controller). Every client
takes the credentials from the environment, as in production: the CLI's topics, source, sink
and dead-letter commands and the partner API. A client without them is refused in one line.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import secrets_registry
from api_harness import CLI, WAIT_S, ApiServer, result_event
from sink_harness import Broker

from connectors.api.partners import PartnerStore

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
SDMX_SAMPLE = REPO / "sample_data" / "sdmx"
SENT = re.compile(r"^sdmx: sent ([\d,]+) events", re.MULTILINE)
USER = "urbanflow-test"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The secure broker, and the environment of a client holding the right credentials."""
    var = tmp_path_factory.mktemp("kafka-sasl-ssl")
    password = secrets_registry.register(secrets.token_hex(16), "Kafka SASL password")
    port = int(os.environ.get("UF_TEST_SECURE_KAFKA_PORT", "29661"))
    security = {
        "UF_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "UF_KAFKA_SASL_USERNAME": USER,
        "UF_KAFKA_SASL_PASSWORD": password,
    }
    broker = Broker(var / "broker", port, security)
    broker.ctl("start")
    try:
        yield {
            **os.environ,
            **security,
            "UF_KAFKA_BOOTSTRAP": broker.bootstrap,
            "UF_KAFKA_SSL_CAFILE": str(var / "broker" / "kafka" / "tls" / "ca.pem"),
            "UF_VAR_DIR": str(var),
            "UF_WAREHOUSE_PATH": str(var / "warehouse.duckdb"),
            "UF_STATE_DIR": str(var / "state"),
            "UF_PARTNERS_DB": str(var / "partners.sqlite"),
            "UF_SINK_GROUP": f"test-secure-{uuid.uuid4().hex[:8]}",
            "COLUMNS": "200",
        }
    finally:
        broker.ctl("stop")


def _urbanflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=WAIT_S, check=False
    )
    secrets_registry.capture(f"urbanflow {' '.join(args)}", done.stdout + done.stderr)
    return done


def _ok(env: dict[str, str], *args: str) -> str:
    done = _urbanflow(env, *args)
    assert done.returncode == 0, f"urbanflow {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def test_sources_api_sink_and_dlq_work_over_sasl_ssl_with_credentials_from_the_environment(
    secure: dict[str, str], tmp_path: Path
) -> None:
    _ok(secure, "topics", "apply")
    sent = int(
        SENT.search(_ok(secure, "source", "run", "sdmx", str(SDMX_SAMPLE)))[1].replace(",", "")
    )

    partner, key = PartnerStore(Path(secure["UF_PARTNERS_DB"])).add(
        f"secure-{uuid.uuid4().hex[:6]}"
    )
    secrets_registry.register(key, "partner API key")
    server = ApiServer(
        {k: v for k, v in secure.items() if k.startswith("UF_")}, tmp_path / "api.log"
    )
    server.start()
    try:
        own = f"urn:partner:{partner.slug}"
        answer = server.post(key, json={"events": [result_event("secure-1", own)]})
    finally:
        server.stop()
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 1, answer.text

    _ok(secure, "sink", "run", "--until-caught-up", "--no-progress")
    with duckdb.connect(secure["UF_WAREHOUSE_PATH"], read_only=True) as con:
        observations = con.execute(
            "select count(distinct event_id) from raw.stats_sdmx_observation_v1"
        ).fetchone()[0]
        results = con.execute("select count(*) from raw.partner_push_result_v1").fetchone()[0]
    assert sent > 0
    assert (observations, results) == (sent, 1)
    assert _ok(secure, "dlq", "list")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"UF_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}, "start one with `make up`"),
        ({"UF_KAFKA_SASL_PASSWORD": "not-the-password"}, f"as user '{USER}'"),
    ],
    ids=["plaintext-client", "wrong-password"],
)
def test_a_client_without_the_right_credentials_is_refused_in_one_line(
    secure: dict[str, str], change: dict[str, str], named: str
) -> None:
    done = _urbanflow({**secure, **change}, "topics", "apply")

    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"no Kafka broker answers at {secure['UF_KAFKA_BOOTSTRAP']}" in lines[0]
    assert named in lines[0]
    assert "Traceback" not in done.stdout + done.stderr
