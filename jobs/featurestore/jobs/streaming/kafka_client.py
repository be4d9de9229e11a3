"""The Python Kafka client (confluent-kafka, the ``[kafka]`` extra): one place that imports it.

Used by the plain consumer (:mod:`.kafka_consumer`), the demo producer and the tests.  The
Spark job does not need it: Spark reads and writes Kafka with its own (JVM) client.
"""

from __future__ import annotations

import logging
from typing import Any

from featurestore.readers.errors import ConfigurationError, FeatureStoreError

log = logging.getLogger(__name__)

__all__ = ["KafkaError", "admin", "confluent", "consumer", "end_offsets", "ensure_topic", "producer"]


class KafkaError(FeatureStoreError):
    """A Kafka client call failed (broker unreachable, topic creation refused ...)."""


def confluent() -> Any:
    """The ``confluent_kafka`` module, or a ConfigurationError naming the extra to install."""
    try:
        import confluent_kafka
        import confluent_kafka.admin
    except ImportError:
        raise ConfigurationError(
            'the Kafka client needs confluent-kafka: pip install "redis-feature-store[kafka]"'
        ) from None
    return confluent_kafka


def _quiet(conf: dict[str, Any]) -> dict[str, Any]:
    # librdkafka prints connection errors on stderr by default; send them to our log instead
    return {"logger": log, **conf}


def producer(bootstrap: str, **conf: Any) -> Any:
    """A ``confluent_kafka.Producer`` (acks=all, batching for throughput)."""
    settings = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, **conf}
    return confluent().Producer(_quiet(settings))


def consumer(bootstrap: str, group: str, **conf: Any) -> Any:
    """A ``confluent_kafka.Consumer`` with manual commits (at-least-once: commit after the write)."""
    settings = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        **conf,
    }
    return confluent().Consumer(_quiet(settings))


def admin(bootstrap: str) -> Any:
    return confluent().admin.AdminClient(_quiet({"bootstrap.servers": bootstrap}))


def ensure_topic(bootstrap: str, topic: str, partitions: int = 2, timeout: float = 30.0) -> None:
    """Create ``topic`` (replication 1) unless it exists."""
    kafka = confluent()
    client = admin(bootstrap)
    try:
        metadata = client.list_topics(timeout=timeout)
    except kafka.KafkaException as exc:
        raise KafkaError(f"cannot reach Kafka at {bootstrap}: {exc}") from None
    if topic in metadata.topics:
        return
    futures = client.create_topics([kafka.admin.NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    try:
        futures[topic].result(timeout)
    except kafka.KafkaException as exc:
        if exc.args and getattr(exc.args[0], "code", lambda: None)() == kafka.KafkaError.TOPIC_ALREADY_EXISTS:
            return
        raise KafkaError(f"cannot create topic {topic!r} at {bootstrap}: {exc}") from None
    log.info("created topic %s (%d partitions) at %s", topic, partitions, bootstrap)


def end_offsets(client: Any, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """The high watermark of every partition of ``topic`` (``client``: a consumer)."""
    kafka = confluent()
    metadata = client.list_topics(topic, timeout=timeout)
    if topic not in metadata.topics or metadata.topics[topic].error is not None:
        raise KafkaError(f"topic {topic!r} does not exist")
    out = {}
    for partition in metadata.topics[topic].partitions:
        _, high = client.get_watermark_offsets(kafka.TopicPartition(topic, partition), timeout=timeout)
        out[partition] = high
    return out
