"""Versioned writes, the reader, and the writer service through a Redis outage, on real Redis and
a real broker."""
from __future__ import annotations

import threading
import time

import pytest
import redis as redis_lib
from confluent_kafka import Producer

from featurestore import layout
from services.feature_writer import FeatureUpdateConsumer
from featurestore.reader import FeatureReader
from featurestore.updates import FeatureUpdate, encode_update
from featurestore.writer import FeatureWriter
from settings.kafka_clients import client_config
from stack import daemons
from schemas.features import VIDEO_ENGAGEMENT
from operators.feature_groups import groups_for

pytestmark = pytest.mark.integration


def _values(group, seed: int) -> list:
    return [seed if f.dtype == "int" else seed / 7 for f in group.features]


def test_versioned_write_never_goes_back_and_reader_types_values(stack):
    cfg, _ = stack.config("store")
    groups = groups_for(cfg)
    g = groups[VIDEO_ENGAGEMENT]
    client = stack.redis(cfg)
    w = FeatureWriter(client, groups, {VIDEO_ENGAGEMENT: 60_000})
    assert w.write([FeatureUpdate(g.name, "v1", 2000, 10, _values(g, 3))]) == 1
    # older as-of, equal version (a replay), and fewer events at the same as-of: all ignored
    assert w.write([FeatureUpdate(g.name, "v1", 1000, 99, _values(g, 1)),
                    FeatureUpdate(g.name, "v1", 2000, 10, _values(g, 1)),
                    FeatureUpdate(g.name, "v1", 2000, 9, _values(g, 1))]) == 0
    # more events at the same as-of, then a later as-of: applied
    assert w.write([FeatureUpdate(g.name, "v1", 2000, 11, _values(g, 4))]) == 1
    assert w.write([FeatureUpdate(g.name, "v1", 3000, 1, _values(g, 5))]) == 1
    row, missing = FeatureReader(client, groups).get("video", ["v1", "nope"], ["views_1h", "completion_rate_24h"])
    assert row.values == {"views_1h": 5, "completion_rate_24h": 5 / 7} and row.as_of[VIDEO_ENGAGEMENT] == 3000
    assert isinstance(row.values["views_1h"], int) and isinstance(row.values["completion_rate_24h"], float)
    assert not missing.found and missing.values["views_1h"] is None
    ttl = client.pttl(layout.entity_key(g.name, "v1"))
    assert 0 < ttl <= 60_000
    with pytest.raises(KeyError):
        FeatureReader(client, groups).get("video", ["v1"], ["no_such_feature"])
    # a value not of its type is stored as null (read as missing), counted; the rest is stored
    bad = _values(g, 6)
    bad[g.names.index("views_1h")] = 2.5
    assert w.write([FeatureUpdate(g.name, "v1", 4000, 1, bad)]) == 1 and w.coerced_values == 1
    (row,) = FeatureReader(client, groups).get("video", ["v1"], ["views_1h", "likes_1h"])
    assert row.values == {"views_1h": None, "likes_1h": 6} and row.as_of[VIDEO_ENGAGEMENT] == 4000


def test_a_batch_of_many_keys_is_written_per_key_in_script_calls_of_several(stack):
    """One script call writes up to layout.WRITE_KEYS_PER_CALL keys: each key of a batch that spans
    several calls is judged by its own version and takes its own group's TTL."""
    cfg, _ = stack.config("store-batch")
    groups = groups_for(cfg)
    eg, sg = groups[VIDEO_ENGAGEMENT], groups["video_spikes"]
    client = stack.redis(cfg)
    w = FeatureWriter(client, groups, {VIDEO_ENGAGEMENT: 60_000, "video_spikes": 5_000})
    n = 2 * layout.WRITE_KEYS_PER_CALL + 7
    assert w.write([FeatureUpdate(eg.name, f"b{i}", 2000, 5, _values(eg, i)) for i in range(0, n, 2)]) == (n + 1) // 2
    spikes = [0.5, "normal", 0, 1.0, 1.0, 3, 2.5]
    batch = [FeatureUpdate(eg.name, f"b{i}", 2000 + (i % 4) - 1, 5, _values(eg, 1000 + i)) for i in range(n)]
    batch += [FeatureUpdate(sg.name, f"b{i}", 2000, 1, spikes) for i in range(3)]
    # a key with no value is written whatever its version; a stored one only by a newer version
    newer = [i for i in range(n) if i % 2 == 1 or i % 4 == 2]
    assert w.write(batch) == len(newer) + 3
    rows = FeatureReader(client, groups).get("video", [f"b{i}" for i in range(n)], ["views_1h"])
    got = {r.entity_id: r.values["views_1h"] for r in rows}
    for i in range(n):
        assert got[f"b{i}"] == (1000 + i if i in newer else i), i
    assert 0 < client.pttl(layout.entity_key(sg.name, "b0")) <= 5_000
    assert 5_000 < client.pttl(layout.entity_key(eg.name, "b1")) <= 60_000


def test_positions_are_stored_only_after_every_key_of_the_batch_is_acknowledged(stack):
    """A script call that Redis refuses (here a key of the layout holding a hash) fails the batch:
    the positions stay where they were, so a restarted writer reads the batch again; the keys of
    the other calls are written (harmless, versioned) and the connection stays usable."""
    cfg, _ = stack.config("store-refused")
    groups = groups_for(cfg)
    g = groups[VIDEO_ENGAGEMENT]
    client = stack.redis(cfg)
    w = FeatureWriter(client, groups, {VIDEO_ENGAGEMENT: 60_000})
    client.hset(layout.entity_key(g.name, "r5"), "not", "a feature row")
    n = 3 * layout.WRITE_KEYS_PER_CALL
    batch = [FeatureUpdate(g.name, f"r{i}", 2000, 1, _values(g, i)) for i in range(n)]
    assert w.write([], {"t@x:0": 10}, writer="refused") == 0
    with pytest.raises(redis_lib.ResponseError, match="WRONGTYPE"):
        w.write(batch, {"t@x:0": 99}, writer="refused")
    assert w.read_offsets("refused") == {"t@x:0": 10}
    # the calls after the refused one ran: their keys are stored
    rows = FeatureReader(client, groups).get("video", [f"r{i}" for i in range(n - 3, n)], ["views_1h"])
    assert [r.values["views_1h"] for r in rows] == [n - 3, n - 2, n - 1]
    client.delete(layout.entity_key(g.name, "r5"))
    # the refused call stopped at r5 (a script is not rolled back): from r5 to the call's end are new
    assert w.write(batch, {"t@x:0": 99}, writer="refused") == layout.WRITE_KEYS_PER_CALL - 5
    assert w.read_offsets("refused") == {"t@x:0": 99}


def test_writer_service_survives_a_redis_outage_without_losing_updates(stack, tmp_path):
    """A separate Redis is stopped while updates flow; the writer retries, the updates wait in
    Kafka, and after Redis returns every entity ends at its newest version."""
    cfg, _ = stack.config("outage")
    groups = groups_for(cfg)
    g = groups[VIDEO_ENGAGEMENT]
    port = daemons.free_port()
    (tmp_path / "redis").mkdir()
    svc = daemons.redis_service(port, tmp_path / "redis")
    daemons.start(svc, tmp_path)
    client = redis_lib.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
    writer = FeatureWriter(client, groups, {VIDEO_ENGAGEMENT: 600_000})
    consumer = FeatureUpdateConsumer(client_config(cfg.kafka), cfg.kafka.topics.feature_updates, "outage-writer", writer,
                                     batch_max=200, backoff_max_ms=500)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    producer = Producer({"bootstrap.servers": stack.bootstrap, "linger.ms": 5})
    entities = [f"v{i}" for i in range(200)]

    def send(round_: int):
        for e in entities:
            producer.produce(cfg.kafka.topics.feature_updates,
                             encode_update(FeatureUpdate(g.name, e, 1000 * round_, round_, _values(g, round_))),
                             key=e.encode())
        producer.flush(30)

    try:
        for r in range(1, 4):
            send(r)
        time.sleep(2)
        daemons.stop(svc, tmp_path)  # Redis goes away (its data with it: --save "")
        for r in range(4, 11):
            send(r)
        time.sleep(3)
        assert consumer.stats["redis_retries"] > 0
        daemons.start(svc, tmp_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = FeatureReader(client, groups).get("video", entities, ["views_1h"])
            if all(r.values["views_1h"] == 10 for r in rows):
                break
            time.sleep(0.5)
        assert all(r.values["views_1h"] == 10 and r.as_of[VIDEO_ENGAGEMENT] == 10_000 for r in rows)
    finally:
        stop.set()
        thread.join(timeout=10)
        consumer.close()
        daemons.stop(svc, tmp_path)
