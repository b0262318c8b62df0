"""Traffic, sentinels, oracle and Redis read-back for the engagement integration tests."""
from __future__ import annotations

import urllib.request

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from featurestore import layout
from featurestore.reader import FeatureReader
from fyp.generator.traffic import TrafficSpec, generate
from operators.sliding_tiles import TileGeometry
from schemas.features import VIDEO_ENGAGEMENT
from operators.feature_groups import groups_for
from services.partition_reader import is_end_marker
from settings.kafka_clients import PRODUCER_DELIVERY
from tests import oracle

SENTINEL_PREFIX = "zz-sentinel-"


def traffic_for(cfg, *, seed: int, start_ms: int, hours: float, rate: float, videos: int = 200,
                late_share: float = 0.004, straggler_share: float = 0.01, ooo_share: float = 0.05,
                malformed_share: float = 0.005):
    e = cfg.engagement
    spec = TrafficSpec(
        seed=seed, start_ms=start_ms, duration_ms=int(hours * 3_600_000), mean_rate=rate, videos=videos,
        users=5000, ooo_share=ooo_share, max_ooo_ms=e.max_out_of_orderness,
        straggler_share=straggler_share,
        straggler_ms=(e.max_out_of_orderness + 2 * e.emit_interval, e.allowed_lateness // 2),
        late_share=late_share,
        # far beyond the allowed lateness, so that which events are late does not depend on when
        # the watermark happened to be emitted
        late_ms=(e.allowed_lateness + 300_000, e.allowed_lateness + 900_000),
        malformed_share=malformed_share)
    return generate(spec)


def paced_produce(bootstrap, topic, payloads, per_second, gate, done, keyed: bool = False,
                  pause_share: float = 0.6, hurry=None, report: dict | None = None):
    """Sends at `per_second`; after `pause_share` of the stream waits for `gate` (set once a test
    killed its job), so a kill always lands mid-stream however slowly the job starts. Once the
    event `hurry` is set, sends the rest unpaced. Round-robin over two partitions, or keyed by
    video (one video's events keep their order). Records whose delivery failed are sent again
    once the stream is through, as an upstream producer that loses nothing does; `report` gets
    how many failed ("failed") and how many could still not be delivered ("undelivered")."""
    import time

    failed: list = []

    def on_delivery(err, msg):
        if err is not None:
            failed.append((msg.value(), msg.key(), msg.partition()))

    def producer():
        # as the pipeline's own producers: at least once, in order, not idempotent (an idempotent
        # producer can lose the batch in flight when tansu's S3 storage is killed: settings/kafka_clients.py)
        return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **PRODUCER_DELIVERY})

    p = producer()
    t0, pause_at = time.monotonic(), int(len(payloads) * pause_share)
    for i, payload in enumerate(payloads):
        if i == pause_at:
            p.flush(60)
            gate.wait(300)
            t0 = time.monotonic() - i / per_second
        if keyed:
            p.produce(topic, payload, key=orjson.loads(payload)["video_id"].encode(), on_delivery=on_delivery)
        else:
            p.produce(topic, payload, partition=i % 2, on_delivery=on_delivery)
        if i % 200 == 0:
            p.poll(0)
            if hurry is not None and hurry.is_set():
                continue
            ahead = i / per_second - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    p.flush(60)
    # a delivery that failed (a broker away longer than message.timeout.ms): a fresh producer sends it again
    failures = len(failed)
    for _ in range(5):
        if not failed:
            break
        again, failed[:] = list(failed), []
        p = producer()
        for value, key, partition in again:
            p.produce(topic, value, key=key, partition=partition, on_delivery=on_delivery)
        p.flush(60)
    if report is not None:
        report.update(failed=failures, undelivered=len(failed))
    done.set()


def sentinel_time(cfg, newest_ms: int) -> int:
    """An event time that moves the watermark past the step of every event up to `newest_ms`."""
    e = cfg.engagement
    geo = TileGeometry(e.tile, e.emit_interval, tuple(e.window_ms))
    return geo.step_end(newest_ms) + e.max_out_of_orderness + e.emit_interval


def final_as_of(cfg, sentinel_ms: int) -> int:
    e = cfg.engagement
    geo = TileGeometry(e.tile, e.emit_interval, tuple(e.window_ms))
    return geo.as_of_at_watermark(sentinel_ms - e.max_out_of_orderness)


def send_sentinels(bootstrap: str, topic: str, t: int, partitions: int = 2) -> None:
    """A sentinel event at `t` on every partition: the watermark passes every step before it."""
    p = Producer({"bootstrap.servers": bootstrap})
    for part in range(partitions):
        p.produce(topic, sentinel_payload(part, t), partition=part)
    assert p.flush(30) == 0


def sentinel_payload(partition: int, t: int) -> bytes:
    return orjson.dumps({"event_id": f"sentinel-{partition}-{t}", "user_id": "u-sentinel",
                         "video_id": f"{SENTINEL_PREFIX}{partition}", "event_time": t, "region": "US",
                         "watch_time_ms": 1, "video_duration_ms": 1000, "liked": False, "shared": False,
                         "commented": False, "skipped": True})


def connection(bootstrap: str | dict) -> dict:
    """A bootstrap address, or client settings (settings.kafka_clients.client_config) for a secured broker."""
    return dict(bootstrap) if isinstance(bootstrap, dict) else {"bootstrap.servers": bootstrap}


def produce(bootstrap: str | dict, topic: str, payloads, partitions: int = 2, sentinel_at: int | None = None) -> None:
    """Payloads keyed by video (malformed ones round-robin), then a sentinel on every partition."""
    p = Producer({**connection(bootstrap), "linger.ms": 5, "acks": "all"})
    for i, payload in enumerate(payloads):
        try:
            vid = orjson.loads(payload).get("video_id")
            key = vid.encode() if isinstance(vid, str) else None
        except Exception:
            key = None
        if key is None:
            p.produce(topic, payload, partition=i % partitions)
        else:
            p.produce(topic, payload, key=key)
        if i % 5000 == 0:
            p.poll(0)
    if sentinel_at is not None:
        p.flush(60)
        for part in range(partitions):
            p.produce(topic, sentinel_payload(part, sentinel_at), partition=part)
    assert p.flush(60) == 0


def expected_features(cfg, payloads, as_of: int):
    e = cfg.engagement
    df = oracle.valid_events(payloads)
    df = df[~df["video_id"].str.startswith(SENTINEL_PREFIX)]
    too_late = oracle.mark_too_late(df, e.max_out_of_orderness, e.allowed_lateness)
    counted = df[~too_late]
    return oracle.features(counted, as_of, e.tile, e.window_ms, vars(e.score_weights)), int(too_late.sum())


def redis_features(client, cfg) -> dict:
    """Every video's engagement features as stored, {video_id: {feature: value}}."""
    prefix = layout.entity_key(VIDEO_ENGAGEMENT, "")[:-2]
    ids = [k.decode()[len(prefix) + 1:-1] for k in client.scan_iter(match=f"{prefix}{{*", count=1000)]
    ids = [i for i in ids if not i.startswith(SENTINEL_PREFIX)]
    rows = FeatureReader(client, groups_for(cfg)).get("video", ids)
    return {r.entity_id: r.values for r in rows}


def topic_records(bootstrap: str | dict, topic: str, partitions: int = 2, idle_s: float = 3.0,
                  at_least: int = 0, timeout_s: float = 120.0) -> list:
    """All records of a topic as (value, headers dict), reading until idle once `at_least` arrived
    (or `timeout_s` passed); end markers of backfills (services/partition_reader.py) left out."""
    import time

    c = Consumer({**connection(bootstrap), "group.id": "reader", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out, last, deadline = [], time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() - last < idle_s or (len(out) < at_least and time.monotonic() < deadline):
        for m in c.consume(1000, 0.5):
            if m.error() or is_end_marker(m):
                continue
            out.append((m.value(), {k: v.decode() for k, v in (m.headers() or [])}))
            last = time.monotonic()
    c.close()
    return out


def scrape(port: int) -> dict:
    """Prometheus text -> {name: value} of the series not split by partition, group or bucket."""
    out = {}
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("fyp_") and "partition=" not in line and "group=" not in line and "le=" not in line:
            name, value = line.split("{")[0], float(line.rsplit(" ", 1)[1])
            out[name] = out.get(name, 0) + value
    return out
