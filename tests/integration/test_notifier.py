"""The notifier's crash windows, on real tansu and Redis (no Flink): a run that died after
claiming a milestone but before marking it notified leaves a pending claim; the next run publishes
the notification only if it is not on the topic already."""
from __future__ import annotations

import orjson
import pytest
from confluent_kafka import Producer

from featurestore import layout
from settings.kafka_clients import client_config
from services.notifier import MilestoneNotifier, notification
from tests.integration.engagement_support import topic_records
from services.partition_reader import read_to_end

pytestmark = pytest.mark.integration


def _crossing(vid: str, m: int) -> dict:
    return {"id": f"{vid}:{m}", "video_id": vid, "creator_id": "c1", "milestone": m, "crossed_at": 1000 + m}


def test_pending_claims_are_reconciled_against_the_topic(stack):
    cfg, _ = stack.config("notifier")
    t = cfg.kafka.topics
    client = stack.redis(cfg)
    sent_before_crash, lost_in_crash, fresh = _crossing("va", 10), _crossing("vb", 10), _crossing("vc", 10)
    for c in (sent_before_crash, lost_in_crash):  # both claimed, neither marked
        client.hset(layout.milestone_key(c["video_id"]), "10",
                    orjson.dumps({"crossed_at": c["crossed_at"], "creator_id": "c1", "notified": False}))
    p = Producer({"bootstrap.servers": stack.bootstrap})
    p.produce(t.notifications, orjson.dumps(notification(sent_before_crash)), key=sent_before_crash["id"].encode())
    for c in (sent_before_crash, lost_in_crash, fresh, fresh):  # the job re-emits after its restart
        p.produce(t.milestone_crossings, orjson.dumps(c), key=c["video_id"].encode())
    p.flush(30)

    n = MilestoneNotifier(client_config(cfg.kafka), t.milestone_crossings, t.notifications, client, "nt", 600_000)
    try:
        read_to_end(n)
    finally:
        n.close()
    ids = [orjson.loads(v)["id"] for v, _ in topic_records(stack.bootstrap, t.notifications)]
    assert sorted(ids) == ["va:10", "vb:10", "vc:10"]
    assert n.stats["reconciled"] == 1 and n.stats["duplicates"] == 1 and n.stats["notified"] == 2
    for vid in ("va", "vb", "vc"):
        assert orjson.loads(client.hget(layout.milestone_key(vid), "10"))["notified"] is True
