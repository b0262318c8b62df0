"""The consume loop of the services that turn one topic's JSON records into effects (the milestone
notifier, the spike alerter): read a batch through the partition reader, decode it, apply it with
retries, then store the read positions after the effects. A crash between the two re-applies the
batch on restart, so `handle` must be idempotent (both services claim each id in Redis first).

The feature writer reads through the same partition reader with its own step (it decodes feature
updates and logs them offline)."""
from __future__ import annotations

import logging
import threading
import time

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from featurestore import layout
from services.partition_reader import PartitionReader, drain_to_end_markers
from services.retry import REDIS_UNAVAILABLE, retry_with_backoff

log = logging.getLogger("fyp.services")


class KafkaDeliveryError(RuntimeError):
    """A service's output records were not acknowledged: the batch is retried."""


class JsonTopicService:
    """Subclasses set `_stats` (their own counters) before calling __init__ and implement
    handle(records). `counted`: the stats key that counts decoded records."""

    counted = "records"

    def __init__(self, kafka: dict, topic: str, name: str, client, batch_max: int, poll_timeout_ms: int,
                 backoff_max_ms: int):
        self.kafka, self.topic, self.client, self.name = kafka, topic, client, name
        self.backoff_max = backoff_max_ms / 1000
        self._stats = {self.counted: 0, "undecodable": 0, "retries": 0, **getattr(self, "_stats", {})}
        self.reader = PartitionReader(kafka, topic, name, client, self._retry, batch_max, poll_timeout_ms)
        self.reader.assign(self.reader.stored)

    @property
    def stats(self) -> dict:
        return {**self._stats, **self.reader.stats}

    def _retry(self, call):
        def note(e, delay):
            self._stats["retries"] += 1
            log.warning("%s: %s; retrying in %.2fs", self.name, e, delay)
        return retry_with_backoff(call, (*REDIS_UNAVAILABLE, KafkaDeliveryError), self.backoff_max, note)

    def handle(self, records: list[dict]) -> None:
        raise NotImplementedError

    def step(self) -> int:
        """One poll-apply-store cycle. Returns how many records it read."""
        msgs, positions = self.reader.poll()
        if not positions:
            return 0
        records = []
        for m in msgs:
            try:
                records.append(orjson.loads(m.value()))
            except (orjson.JSONDecodeError, TypeError):  # not JSON, or no value
                self._stats["undecodable"] += 1
                log.error("%s: undecodable record at %s/%d@%d", self.name, m.topic(), m.partition(), m.offset())
        self._stats[self.counted] += len(records)
        self._retry(lambda: self.handle(records))
        self._retry(lambda: self.client.hset(layout.writer_offsets_key(self.name), mapping=positions))
        return len(msgs)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step()

    def drain(self, run_id: str) -> None:
        """Consumes until past the end markers of `run_id` on every partition (after a bounded job
        finished)."""
        drain_to_end_markers(self.step, self.reader, run_id)

    def close(self) -> None:
        self.reader.close()


def published_keys(kafka: dict, topic: str, group: str, idle_s: float = 3.0) -> set[str]:
    """Keys already on `topic`, read until nothing arrives for `idle_s` (the broker's end offsets
    count batches, not records, so they cannot say where the end is). Rare: only after a service
    died between claiming an id and publishing it."""
    c = Consumer({**kafka, "group.id": group, "enable.auto.commit": False})
    meta = c.list_topics(topic, timeout=30)
    parts = sorted(meta.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    keys, last = set(), time.monotonic()
    while time.monotonic() - last < idle_s:
        for m in c.consume(1000, 0.2):
            if not m.error():
                keys.add(m.key().decode() if m.key() else "")
                last = time.monotonic()
    c.close()
    return keys
