#!/usr/bin/env bash
# Entrypoint of each Kafka node in docker-compose.yml (apache/kafka image), before the image's own
# start-up (/etc/kafka/docker/run). KRaft keeps SCRAM credentials in the cluster metadata, so the
# first start formats the node's storage with them: the brokers' own user (inter-broker traffic)
# and the platform's client user. Later starts find the storage formatted and change nothing
# (rotate a password with kafka-configs.sh --alter --add-config 'SCRAM-SHA-512=[password=...]').
# It also writes the client config the container's healthcheck logs in with.
set -euo pipefail
: "${CLUSTER_ID:?}" "${KAFKA_NODE_ID:?}" "${KAFKA_CONTROLLER_QUORUM_VOTERS:?}"
: "${KAFKA_BROKER_SASL_USERNAME:?}" "${KAFKA_BROKER_SASL_PASSWORD:?}"
: "${UF_KAFKA_SASL_USERNAME:?}" "${UF_KAFKA_SASL_PASSWORD:?}"
STORAGE_TOOL="${KAFKA_STORAGE_TOOL:-/opt/kafka/bin/kafka-storage.sh}"
DATA_DIR="${KAFKA_LOG_DIRS:-/var/lib/kafka/data}"
SECRETS_DIR="${KAFKA_SECRETS_DIR:-/etc/kafka/secrets}"
umask 077

cat > /tmp/urbanflow-healthcheck.properties <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KAFKA_BROKER_SASL_USERNAME" password="$KAFKA_BROKER_SASL_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=$SECRETS_DIR/ca.pem
PROPERTIES

if [[ ! -f "$DATA_DIR/meta.properties" ]]; then
  format_config="$(mktemp)"
  cat > "$format_config" <<PROPERTIES
process.roles=broker,controller
node.id=$KAFKA_NODE_ID
controller.quorum.voters=$KAFKA_CONTROLLER_QUORUM_VOTERS
controller.listener.names=CONTROLLER
listeners=SASL_SSL://:9092,CONTROLLER://:9093
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
inter.broker.listener.name=SASL_SSL
log.dirs=$DATA_DIR
PROPERTIES
  # shellcheck disable=SC2086  # KAFKA_STORAGE_TOOL may be a command with arguments
  $STORAGE_TOOL format -t "$CLUSTER_ID" -c "$format_config" \
    --add-scram "SCRAM-SHA-512=[name=$KAFKA_BROKER_SASL_USERNAME,password=$KAFKA_BROKER_SASL_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=$UF_KAFKA_SASL_USERNAME,password=$UF_KAFKA_SASL_PASSWORD]"
  rm -f "$format_config"
fi
exec "$@"
