#!/usr/bin/env bash
# `make test` body: start a throwaway Kafka broker for the test run, run every suite, stop it.
# A developer can run the fast suites alone with `make test-fast` (no broker needed).
set -euo pipefail
cd "$(dirname "$0")/.."

export UF_VAR_DIR="${UF_TEST_VAR_DIR:-$PWD/var/test-run}"
export UF_KAFKA_PORT="${UF_TEST_KAFKA_PORT:-29092}"
export UF_KAFKA_BOOTSTRAP="127.0.0.1:$UF_KAFKA_PORT"
export UF_WAREHOUSE_PATH="$UF_VAR_DIR/warehouse.duckdb"

rm -rf "$UF_VAR_DIR"
mkdir -p "$UF_VAR_DIR"
stop_broker() { infra/kafka/kafkactl stop >/dev/null || true; }
trap stop_broker EXIT
infra/kafka/kafkactl start

.venv/bin/pytest "$@"
