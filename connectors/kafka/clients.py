"""What every kafka-python client of ours is built with, and the one error each failure becomes.

The security options (TLS, SASL/SCRAM) come from `connectors.settings.KafkaSecurity`, the same for
the sources, the sink, the dead-letter tools, the admin client and the partner API.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer
from kafka.errors import KafkaError, SaslAuthenticationFailedError

from connectors.errors import BrokerUnavailableError
from connectors.settings import KafkaSecurity


def client_options() -> dict[str, Any]:
    """Security keyword arguments for a KafkaProducer, KafkaConsumer or KafkaAdminClient."""
    return KafkaSecurity.from_env().client_options()


def unreachable(bootstrap: str, error: KafkaError) -> BrokerUnavailableError:
    """One line naming the broker, what went wrong and the fix; never kafka-python's traceback."""
    security = KafkaSecurity.from_env()
    if isinstance(error, SaslAuthenticationFailedError):
        return BrokerUnavailableError(
            f"Kafka at {bootstrap} refused user {security.sasl_username!r} "
            f"({security.sasl_mechanism}): check UF_KAFKA_SASL_USERNAME and UF_KAFKA_SASL_PASSWORD"
        )
    if security.uses_sasl:  # kafka-python reports refused credentials as a lost connection
        return BrokerUnavailableError(
            f"no Kafka broker answers at {bootstrap} over {security.protocol} as user "
            f"{security.sasl_username!r}: check UF_KAFKA_BOOTSTRAP, UF_KAFKA_SASL_USERNAME / "
            "UF_KAFKA_SASL_PASSWORD and UF_KAFKA_SSL_CAFILE (the CA of the broker's certificate)"
        )
    if security.uses_tls:
        return BrokerUnavailableError(
            f"no Kafka broker answers at {bootstrap} over {security.protocol}: check "
            "UF_KAFKA_BOOTSTRAP and UF_KAFKA_SSL_CAFILE (the CA of the broker's certificate)"
        )
    return BrokerUnavailableError(
        f"no Kafka broker answers at {bootstrap}; start one with `make up` "
        "or set UF_KAFKA_BOOTSTRAP / UF_KAFKA_PORT"
    )


def joining(consumer: KafkaConsumer) -> bool:
    """Whether the consumer's group join is under way. A poll that may not wait can lose it then
    (kafka-python 3.0.12; see `resume_stalled_join`), so a caller that polls without waiting
    (the sink, while it has records to validate) waits during a join."""
    coordinator = getattr(consumer, "_coordinator", None)
    return coordinator is not None and bool(coordinator.need_rejoin() or coordinator.rejoining)


def read_to_high_watermark(consumer: KafkaConsumer) -> bool:
    """Whether every assigned partition has been read up to the high watermark its last fetch
    reported: nothing is buffered and, as of that fetch, nothing more was on the broker. A hint
    (no round trip): `end_offsets` has the final word."""
    subscription = getattr(consumer, "_subscription", None)
    states = getattr(subscription, "assignment", None)
    if not states:
        return False
    for state in states.values():
        position, highwater = state.position, state.highwater
        if position is None or highwater is None or position.offset < highwater:
            return False
    return True


def resume_stalled_join(consumer: KafkaConsumer) -> bool:
    """Finish a group join kafka-python 3.0.12 abandoned; True if there was one to finish.

    A rejoin asked for by a metadata change (every fresh consumer makes one: its first join sees an
    empty metadata snapshot) is lost when `poll()` times out between the leader's assignment and the
    SyncGroup response: the next poll finds nothing to rejoin, the finished join is never applied,
    and the member holds its revoked partitions unfetchable forever (seen as a sink loading nothing
    for 16 minutes). Asking for a rejoin then lets kafka-python's next poll run the join again.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    join = getattr(coordinator, "_join_task", None)
    if join is None or not join.is_done or coordinator.need_rejoin():
        return False
    coordinator.request_rejoin()
    return True
