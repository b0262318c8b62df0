"""The feature writer service: feature-updates topic -> Redis, losing nothing.

Reads a batch, keeps the newest version per key, writes it in one pipeline, and only then commits
the offsets. If Redis is down the same batch is retried with backoff (the pipeline slows down, the
updates wait in Kafka); if the process dies, the uncommitted batch is read again and the versioned
write makes the repeat harmless.
"""
from __future__ import annotations

import logging
import threading
import time

import redis
from confluent_kafka import Consumer, KafkaError, TopicPartition

from featurestore.updates import decode_update, latest_per_entity
from featurestore.writer import FeatureWriter

log = logging.getLogger("fyp.writer")


class FeatureUpdateConsumer:
    def __init__(self, bootstrap: str, topic: str, group_id: str, writer: FeatureWriter,
                 batch_max: int = 2000, poll_timeout_ms: int = 50, backoff_max_ms: int = 5000,
                 on_write=None):
        self.topic = topic
        self.writer = writer
        self.batch_max = batch_max
        self.poll_timeout = poll_timeout_ms / 1000
        self.backoff_max = backoff_max_ms / 1000
        self.on_write = on_write  # optional callback(list[FeatureUpdate]) after each stored batch
        self.stats = {"consumed": 0, "written": 0, "stale": 0, "undecodable": 0, "redis_retries": 0}
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,  # tansu: a join takes half the session timeout
            "fetch.wait.max.ms": 50,
        })
        self.consumer.subscribe([topic])

    def step(self) -> int:
        """One poll-write-commit cycle. Returns how many messages it consumed."""
        msgs = self.consumer.consume(num_messages=self.batch_max, timeout=self.poll_timeout)
        if not msgs:
            return 0
        updates = []
        offsets: dict = {}
        for m in msgs:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", m.error())
                continue
            offsets[(m.topic(), m.partition())] = m.offset() + 1
            try:
                updates.append(decode_update(m.value()))
            except Exception:  # a producer bug, not retryable: count it and move on
                self.stats["undecodable"] += 1
                log.error("undecodable feature update at %s/%d@%d", m.topic(), m.partition(), m.offset())
        batch = latest_per_entity(updates)
        written = self._write_with_retry(batch)
        if offsets:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                 asynchronous=False)
        self.stats["consumed"] += len(msgs)
        self.stats["written"] += written
        self.stats["stale"] += len(batch) - written
        if self.on_write is not None:
            self.on_write(batch)
        return len(msgs)

    def _write_with_retry(self, batch) -> int:
        delay = 0.05
        while True:
            try:
                return self.writer.write(batch)
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as e:
                self.stats["redis_retries"] += 1
                log.warning("redis unavailable (%s); retrying %d updates in %.2fs", e, len(batch), delay)
                time.sleep(delay)
                delay = min(delay * 2, self.backoff_max)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step()

    def drain(self, idle_ms: int = 3000, stop: threading.Event | None = None) -> None:
        """Consumes until nothing has arrived for `idle_ms` (used after a bounded job finished)."""
        idle_since = time.monotonic()
        while stop is None or not stop.is_set():
            if self.step():
                idle_since = time.monotonic()
            elif (time.monotonic() - idle_since) * 1000 >= idle_ms:
                return

    def close(self) -> None:
        self.consumer.close()
