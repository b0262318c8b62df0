"""Redis stopped for 30 s while the engagement job streams: the writer retries (the pipeline slows
down, updates wait in Kafka), nothing is lost, and once Redis is back the features catch up to the
oracle. The catch-up time is reported."""
from __future__ import annotations

import signal
import threading
import time

import pytest

from stack import daemons
from tests import oracle
from tests.conftest import kill_group, start_fyp, wait_for_no_problems
from tests.integration.engagement_support import (expected_features, final_as_of, paced_produce, redis_features,
                                                  send_sentinels, sentinel_time, traffic_for)
from tests.integration.test_engagement_streaming import scrape

pytestmark = [pytest.mark.integration, pytest.mark.long]

START_MS = 1_792_000_000_000
OUTAGE_S = 30


def test_redis_stopped_30s_mid_stream(stack, tmp_path):
    port = daemons.free_port()
    base = daemons.redis_service(port, tmp_path)
    # with an append-only file, as a production Redis runs: a stop loses no stored feature
    argv = [a if a != "no" or base.argv[i - 1] != "--appendonly" else "yes" for i, a in enumerate(base.argv)]
    redis_svc = daemons.Service("redis-outage", argv, port)
    daemons.start(redis_svc, tmp_path)
    metrics_port = daemons.free_port()
    cfg, path = stack.config("outage", **{"redis.url": f"redis://127.0.0.1:{port}/0",
                                          "observability.port": metrics_port})
    traffic = traffic_for(cfg, seed=41, start_ms=START_MS, hours=6, rate=1.2, late_share=0.0)
    newest = max(e["event_time"] for e in traffic.events if e)
    sentinel = sentinel_time(cfg, newest)
    expected, _ = expected_features(cfg, traffic.payloads, final_as_of(cfg, sentinel))

    gate, done = threading.Event(), threading.Event()
    # the last 30 % of the stream waits until Redis is back, so the outage is mid-stream however
    # long the job takes to start on this machine
    producer = threading.Thread(target=paced_produce, daemon=True,
                                args=(stack.bootstrap, cfg.kafka.topics.engagement, traffic.payloads, 500, gate, done),
                                kwargs={"pause_share": 0.7})
    proc = start_fyp(path, "run", "engagement", "--fresh", log=tmp_path / "run.log")
    client = None
    try:
        deadline = time.monotonic() + 120
        while not scrape(metrics_port).get("fyp_job_up"):  # the job runs before the stream starts
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()[-2000:]
            time.sleep(1)
        producer.start()
        deadline = time.monotonic() + 120
        while scrape(metrics_port).get("fyp_writer_written_total", 0) < 100:  # the job is into the stream
            assert time.monotonic() < deadline, "nothing written before the outage"
            time.sleep(0.5)
        daemons.stop(redis_svc, tmp_path)
        stopped_at = time.monotonic()
        time.sleep(OUTAGE_S)
        assert not done.is_set(), "the stream ended during the outage: it was not mid-stream"
        during = scrape(metrics_port)
        assert during["fyp_writer_redis_retries_total"] > 0  # the writer noticed, and kept retrying
        daemons.start(redis_svc, tmp_path)
        back_at = time.monotonic()
        gate.set()
        producer.join(timeout=180)
        assert done.is_set()
        stream_end = time.monotonic()
        send_sentinels(stack.bootstrap, cfg.kafka.topics.engagement, sentinel)
        import redis as redis_lib
        client = redis_lib.Redis(port=port)
        wait_for_no_problems(lambda: oracle.compare(expected, redis_features(client, cfg)),
                             timeout=300, interval=1.0, what="features equal to the oracle after the outage")
        print(f"Redis down {back_at - stopped_at:.1f}s; the stream's last event sent {stream_end - back_at:.1f}s "
              f"after it came back; features equal to the oracle {time.monotonic() - back_at:.1f}s after it "
              f"came back ({time.monotonic() - stream_end:.1f}s after the last event)")
    finally:
        gate.set()
        kill_group(proc, signal.SIGTERM)
        daemons.stop(redis_svc, tmp_path)
