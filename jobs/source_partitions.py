"""A streaming job's Kafka topics against its parallelism, checked before the job starts.

WHY: each Kafka source subtask reads a share of the topic's partitions. One that gets none never
sends a watermark, and unless sources may go idle (`flink.source_idle_timeout`, off by default:
docs/features.md) it holds the job's watermark where it is: no step or window ever closes, and
the job runs and writes nothing, without an error (seen: parallelism 3 on a topic of 2
partitions, no feature in Redis after 60 s; with an idle timeout of 2 s, features within 5 s).
"""
from __future__ import annotations

import logging

from settings.config import Config
from settings.kafka_clients import client_config

log = logging.getLogger("fyp.jobs")

DESCRIBE_TIMEOUT_S = 10


class SourcePartitionsError(ValueError):
    """A topic the job reads has fewer partitions than the job has source subtasks."""


def partition_counts(cfg: Config, topics: list[str]) -> dict[str, int]:
    """Partitions of each topic that the broker describes; a topic it cannot describe (not created
    yet, broker down) is left out: the job's own source then waits for it as it would anyway."""
    from confluent_kafka import KafkaException, TopicCollection
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(client_config(cfg.kafka))
    counts = {}
    for topic, future in admin.describe_topics(TopicCollection(topics), request_timeout=DESCRIBE_TIMEOUT_S).items():
        try:
            counts[topic] = len(future.result().partitions)
        except KafkaException as e:
            log.warning("topic %s: cannot describe it (%s); its partitions are not checked", topic, e)
    return counts


def check(cfg: Config, topics: list[str]) -> None:
    """Raises SourcePartitionsError when a topic has fewer partitions than `flink.parallelism` and
    sources may not go idle."""
    if cfg.flink.source_idle_timeout:
        return  # a subtask without a partition goes idle and stops holding the watermark
    parallelism = cfg.flink.parallelism
    short = {t: n for t, n in partition_counts(cfg, topics).items() if n < parallelism}
    if short:
        named = ", ".join(f"{t!r} has {n}" for t, n in short.items())
        raise SourcePartitionsError(
            f"flink.parallelism is {parallelism} but {named} partition(s): a source subtask without "
            f"a partition sends no watermark, so no window would ever close and the job would write "
            f"nothing. Set flink.parallelism to at most {min(short.values())}, add partitions to the "
            f"topic, or set flink.source_idle_timeout (for example 5s) so that such a subtask counts "
            f"as idle (docs/operations.md).")
