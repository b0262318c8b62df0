"""10,000 hostile events among valid traffic through the engagement job (real tansu, Redis, Flink):
every one lands in the dead-letter topic with the reason the schema gives, the job does not fail,
and the features of the valid events around them equal the oracle's."""
from __future__ import annotations

import random
import signal
from collections import Counter

import pytest

from schemas.engagement import ENGAGEMENT_V1
from tests import oracle
from tests.conftest import kill_group, start_fyp, wait_for_no_problems
from tests.hostile import hostile_mix
from tests.integration.engagement_support import (expected_features, final_as_of, produce, redis_features,
                                                  sentinel_time, topic_records, traffic_for)

pytestmark = pytest.mark.integration

START_MS = 1_791_000_000_000
N_HOSTILE = 10_000


def test_ten_thousand_hostile_events(stack, tmp_path):
    cfg, path = stack.config("hostile")
    traffic = traffic_for(cfg, seed=31, start_ms=START_MS, hours=3, rate=2, late_share=0.0, malformed_share=0.0)
    valid = [e for e in traffic.events if e]
    hostile = hostile_mix(valid, N_HOSTILE, seed=8)
    rng = random.Random(3)
    payloads = list(traffic.payloads)
    for _, p in hostile:  # scattered through the stream, between valid events
        payloads.insert(rng.randrange(len(payloads) + 1), p)
    newest = max(e["event_time"] for e in valid)
    sentinel = sentinel_time(cfg, newest)
    produce(stack.bootstrap, cfg.kafka.topics.engagement, payloads, sentinel_at=sentinel)
    expected, _ = expected_features(cfg, payloads, final_as_of(cfg, sentinel))

    proc = start_fyp(path, "run", "engagement", "--fresh", log=tmp_path / "run.log")
    try:
        client = stack.redis(cfg)
        wait_for_no_problems(lambda: oracle.compare(expected, redis_features(client, cfg)),
                             timeout=300, what="features of the valid events equal to the oracle")
        want = Counter((p, ENGAGEMENT_V1.reason(p)) for _, p in hostile)

        def dlq_problems():
            got = Counter((v or b"", h["reason"]) for v, h in topic_records(stack.bootstrap, cfg.kafka.topics.dead_letter))
            if got == want:
                return []
            missing, extra = want - got, got - want
            return [f"{len(missing)} hostile events not dead-lettered (or with another reason), e.g. "
                    f"{list(missing)[:3]}", f"{len(extra)} unexpected dead letters, e.g. {list(extra)[:3]}"]

        wait_for_no_problems(dlq_problems, timeout=60, what="every hostile event dead-lettered with its reason")
        assert proc.poll() is None, "the job process ended"
    finally:
        kill_group(proc, signal.SIGTERM)
    log = (tmp_path / "run.log").read_text()
    assert "Flink job ended" not in log
    by_reason = Counter(r.split(":")[0] for _, r in want)
    print("hostile events by reason:", dict(by_reason), "by family:", dict(Counter(f for f, _ in hostile)))
