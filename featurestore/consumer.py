"""The feature writer service: feature-updates topic -> Redis, losing nothing.

Reads a batch, keeps the newest version per key, and writes it in one pipeline together with the
positions it consumed up to (stored in Redis, layout.writer_offsets_key; not in the broker's
consumer groups: on tansu a group whose member was killed can stay without assignment for good,
measured). If Redis is down the same batch is retried with backoff (the pipeline slows down, the
updates wait in Kafka); if the process dies, it resumes from the stored positions and the
versioned write makes any repeat harmless. One writer process per writer name: it reads every
partition of the topic (partitions added later need a restart).

With an offline log (featurestore/offline_log.py), each batch's updates are also appended to it
after the Redis write, and the writer resumes from the lower of its positions and the log's.
"""
from __future__ import annotations

import logging
import threading
import time

import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from featurestore.offline_log import OfflineLog, resume_positions
from featurestore.latency import LatencyHistogram
from featurestore.updates import decode_update, latest_per_entity
from featurestore.writer import FeatureWriter

log = logging.getLogger("fyp.writer")


class FeatureUpdateConsumer:
    def __init__(self, kafka: dict, topic: str, group_id: str, writer: FeatureWriter,
                 batch_max: int = 2000, poll_timeout_ms: int = 50, backoff_max_ms: int = 5000,
                 on_write=None, offline_log: OfflineLog | None = None):
        self.topic = topic
        self.writer = writer
        self.offline_log = offline_log  # every consumed update is appended after its Redis write
        self._log_from: dict[str, int] = {}  # below these positions the log already has the rows
        self.batch_max = batch_max
        self.poll_timeout = poll_timeout_ms / 1000
        self.backoff_max = backoff_max_ms / 1000
        self.on_write = on_write  # optional callback(list[FeatureUpdate]) after each stored batch
        self.stats = {"consumed": 0, "written": 0, "stale": 0, "undecodable": 0, "redis_retries": 0,
                      "coerced_values": 0}
        # for the metrics exporter (fyp/observability): Redis write latency, the newest as-of time
        # stored per feature group (freshness), and the next offset per partition (lag)
        self.write_latency = LatencyHistogram()
        self.newest_as_of: dict[str, int] = {}
        self.positions: dict[int, int] = {}
        self.high_watermarks: dict[int, int] = {}
        self._high_noted_at = 0.0
        self.name = group_id
        self.consumer = Consumer({
            **kafka,  # connection settings (fyp.kafka_clients.client_config)
            "group.id": group_id,  # only for client identification: no subscribe, no commits
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 50,
        })
        self._assign()

    def _assign(self) -> None:
        meta = self.consumer.list_topics(self.topic, timeout=30)
        partitions = sorted(meta.topics[self.topic].partitions) if self.topic in meta.topics else []
        if not partitions:
            raise RuntimeError(f"topic {self.topic!r} has no partitions (is the broker up and the topic created?)")
        stored = self._with_retry(lambda: self.writer.read_offsets(self.name))
        if self.offline_log is not None:
            self._log_from = self.offline_log.positions
            stored = resume_positions(stored, self._log_from)
        self.consumer.assign([TopicPartition(self.topic, p, stored.get(f"{self.topic}:{p}", OFFSET_BEGINNING))
                              for p in partitions])

    def step(self) -> int:
        """One poll-write-commit cycle. Returns how many messages it consumed."""
        msgs = self.consumer.consume(num_messages=self.batch_max, timeout=self.poll_timeout)
        if not msgs:
            if self.offline_log is not None:
                self.offline_log.flush_if_due()  # bounded delay on a quiet topic too
            return 0
        updates = []
        to_log = []  # every version consumed, except those a previous run already logged
        offsets: dict = {}
        for m in msgs:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", m.error())
                continue
            offsets[(m.topic(), m.partition())] = m.offset() + 1
            try:
                update = decode_update(m.value())
            except Exception:  # a producer bug, not retryable: count it and move on
                self.stats["undecodable"] += 1
                log.error("undecodable feature update at %s/%d@%d", m.topic(), m.partition(), m.offset())
                continue
            updates.append(update)
            if m.offset() >= self._log_from.get(f"{m.topic()}:{m.partition()}", 0):
                to_log.append(update)
        batch = latest_per_entity(updates)
        positions = {f"{t}:{p}": o for (t, p), o in offsets.items()}

        def write():
            written_at = int(time.time() * 1000)  # per attempt: a retried batch is stamped when it lands
            started = time.perf_counter()
            n = self.writer.write(batch, positions, self.name, written_at=written_at)
            self.write_latency.observe(time.perf_counter() - started)
            return n, written_at

        written, written_at = self._with_retry(write, len(batch))
        if self.offline_log is not None:
            self.offline_log.append(to_log, written_at, positions)
        self.stats["consumed"] += len(msgs)
        self.stats["written"] += written
        for u in batch:
            if u.as_of > self.newest_as_of.get(u.group, 0):
                self.newest_as_of[u.group] = u.as_of
        for (_, p), o in offsets.items():
            self.positions[p] = o
        self._note_high_watermarks()
        self.stats["stale"] += len(batch) - written
        self.stats["coerced_values"] = self.writer.coerced_values
        if self.on_write is not None:
            self.on_write(batch)
        return len(msgs)

    def _with_retry(self, call, n_updates: int = 0):
        def note(e, delay):
            self.stats["redis_retries"] += 1
            log.warning("redis unavailable (%s); retrying %d updates in %.2fs", e, n_updates, delay)
        return retry_with_backoff(call, REDIS_UNAVAILABLE, self.backoff_max, note)

    def lag(self) -> dict[int, int]:
        """Messages behind the partition's end, per partition, from the high watermarks the fetches
        carried (noted by the consumer's own thread: the client is not thread-safe, and a call from
        a scrape thread blocks behind consume()). On tansu the end offset is wrong when batches hold
        several records (stack notes), so there it is approximate; freshness is the reliable signal."""
        return {p: max(0, high - self.positions.get(p, 0)) for p, high in dict(self.high_watermarks).items()}

    def _note_high_watermarks(self) -> None:
        now = time.monotonic()
        if now - self._high_noted_at < 1.0:
            return
        self._high_noted_at = now
        for p in list(self.positions):
            try:
                _, high = self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)
            except Exception:
                continue
            if high >= 0:
                self.high_watermarks[p] = high

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step()

    def drain(self, idle_ms: int = 3000, stop: threading.Event | None = None) -> None:
        """Consumes until nothing has arrived for `idle_ms` (used after a bounded job finished)."""
        drain_until_idle(self.step, idle_ms, stop)

    def close(self) -> None:
        if self.offline_log is not None:
            self.offline_log.close()  # commits the buffered rows
        self.consumer.close()


def drain_until_idle(step, idle_ms: int, stop: threading.Event | None = None) -> None:
    """Calls `step()` (messages consumed) until it has returned 0 for `idle_ms`."""
    idle_since = time.monotonic()
    while stop is None or not stop.is_set():
        if step():
            idle_since = time.monotonic()
        elif (time.monotonic() - idle_since) * 1000 >= idle_ms:
            return


# what a retry can outlast: Redis down or loading, and a cluster between topologies
REDIS_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError,
                     redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError)


def retry_with_backoff(call, errors: tuple, backoff_max_s: float, on_retry):
    """Calls `call()` until it does not raise one of `errors`, sleeping 50 ms, 100 ms, ... up to
    `backoff_max_s` between tries (`on_retry(error, delay)` before each sleep)."""
    delay = 0.05
    while True:
        try:
            return call()
        except errors as e:
            on_retry(e, delay)
            time.sleep(delay)
            delay = min(delay * 2, backoff_max_s)
