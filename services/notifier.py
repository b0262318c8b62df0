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

import orjson
import redis
from confluent_kafka import Producer

from featurestore import layout
from services.topic_service import JsonTopicService, KafkaDeliveryError, published_keys
from settings.kafka_clients import PRODUCER_DELIVERY

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


class MilestoneNotifier(JsonTopicService):
    counted = "crossings"

    def __init__(self, kafka: dict, crossings_topic: str, notifications_topic: str, client: redis.Redis,
                 name: str, ttl_ms: int, batch_max: int = 500, poll_timeout_ms: int = 100,
                 backoff_max_ms: int = 5000):
        # kafka: connection settings (settings.kafka_clients.client_config), extended per client below
        self.out_topic, self.ttl_ms = notifications_topic, ttl_ms
        self.claim = client.register_script(CLAIM_SCRIPT)
        self._stats = {"notified": 0, "duplicates": 0, "reconciled": 0}
        self.producer = Producer({**kafka, **PRODUCER_DELIVERY, "linger.ms": 5})
        super().__init__(kafka, crossings_topic, name, client, batch_max, poll_timeout_ms, backoff_max_ms)

    def handle(self, crossings: list[dict]) -> None:
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
            published = published_keys(self.kafka, self.out_topic, f"{self.name}-scan")
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

    def close(self) -> None:
        self.producer.flush(10)
        super().close()
