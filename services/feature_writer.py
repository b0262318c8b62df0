"""The feature writer service: feature-updates topic -> Redis, losing nothing.

Reads a batch (services/partition_reader.py), keeps the newest version per key, writes it
(featurestore/writer.py), and once Redis has acknowledged every key stores the positions it
consumed up to. If Redis is down the same batch is retried with backoff (the pipeline slows down,
the updates wait in Kafka); if the process dies, it
resumes from the stored positions and the versioned write makes any repeat harmless. One writer
process per writer name: it reads every partition of the topic (partitions added later need a
restart).

With an offline log (featurestore/offline_log.py), each batch's updates are also appended to it
after the Redis write, and the writer resumes from the lower of its positions and the log's.
"""
from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import TopicPartition

from featurestore.latency import LatencyHistogram
from featurestore.offline_log import OfflineLog, resume_positions
from featurestore.updates import decode_updates, latest_per_entity
from featurestore.writer import FeatureWriter
from services.partition_reader import PartitionReader, drain_to_end_markers
from services.retry import REDIS_UNAVAILABLE, retry_with_backoff

log = logging.getLogger("fyp.writer")


class FeatureUpdateConsumer:
    def __init__(self, kafka: dict, topic: str, group_id: str, writer: FeatureWriter,
                 batch_max: int = 2000, poll_timeout_ms: int = 50, backoff_max_ms: int = 5000,
                 on_write=None, offline_log: OfflineLog | None = None, fetch_ahead_kb: int | None = None):
        self.topic = topic
        self.writer = writer
        self.offline_log = offline_log  # every consumed update is appended after its Redis write
        self._log_from: dict[str, int] = {}  # below these positions the log already has the rows
        self.backoff_max = backoff_max_ms / 1000
        self.on_write = on_write  # optional callback(list[FeatureUpdate]) after each stored batch
        self._stats = {"consumed": 0, "records": 0, "written": 0, "stale": 0, "undecodable": 0, "redis_retries": 0,
                       "coerced_values": 0}
        # for the metrics exporter (services/observability): Redis write latency, the newest as-of time
        # stored per feature group (freshness), and the next offset per partition (lag)
        self.write_latency = LatencyHistogram()
        self.newest_as_of: dict[str, int] = {}
        self.positions: dict[int, int] = {}
        self.high_watermarks: dict[int, int] = {}
        self._high_noted_at = 0.0
        self.name = group_id
        self.reader = PartitionReader(kafka, topic, group_id, writer.client, self._with_retry, batch_max,
                                      poll_timeout_ms, fetch_ahead_kb)
        stored = self.reader.stored
        if self.offline_log is not None:
            self._log_from = self.offline_log.positions
            stored = resume_positions(stored, self._log_from)
        self.reader.assign(stored)
        # per partition: the offset from which the log needs the rows
        self._log_from_offset = {p: self._log_from.get(self.reader.field(p), 0) for p in self.reader.partitions}

    @property
    def stats(self) -> dict:
        return {**self._stats, **self.reader.stats}

    @property
    def consumer(self):
        return self.reader.consumer

    def step(self) -> int:
        """One poll-write-commit cycle. Returns how many records it consumed (`consumed` in the
        stats counts updates: a record may hold many)."""
        msgs, positions = self.reader.poll()
        if not msgs and not positions:
            if self.offline_log is not None:
                self.offline_log.flush_if_due()  # bounded delay on a quiet topic too
            return 0
        updates = []
        to_log = []  # every version consumed, except those a previous run already logged
        for m in msgs:
            try:
                decoded = decode_updates(m.value())
            except Exception:  # a producer bug, not retryable: count it and move on
                self._stats["undecodable"] += 1
                log.error("undecodable feature update at %s/%d@%d", m.topic(), m.partition(), m.offset())
                continue
            updates += decoded
            if m.offset() >= self._log_from_offset.get(m.partition(), 0):
                to_log += decoded
        batch = latest_per_entity(updates)

        def write():
            written_at = int(time.time() * 1000)  # per attempt: a retried batch is stamped when it lands
            started = time.perf_counter()
            n = self.writer.write(batch, positions, self.name, written_at=written_at)
            self.write_latency.observe(time.perf_counter() - started)
            return n, written_at

        written, written_at = self._with_retry(write, len(batch))
        if self.offline_log is not None:
            self.offline_log.append(to_log, written_at, positions)
        self._stats["consumed"] += len(updates)
        self._stats["records"] += len(msgs)
        self._stats["written"] += written
        for u in batch:
            if u.as_of > self.newest_as_of.get(u.group, 0):
                self.newest_as_of[u.group] = u.as_of
        self.positions.update(self.reader.positions)
        self._note_high_watermarks()
        self._stats["stale"] += len(batch) - written
        self._stats["coerced_values"] = self.writer.coerced_values
        if self.on_write is not None:
            self.on_write(batch)
        return len(msgs)

    def _with_retry(self, call, n_updates: int = 0):
        def note(e, delay):
            self._stats["redis_retries"] += 1
            log.warning("redis unavailable (%s); retrying %d updates in %.2fs", e, n_updates, delay)
        return retry_with_backoff(call, REDIS_UNAVAILABLE, self.backoff_max, note)

    def lag(self) -> dict[int, int]:
        """Messages behind the partition's end, per partition, from the high watermarks the fetches
        carried (noted by the consumer's own thread: the client is not thread-safe, and a call from
        a scrape thread blocks behind consume()). Fetch responses carry the true end on tansu; its
        ListOffsets answer counts batches (stack notes), so it is not asked."""
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

    def drain(self, run_id: str) -> None:
        """Consumes until past the end markers of `run_id` on every partition (after a bounded job
        finished and services.partition_reader.send_end_markers marked its end)."""
        drain_to_end_markers(self.step, self.reader, run_id)

    def close(self) -> None:
        if self.offline_log is not None:
            self.offline_log.close()  # commits the buffered rows
        self.reader.close()
