"""A backfill ends when its writer has read everything the job wrote (end markers on every
partition), not when the topic went quiet; stored read positions belong to one incarnation of the
topic, so a re-created topic is read from its beginning and reported, never skipped."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import time

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from featurestore import layout
from featurestore.updates import FeatureUpdate, encode_update
from fyp.generator.output import write_jsonl
from fyp.runner import make_writer, writer_group
from schemas.features import VIDEO_ENGAGEMENT
from operators.feature_groups import groups_for
from services.partition_reader import read_to_end
from tests import oracle
from tests.conftest import fyp_command, wait_for
from tests.integration.engagement_support import expected_features, redis_features, traffic_for

pytestmark = pytest.mark.integration

START_MS = 1_791_000_000_000
STALL_S = 8  # how long the writer's reads stall: longer than the 3 s quiet spell that used to end a backfill


def test_backfill_writes_every_update_through_stalled_redis_and_broker(stack, own_broker, own_redis, tmp_path):
    """Redis hangs from the writer's first batch until the job has finished and marked its end;
    then the broker hangs for STALL_S while Redis comes back. The writer is behind all along, its
    reads return nothing for seconds, and the backfill still ends with every feature equal to the
    oracle, exit 0."""
    cfg, path = stack.config("stall", **{"kafka.bootstrap": own_broker["bootstrap"],
                                         "redis.url": f"redis://127.0.0.1:{own_redis['port']}/0",
                                         # little fetched ahead: while Redis hangs, most updates stay
                                         # in the broker, so the broker's stall stalls the reads
                                         "featurestore.writer.fetch_ahead_kb": 128})
    traffic = traffic_for(cfg, seed=5, start_ms=START_MS, hours=4, rate=2)
    events = tmp_path / "events.jsonl"
    write_jsonl(events, traffic.payloads)
    client = stack.redis(cfg)
    out = tmp_path / "backfill.log"
    proc = subprocess.Popen(fyp_command(path, "backfill", "engagement", "--input", str(events)),
                            stdout=open(out, "wb"), stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: client.exists(layout.writer_offsets_key(writer_group(cfg))), 240, "the writer's first batch")
        os.kill(own_redis["pid"], signal.SIGSTOP)
        assert b"services reading to the end markers" not in out.read_bytes(), "the job ended before Redis hung"
        wait_for(lambda: b"services reading to the end markers" in out.read_bytes(), 300, "the job's end marked")
        os.kill(own_broker["pid"], signal.SIGSTOP)
        os.kill(own_redis["pid"], signal.SIGCONT)
        time.sleep(STALL_S)  # the stall itself, not a wait for something
        os.kill(own_broker["pid"], signal.SIGCONT)
        assert proc.wait(timeout=300) == 0, out.read_text()[-3000:]
    finally:
        for pid in (own_redis["pid"], own_broker["pid"]):
            os.kill(pid, signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
    stats = orjson.loads(out.read_text().strip().splitlines()[-1])
    print("writer:", stats)
    expected, _ = expected_features(cfg, traffic.payloads, stats["as_of"])
    problems = oracle.compare(expected, redis_features(client, cfg))
    assert not problems, "\n".join(problems[:20])
    # the job's two subtasks write their batches to both partitions (each also holds one end marker)
    reader = Consumer({"bootstrap.servers": own_broker["bootstrap"], "group.id": "partition-sizes"})
    try:
        topic = cfg.kafka.topics.feature_updates
        sizes = [high - low for low, high in (reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                                              for p in range(cfg.kafka.partitions))]
    finally:
        reader.close()
    assert cfg.kafka.partitions == 2 and all(n > 10 for n in sizes), sizes


def _updates(group, prefix: str, n: int) -> list[FeatureUpdate]:
    zeros = [0 if f.dtype == "int" else 0.0 for f in group.features]
    return [FeatureUpdate(group.name, f"{prefix}{i}", 1000 + i, 1, zeros) for i in range(n)]


def _produce(bootstrap: str, topic: str, updates) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for u in updates:
        p.produce(topic, encode_update(u), key=u.entity_id.encode())
    assert p.flush(30) == 0


def _write_to_end(cfg) -> dict:
    """The config's feature writer over everything now in its topic; returns its stats."""
    writer = make_writer(cfg)
    try:
        read_to_end(writer)
        return writer.stats
    finally:
        writer.close()


def _stored_ids(client, prefix: str) -> set:
    keys = client.scan_iter(match=layout.entity_key(VIDEO_ENGAGEMENT, f"{prefix}*"), count=1000)
    return {k.decode().split("{", 1)[1][:-1] for k in keys}


def _updates_in_topic(stack, name: str, prefix: str, n: int):
    """A config whose feature topic holds n updates of entities `prefix`0.. (cfg, topic, group, Redis)."""
    cfg, _ = stack.config(name)
    topic = cfg.kafka.topics.feature_updates
    group = groups_for(cfg)[VIDEO_ENGAGEMENT]
    _produce(stack.bootstrap, topic, _updates(group, prefix, n))
    return cfg, topic, group, stack.redis(cfg)


def test_a_recreated_topic_is_read_from_its_beginning_and_reported(stack, caplog):
    cfg, topic, group, client = _updates_in_topic(stack, "recreate", "old-", 600)
    _write_to_end(cfg)
    assert len(_stored_ids(client, "old-")) == 600
    old_positions = client.hgetall(layout.writer_offsets_key(writer_group(cfg)))
    assert sum(int(v) for v in old_positions.values()) == 600 + 2  # and an end marker per partition

    admin = AdminClient({"bootstrap.servers": stack.bootstrap})
    admin.delete_topics([topic])[topic].result()
    wait_for(lambda: topic not in admin.list_topics(timeout=10).topics, 30, "the topic deleted")
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result()
    _produce(stack.bootstrap, topic, _updates(group, "new-", 100))  # fewer than the old positions
    caplog.set_level(logging.WARNING)
    stats = _write_to_end(cfg)
    assert _stored_ids(client, "new-") == {f"new-{i}" for i in range(100)}
    assert stats["position_resets"] == 2 and stats["consumed"] == 100
    said = [r.getMessage() for r in caplog.records if "another incarnation" in r.getMessage()]
    assert said and topic in said[0], caplog.text[-2000:]
    positions = client.hgetall(layout.writer_offsets_key(writer_group(cfg)))
    assert not set(positions) & set(old_positions)  # the old incarnation's positions are gone


def test_a_position_beyond_the_partition_end_is_reported_and_read_from_the_beginning(stack, caplog):
    cfg, _, _, client = _updates_in_topic(stack, "beyond", "v-", 50)
    writer = make_writer(cfg)
    reader = writer.reader
    # positions of this very topic incarnation, far past its end (a broker that lost records)
    client.hset(layout.writer_offsets_key(writer_group(cfg)), mapping={reader.field(p): 10_000 for p in reader.partitions})
    writer.close()
    caplog.set_level(logging.WARNING)
    stats = _write_to_end(cfg)
    assert _stored_ids(client, "v-") == {f"v-{i}" for i in range(50)}
    assert stats["position_resets"] == 2
    assert "beyond the partition's end" in caplog.text
