#!/usr/bin/env bash
# `make test` body: start a throwaway Kafka broker for the test run, run every suite, stop it.
# A developer can run the fast suites alone with `make test-fast` (no broker needed).
#
# With arguments, one pytest gets them (`bash tests/run.sh tests/unit -q`). Without, the suites
# run as two pytest sessions side by side, so a 2-core machine is kept busy while either waits on
# its servers: the Superset server and browser suites, the fault suite (brokers of its own), the
# unit and config tests and a few pipeline suites in one (about as long as the other); every other
# suite, Airflow's first, in the other. Each session has its own broker
# and var dir: many suites load a whole shared topic (e.g. stats.sdmx.observation.v1) into a fresh
# warehouse and count the marts, so one session's events must never reach the other's. Each
# session ends with its own secret scan (tests/reliability/test_secret_scan.py) over the secrets
# it created and every log of its var dir.
set -euo pipefail
cd "$(dirname "$0")/.."

export UF_VAR_DIR="${UF_TEST_VAR_DIR:-$PWD/var/test-run}"
export UF_KAFKA_PORT="${UF_TEST_KAFKA_PORT:-29092}"
export UF_KAFKA_BOOTSTRAP="127.0.0.1:$UF_KAFKA_PORT"
export UF_WAREHOUSE_PATH="$UF_VAR_DIR/warehouse.duckdb"

SECOND_VAR_DIR="$UF_VAR_DIR-second"
SECOND_KAFKA_PORT="$((UF_KAFKA_PORT + 2))"  # the first broker's controller takes UF_KAFKA_PORT+1
second_session_env() {
  env UF_VAR_DIR="$SECOND_VAR_DIR" UF_KAFKA_PORT="$SECOND_KAFKA_PORT" \
    UF_KAFKA_BOOTSTRAP="127.0.0.1:$SECOND_KAFKA_PORT" \
    UF_WAREHOUSE_PATH="$SECOND_VAR_DIR/warehouse.duckdb" "$@"
}

rm -rf "$UF_VAR_DIR" "$SECOND_VAR_DIR"
mkdir -p "$UF_VAR_DIR"
stop_brokers() {
  infra/kafka/kafkactl stop >/dev/null || true
  [[ -d "$SECOND_VAR_DIR/kafka" ]] && second_session_env infra/kafka/kafkactl stop >/dev/null || true
}
trap stop_brokers EXIT
infra/kafka/kafkactl start

if [[ $# -gt 0 ]]; then
  .venv/bin/pytest "$@"
  exit
fi

SECOND=(tests/integration/test_superset.py tests/integration/test_superset_browser.py
  tests/reliability/test_faults.py tests/integration/test_demo.py
  tests/integration/test_sdmx_deletions.py tests/integration/test_theme_marts.py
  tests/integration/test_installed_package.py tests/unit tests/config)
SCAN=tests/reliability/test_secret_scan.py
second_log="$SECOND_VAR_DIR/pytest-second-session.log"
ignores=()
for path in "${SECOND[@]}"; do ignores+=("--ignore=$path"); done

mkdir -p "$SECOND_VAR_DIR"
second_session_env infra/kafka/kafkactl start
started=$SECONDS
second_session_env .venv/bin/pytest -p no:cacheprovider "${SECOND[@]}" "$SCAN" > "$second_log" 2>&1 &
second=$!
first_status=0
.venv/bin/pytest -p no:cacheprovider tests "${ignores[@]}" || first_status=$?
second_status=0
wait "$second" || second_status=$?
echo
echo "==================== second session: ${SECOND[*]} ===================="
cat "$second_log"
echo "both sessions finished in $((SECONDS - started)) s (first exit $first_status, second exit $second_status)"
[[ $first_status -eq 0 && $second_status -eq 0 ]]
