"""The milestone notifier: milestone-crossings -> exactly one event per (video, milestone) on
notification-events, and the milestone recorded in Redis.

The job may emit a crossing more than once (at-least-once sink, restarts, replays of the same
input). Each crossing has a deterministic id, `<video>:<milestone>`, and is first claimed in Redis
(layout.milestone_key, a field written only if absent). Only the claimant publishes, then marks the
record notified. A claim found not yet notified is a run that died between claim and mark: the
notification topic is searched for the id, and the event is published only if it is not there
(the broker accepts transactions but does not honour them, so this is done by hand). Positions in
milestone-crossings are kept in Redis, after the marks.
"""
from __future__ import annotations

import logging
import threading
import time

import orjson
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from featurestore import layout
from services.partition_reader import PartitionReader, drain_to_end_markers
from services.retry import REDIS_UNAVAILABLE, retry_with_backoff

log = logging.getLogger("fyp.notifier")

# KEYS[1] = milestone hash; ARGV = field, record, ttl_ms. Returns the existing record, or nil when
# this call claimed the field.
CLAIM_SCRIPT = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then return cur end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return false
"""


def notification(c: dict) -> dict:
    """The event on notification-events."""
    return {"id": c["id"], "type": "creator_milestone", "video_id": c["video_id"],
            "creator_id": c["creator_id"] or None, "milestone": c["milestone"], "crossed_at": c["crossed_at"]}


class MilestoneNotifier:
    def __init__(self, kafka: dict, crossings_topic: str, notifications_topic: str, client: redis.Redis,
                 name: str, ttl_ms: int, batch_max: int = 500, poll_timeout_ms: int = 100,
                 backoff_max_ms: int = 5000):
        # kafka: connection settings (fyp.kafka_clients.client_config), extended per client below
        self.kafka, self.topic, self.out_topic = kafka, crossings_topic, notifications_topic
        self.client, self.name, self.ttl_ms = client, name, ttl_ms
        self.backoff_max = backoff_max_ms / 1000
        self.claim = client.register_script(CLAIM_SCRIPT)
        self._stats = {"crossings": 0, "notified": 0, "duplicates": 0, "reconciled": 0, "retries": 0}
        self.producer = Producer({**kafka, "acks": "all", "linger.ms": 5})
        self.reader = PartitionReader(kafka, crossings_topic, name, client, self._retry, batch_max, poll_timeout_ms)
        self.reader.assign(self.reader.stored)

    @property
    def stats(self) -> dict:
        return {**self._stats, **self.reader.stats}

    def _retry(self, call):
        def note(e, delay):
            self._stats["retries"] += 1
            log.warning("%s; retrying in %.2fs", e, delay)
        return retry_with_backoff(call, (*REDIS_UNAVAILABLE, KafkaDeliveryError), self.backoff_max, note)

    def step(self) -> int:
        msgs, positions = self.reader.poll()
        if not positions:
            return 0
        crossings = []
        for m in msgs:
            try:
                crossings.append(orjson.loads(m.value()))
            except Exception:
                log.error("undecodable crossing at %s/%d@%d", m.topic(), m.partition(), m.offset())
        self._stats["crossings"] += len(crossings)
        self._retry(lambda: self._handle(crossings))
        self._retry(lambda: self.client.hset(layout.writer_offsets_key(self.name), mapping=positions))
        return len(msgs)

    def _handle(self, crossings: list[dict]) -> None:
        to_send, unsure, seen = {}, {}, set()
        for c in crossings:
            if c["id"] in seen:  # the same crossing twice in one batch (a re-emission)
                self._stats["duplicates"] += 1
                continue
            seen.add(c["id"])
            record = orjson.dumps({"crossed_at": c["crossed_at"], "creator_id": c["creator_id"], "notified": False})
            cur = self.claim(keys=[layout.milestone_key(c["video_id"])], args=[str(c["milestone"]), record, self.ttl_ms])
            if cur is None:
                to_send[c["id"]] = c
            elif not orjson.loads(cur)["notified"]:
                unsure[c["id"]] = c
            else:
                self._stats["duplicates"] += 1
        if unsure:
            published = self._published_ids()
            for cid, c in unsure.items():
                if cid in published:
                    self._mark(c)
                    self._stats["reconciled"] += 1
                else:
                    to_send[cid] = c
        if not to_send:
            return
        failures = []
        for cid, c in to_send.items():
            self.producer.produce(self.out_topic, orjson.dumps(notification(c)), key=cid.encode(),
                                  on_delivery=lambda err, _m: err and failures.append(err))
        if self.producer.flush(30) or failures:
            raise KafkaDeliveryError(f"notifications not delivered: {failures[:3]}")
        for c in to_send.values():
            self._mark(c)
        self._stats["notified"] += len(to_send)

    def _mark(self, c: dict) -> None:
        self.client.hset(layout.milestone_key(c["video_id"]), str(c["milestone"]),
                         orjson.dumps({"crossed_at": c["crossed_at"], "creator_id": c["creator_id"], "notified": True}))

    def _published_ids(self, idle_s: float = 3.0) -> set[str]:
        """Ids already on the notification topic, read until nothing arrives for `idle_s` (the
        broker's end offsets count batches, not records, so they cannot say where the end is).
        Rare: only after a crash between claim and mark."""
        c = Consumer({**self.kafka, "group.id": f"{self.name}-scan",
                      "enable.auto.commit": False})
        meta = c.list_topics(self.out_topic, timeout=30)
        parts = sorted(meta.topics[self.out_topic].partitions)
        c.assign([TopicPartition(self.out_topic, p, OFFSET_BEGINNING) for p in parts])
        ids, last = set(), time.monotonic()
        while time.monotonic() - last < idle_s:
            for m in c.consume(1000, 0.2):
                if not m.error():
                    ids.add(m.key().decode() if m.key() else "")
                    last = time.monotonic()
        c.close()
        return ids

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step()

    def drain(self, run_id: str) -> None:
        """Consumes until past the end markers of `run_id` on every partition (after a bounded job
        finished)."""
        drain_to_end_markers(self.step, self.reader, run_id)

    def close(self) -> None:
        self.producer.flush(10)
        self.reader.close()


class KafkaDeliveryError(RuntimeError):
    pass
