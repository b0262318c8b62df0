"""The durable broker option (stack.broker_storage: s3): tansu on its s3:// storage in a local
SeaweedFS, started with the same code as `fyp up`. A broker restart, orderly (SIGTERM) or a crash
(SIGKILL), loses nothing: topics, every record exactly once in its partition's order, offsets
that continue; the feature writer carries on across it; and so does a streaming job: a broker
crash in the middle of its stream leaves its features equal to the oracle."""
from __future__ import annotations

import os
import random
import signal
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from stack import artifacts, local, daemons
from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.integration


def free_port_block(n: int) -> int:
    """The first of n consecutive free loopback ports."""
    ports = daemons.free_port_range()  # below the kernel's ephemeral ports, as free_port's
    for _ in range(200):
        base = random.randrange(ports.start, ports.stop - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports")


@dataclass
class DurableBroker:
    root: Path
    seaweedfs: daemons.Service
    tansu: daemons.Service

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.tansu.port}"

    def stop_broker(self, sig: int) -> None:
        """SIGTERM: the orderly stop of `fyp down`. SIGKILL: a crash."""
        if sig == signal.SIGTERM:
            assert daemons.stop(self.tansu, self.root)
            return
        pid = int(self.tansu.pid_file(self.root).read_text())
        os.kill(pid, signal.SIGKILL)
        assert daemons.wait_gone(pid, self.tansu.port, 10)
        self.tansu.pid_file(self.root).unlink()

    def start_broker(self) -> None:
        daemons.start(self.tansu, self.root)


@pytest.fixture(scope="module")
def durable_broker(tmp_path_factory):
    """SeaweedFS + tansu(s3) on free loopback ports, data in a temporary folder."""
    tansu = artifacts.ensure_all(ARTIFACTS)["tansu"]
    weed = artifacts.ensure_seaweedfs(ARTIFACTS)
    root = tmp_path_factory.mktemp("durable")
    data = root / "seaweedfs"
    creds = local.s3_credentials(data, env={})  # generated, as for a setup without AWS_* variables
    s3_port = daemons.free_port()
    internal = free_port_block(daemons.SEAWEEDFS_INTERNAL_PORTS)
    svcs = local.durable_services(tansu, weed, daemons.free_port(), s3_port, internal, data, "fyp-test", creds)
    t0 = time.monotonic()
    try:
        for svc in svcs:
            daemons.start(svc, root)
        print(f"seaweedfs + tansu(s3) ready in {time.monotonic() - t0:.1f}s")
        yield DurableBroker(root, *svcs)
    finally:
        for svc in reversed(svcs):
            daemons.stop(svc, root, timeout=3)  # the test data is thrown away: no need for weed's 15 s grace


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept referenced until the results are in
    for f in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        f.result(timeout=30)


def produce(bootstrap: str, topic: str, records: list, batches: int) -> dict:
    """Produces (key, value) records with acks=all in `batches` flushes. Returns
    {(partition, offset): (key, value)} from the delivery reports."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "max.in.flight.requests.per.connection": 1})  # keeps each partition's order on a retry
    delivered, errors = {}, []

    def on_delivery(err, msg):
        if err:
            errors.append(err)
        else:
            delivered[(msg.partition(), msg.offset())] = (msg.key(), msg.value())

    size = -(-len(records) // batches)
    for b in range(0, len(records), size):
        for key, value in records[b:b + size]:
            p.produce(topic, value, key, on_delivery=on_delivery)
            p.poll(0)
        assert p.flush(30) == 0
    assert not errors, errors[:5]
    assert len(delivered) == len(records)
    return delivered


def consume_all(bootstrap: str, topic: str, expected: int, partitions: int, timeout: float = 30.0) -> dict:
    """Everything in the topic from the beginning: {partition: [(offset, key, value), ...]} in the
    order received. Reads until `expected` records arrived, then 1 s more for any extra."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "durable-check", "enable.auto.commit": False,
                  "enable.partition.eof": False})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got: dict = {p: [] for p in range(partitions)}
    n, deadline, extra_until = 0, time.monotonic() + timeout, None
    try:
        while time.monotonic() < deadline and (extra_until is None or time.monotonic() < extra_until):
            for m in c.consume(num_messages=5000, timeout=0.2):
                if m.error():
                    assert m.error().code() == KafkaError._TRANSPORT, m.error()
                    continue
                got[m.partition()].append((m.offset(), m.key(), m.value()))
                n += 1
            if n >= expected and extra_until is None:
                extra_until = time.monotonic() + 1.0
    finally:
        c.close()
    return got


def check_exactly_once_in_order(got: dict, delivered: dict) -> None:
    for p, rows in got.items():
        want = sorted((o, kv) for (pp, o), kv in delivered.items() if pp == p)
        assert [o for o, _, _ in rows] == [o for o, _ in want], f"partition {p}: offsets differ"
        assert [(k, v) for _, k, v in rows] == [kv for _, kv in want], f"partition {p}: records differ"
        assert [o for o, _, _ in rows] == list(range(len(rows))), f"partition {p}: offsets not 0..n-1"
        seqs: dict = {}
        for _, k, v in rows:  # per key, its records in the order they were produced
            seq = int(v.split(b":")[1])
            assert seq > seqs.get(k, -1), f"partition {p}: key {k!r} out of order"
            seqs[k] = seq
    assert sum(len(r) for r in got.values()) == len(delivered)


def keyed_records(n: int, start: int, keys: int = 500) -> list:
    return [(f"k{i % keys}".encode(), f"{i % keys}:{i}:".encode() + b"x" * 150) for i in range(start, start + n)]


def test_broker_restart_on_s3_storage_loses_nothing(durable_broker):
    b, topic, n = durable_broker, "durable-events", 20_000
    create_topic(b.bootstrap, topic, 2)
    t0 = time.monotonic()
    delivered = produce(b.bootstrap, topic, keyed_records(n, 0), batches=5)
    print(f"produced {n} records (acks=all, 5 flushes) in {time.monotonic() - t0:.2f}s")
    total = n
    for sig in (signal.SIGTERM, signal.SIGKILL):
        t0 = time.monotonic()
        b.stop_broker(sig)
        b.start_broker()
        print(f"{signal.Signals(sig).name}: broker back in {time.monotonic() - t0:.2f}s")
        meta = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
        assert topic in meta.topics and len(meta.topics[topic].partitions) == 2
        t0 = time.monotonic()
        got = consume_all(b.bootstrap, topic, total, 2)
        print(f"read back {sum(map(len, got.values()))} records in {time.monotonic() - t0:.2f}s")
        check_exactly_once_in_order(got, delivered)
        # produce after the restart: offsets continue where the partitions ended
        ends = {p: len(rows) for p, rows in got.items()}
        more = produce(b.bootstrap, topic, keyed_records(5_000, total), batches=2)
        for p in ends:
            new = sorted(o for (pp, o) in more if pp == p)
            assert new and new[0] == ends[p] and new == list(range(ends[p], ends[p] + len(new)))
        delivered.update(more)
        total += 5_000
    check_exactly_once_in_order(consume_all(b.bootstrap, topic, total, 2), delivered)


def test_the_pipelines_producers_lose_nothing_when_the_broker_dies_mid_stream(durable_broker):
    """The delivery settings of every producer of the pipeline (PRODUCER_DELIVERY; the jobs' sinks
    get the same) across SIGKILLs of the broker while records are in flight: every record is in
    the topic, each partition's in the order sent; a batch the broker stored but did not
    acknowledge may be there twice. An idempotent producer fails this: tansu's S3 storage stores
    the producer's sequence before the batch, and the resend of a batch it never stored is
    answered "duplicate", which the client reports as delivered (with idempotence on, one of two
    runs of this test failed at its first kill)."""
    from settings.kafka_clients import PRODUCER_DELIVERY

    b, n, per_second, restart_at = durable_broker, 8_000, 1_000, 4_000
    duplicates = 0
    # killed 3.27-3.55 s into the stream, started again at the 4000th record (0.45-0.73 s away)
    for kill_at in (3.27, 3.41, 3.55):
        topic = f"mid-stream-kill-{kill_at}"
        create_topic(b.bootstrap, topic, 2)
        values = [f"{i}:".encode() + b"x" * 200 for i in range(n)]
        errors: list = []
        producer = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5, **PRODUCER_DELIVERY})
        killer = threading.Timer(kill_at, b.stop_broker, args=(signal.SIGKILL,))
        t0 = time.monotonic()
        killer.start()
        for i, value in enumerate(values):
            if i == restart_at:
                killer.join()
                b.start_broker()
            producer.produce(topic, value, partition=i % 2, on_delivery=lambda err, _m: err and errors.append(err))
            if i % 20 == 0:
                producer.poll(0)
                time.sleep(max(0.0, i / per_second - (time.monotonic() - t0)))
        assert producer.flush(120) == 0 and not errors, errors[:3]
        got = consume_all(b.bootstrap, topic, n, 2)
        for p, rows in got.items():
            sent = values[p::2]
            first_seen = list(dict.fromkeys(v for _, _, v in rows))
            missing = set(sent) - set(first_seen)
            assert not missing, f"kill at {kill_at} s, partition {p}: {len(missing)} acknowledged records not in the topic"
            assert first_seen == sent, f"kill at {kill_at} s, partition {p}: records out of the order sent"
            duplicates += len(rows) - len(first_seen)
    print(f"3 x {n} records, a broker kill in each: none lost, {duplicates} stored twice")


def test_feature_writer_carries_on_across_a_broker_crash(durable_broker, stack):
    """Feature updates produced before, during and after a broker crash all land in Redis: the
    writer (and the producer) retry while the broker is away; nothing it had read is lost."""
    from featurestore.reader import FeatureReader
    from featurestore.updates import FeatureUpdate, encode_update
    from fyp.runner import make_writer
    from schemas.features import VIDEO_ENGAGEMENT
    from operators.feature_groups import groups_for

    b = durable_broker
    cfg, _ = stack.config("durable-writer", **{"kafka.bootstrap": b.bootstrap, "offline.enabled": False})
    groups = groups_for(cfg)
    g = groups[VIDEO_ENGAGEMENT]
    writer = make_writer(cfg)
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    thread.start()
    producer = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5})
    entities = [f"v{i}" for i in range(300)]
    reader = FeatureReader(stack.redis(cfg), groups)

    def send(round_: int):
        for e in entities:
            values = [round_ if f.dtype == "int" else round_ / 7 for f in g.features]
            producer.produce(cfg.kafka.topics.feature_updates,
                             encode_update(FeatureUpdate(g.name, e, 1000 * round_, round_, values)), key=e.encode())
        producer.poll(0)

    def wait_for_round(round_: int, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = reader.get("video", entities, ["views_1h"])
            if all(r.values["views_1h"] == round_ for r in rows):
                return
            time.sleep(0.2)
        behind = [e for e, r in zip(entities, rows) if r.values["views_1h"] != round_]
        raise AssertionError(f"{len(behind)} entities not at round {round_}, e.g. {behind[:5]}")

    try:
        for r in (1, 2, 3):
            send(r)
        assert producer.flush(30) == 0
        wait_for_round(3)
        b.stop_broker(signal.SIGKILL)
        for r in (4, 5):  # queued in the producer while the broker is away
            send(r)
        time.sleep(2)  # the writer polls a dead broker meanwhile
        assert thread.is_alive()
        b.start_broker()
        assert producer.flush(60) == 0
        wait_for_round(5)
        for r in (6, 7):
            send(r)
        assert producer.flush(30) == 0
        wait_for_round(7)
        assert thread.is_alive() and writer.stats["undecodable"] == 0
    finally:
        stop.set()
        thread.join(timeout=10)
        writer.close()


@pytest.mark.long
def test_streaming_job_carries_on_across_a_broker_crash(durable_broker, stack, tmp_path):
    """`fyp run engagement` (job and writer) reading a stream when the broker is killed (SIGKILL)
    and started again on its s3 storage: the job's source, its sinks and the writer reconnect, and
    the features end equal to the oracle over the records the topic holds: nothing lost, nothing
    counted twice. The producer sends at least once: a batch the broker stored but did not
    acknowledge before it died is in the topic twice, and the job rightly counts it twice."""
    from tests import oracle
    from tests.conftest import kill_group, start_fyp, wait_for_no_problems
    from tests.integration.engagement_support import (SENTINEL_PREFIX, expected_features, final_as_of,
                                                      paced_produce, redis_features, send_sentinels, sentinel_time,
                                                      topic_records, traffic_for)

    b = durable_broker
    # as in the restart tests: a 2 h lateness keeps a compressed replay that stalls and resumes
    # about the broker, not about which events the watermark judges late
    cfg, path = stack.config("durable-job", **{"kafka.bootstrap": b.bootstrap, "engagement.allowed_lateness": "2h"})
    traffic = traffic_for(cfg, seed=47, start_ms=1_793_000_000_000, hours=6, rate=1.5, late_share=0.0,
                          malformed_share=0.002, videos=150)
    sentinel = sentinel_time(cfg, max(e["event_time"] for e in traffic.events if e))
    client = stack.redis(cfg)

    done, gate, delivery = threading.Event(), threading.Event(), {}
    producer = threading.Thread(target=paced_produce, daemon=True,
                                args=(b.bootstrap, cfg.kafka.topics.engagement, traffic.payloads, 1000, gate, done),
                                kwargs={"report": delivery})
    job = start_fyp(path, "run", "engagement", "--fresh", log=tmp_path / "run.log")
    try:
        producer.start()
        deadline = time.monotonic() + 180
        while len(redis_features(client, cfg)) < 20:  # the job is well into the stream
            assert time.monotonic() < deadline and job.poll() is None, "the job wrote no features"
            time.sleep(0.5)
        assert not done.is_set(), "the whole stream was sent before the crash: not mid-stream"
        b.stop_broker(signal.SIGKILL)
        crashed = time.monotonic()
        time.sleep(5)  # the job's consumers and producers, and the writer, meet a dead broker
        assert job.poll() is None, "the job exited while the broker was away"
        b.start_broker()
        gate.set()
        producer.join(timeout=180)
        assert done.is_set(), "the producer did not finish"
        assert delivery["undelivered"] == 0, f"the broker took not every event back after its restart: {delivery}"
        held = Counter(v for v, _ in topic_records(b.bootstrap, cfg.kafka.topics.engagement,
                                                   at_least=len(traffic.payloads)))
        sent = Counter(traffic.payloads)
        lost = sent - held
        assert not lost, f"the topic lacks {sum(lost.values())} events the producer was told were delivered"
        # the oracle over the topic's records, each duplicate beside its original as in its partition
        extra, counted = held - sent, []
        for p in traffic.payloads:
            counted += [p] * (1 + extra[p])
            extra[p] = 0
        expected, _ = expected_features(cfg, counted, final_as_of(cfg, sentinel))
        send_sentinels(b.bootstrap, cfg.kafka.topics.engagement, sentinel)
        took = wait_for_no_problems(lambda: oracle.compare(expected, redis_features(client, cfg)),
                                    timeout=300, what="features equal to the oracle after a broker crash")
        delivery["duplicated"] = sum((held - sent).values())
        print(f"equal to the oracle {took:.1f}s after the last event, {time.monotonic() - crashed:.1f}s after "
              f"the crash ({len(expected)} videos, {len(traffic.payloads)} events; deliveries {delivery})")
        assert job.poll() is None
    finally:
        gate.set()
        kill_group(job, signal.SIGTERM)
