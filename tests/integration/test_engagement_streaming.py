"""The engagement job through real tansu, real Redis and the Flink mini-cluster, checked against
the independent pandas oracle (tests/oracle.py)."""
from __future__ import annotations

import signal
from collections import Counter

import pytest

from schemas.engagement import ENGAGEMENT_V1
from tests import oracle
from tests.hostile import hostile_payloads
from stack.daemons import free_port
from tests.conftest import kill_group, start_fyp, wait_for_no_problems
from tests.integration.engagement_support import (expected_features, final_as_of, produce, redis_features,
                                                  scrape, sentinel_time, topic_records, traffic_for)

pytestmark = pytest.mark.integration


START_MS = 1_790_000_000_000  # a fixed past instant: the traffic is the same on every run


def test_streaming_features_equal_oracle_with_ooo_late_and_malformed(stack, tmp_path):
    metrics_port = free_port()
    cfg, path = stack.config("stream", **{"observability.port": metrics_port})
    # 26 h of event time so that tiles leave the 1 h, 6 h and 24 h windows during the run
    traffic = traffic_for(cfg, seed=11, start_ms=START_MS, hours=26, rate=0.8)
    # hand-made hostile payloads early in the stream, each between valid events
    hostile = hostile_payloads(traffic.events[100])
    for i, h in enumerate(hostile):
        traffic.payloads.insert(200 + 2 * i, h)
        traffic.events.insert(200 + 2 * i, None)
        traffic.kinds.insert(200 + 2 * i, "malformed")
    newest = max(e["event_time"] for e in traffic.events if e)
    sentinel = sentinel_time(cfg, newest)
    produce(stack.bootstrap, cfg.kafka.topics.engagement, traffic.payloads, sentinel_at=sentinel)
    expected, n_late = expected_features(cfg, traffic.payloads, final_as_of(cfg, sentinel))
    kinds = Counter(traffic.kinds)
    assert kinds["ooo"] > 100 and kinds["straggler"] > 100 and kinds["late"] > 50 and kinds["malformed"] > 50
    assert n_late == kinds["late"]  # the oracle's own lateness rule agrees with the generator

    proc = start_fyp(path, "run", "engagement", "--fresh", log=tmp_path / "run.log")
    try:
        client = stack.redis(cfg)
        wait_for_no_problems(lambda: oracle.compare(expected, redis_features(client, cfg)),
                             timeout=300, what="features equal to the oracle")

        # the process's /metrics count what the topics hold (Flink's counters through its REST API)
        n_valid = sum(1 for k in traffic.kinds if k not in ("malformed", "late"))
        want = {"fyp_job_records_in_total": len(traffic.payloads) + 2,  # and the two sentinels
                "fyp_job_dead_letters_total": kinds["malformed"], "fyp_job_late_events_total": kinds["late"]}

        def metric_problems():
            got = scrape(metrics_port)
            out = [f"{k}: {got.get(k)} != {v}" for k, v in want.items() if got.get(k) != v]
            if not got.get("fyp_writer_consumed_total") or got.get("fyp_writer_consumed_total") != got.get(
                    "fyp_job_feature_updates_total"):
                out.append(f"writer consumed {got.get('fyp_writer_consumed_total')} of "
                           f"{got.get('fyp_job_feature_updates_total')} feature updates")
            if not got.get("fyp_writer_redis_write_seconds_count") or got.get("fyp_job_up") != 1:
                out.append(f"no Redis writes timed or job not up: {got}")
            return out

        try:
            wait_for_no_problems(metric_problems, timeout=60, what="metrics equal to the stream's counts")
        except AssertionError as e:  # which side lost: the records the topic holds tell
            held = len(topic_records(stack.bootstrap, cfg.kafka.topics.feature_updates))
            raise AssertionError(f"{e}\nthe feature-updates topic holds {held} records") from None
        assert n_valid > 0
    finally:
        kill_group(proc, signal.SIGTERM)

    # every malformed payload is in the dead-letter topic, with the reason the schema gives
    dlq = topic_records(stack.bootstrap, cfg.kafka.topics.dead_letter)
    want = Counter((p, ENGAGEMENT_V1.reason(p)) for p, k in zip(traffic.payloads, traffic.kinds) if k == "malformed")
    assert None not in {r for _, r in want}
    got = Counter((v or b"", h["reason"]) for v, h in dlq)
    assert got == want
    assert all(h["origin"] == cfg.kafka.topics.engagement and h["origin.offset"].isdigit() for _, h in dlq)

    # every event beyond the allowed lateness is in the late topic, none counted
    late = topic_records(stack.bootstrap, cfg.kafka.topics.late)
    want_late = Counter(p for p, k in zip(traffic.payloads, traffic.kinds) if k == "late")
    assert Counter(v for v, _ in late) == want_late
