"""The trends job through real tansu, Redis and the Flink mini-cluster: per region and GLOBAL,
the top K lists in order with velocity, equal to the pandas oracle; corrections counted, events
beyond the allowed lateness in the late topic."""
from __future__ import annotations

import signal

import pytest

from featurestore.reader import FeatureReader
from operators.feature_groups import groups_for
from tests import oracle, oracle_trends
from tests.conftest import kill_group, start_fyp, wait_for_no_problems
from tests.integration.engagement_support import SENTINEL_PREFIX, produce, topic_records, traffic_for

pytestmark = pytest.mark.integration

START_MS = 1_793_000_000_000
MINUTE = 60_000


def test_trend_lists_equal_oracle(stack, tmp_path):
    cfg, path = stack.config("trends", **{"trends.top_k": 5})
    traffic = traffic_for(cfg, seed=9, start_ms=START_MS, hours=2.5, rate=3, videos=120, late_share=0.002)
    newest = max(e["event_time"] for e in traffic.events if e)
    # the sentinel closes the minute of the newest event: the final lists are as of its end
    as_of = (newest // MINUTE + 1) * MINUTE
    sentinel = as_of + cfg.engagement.max_out_of_orderness + 1000
    produce(stack.bootstrap, cfg.kafka.topics.engagement, traffic.payloads, sentinel_at=sentinel)

    e = cfg.engagement
    events = oracle.valid_events(traffic.payloads)
    events = events[~events["video_id"].str.startswith(SENTINEL_PREFIX)]
    too_late = oracle.mark_too_late(events, e.max_out_of_orderness, e.allowed_lateness)
    assert too_late.sum() > 5 and (events["event_time"] >= as_of).sum() == 0
    expected = oracle_trends.trends(events[~too_late], as_of, cfg.trends.window_ms, cfg.trends.top_k,
                                    vars(cfg.trends.weights))
    assert len(expected) > 5 and all(len(v["top_1h"]) == 5 for v in expected.values())

    proc = start_fyp(path, "run", "trends", "--fresh", log=tmp_path / "run.log")
    reader = FeatureReader(stack.redis(cfg), groups_for(cfg))

    def problems():
        rows = reader.get("region", sorted(expected))
        stale = [r.entity_id for r in rows if r.as_of["region_trends"] != as_of]
        if stale:
            return [f"not yet as of {as_of}: {stale}"]
        return oracle_trends.compare(expected, {r.entity_id: r.values for r in rows})

    try:
        wait_for_no_problems(problems, timeout=240, what="trend lists equal to the oracle")
    finally:
        kill_group(proc, signal.SIGTERM)
    late = [h for _, h in topic_records(stack.bootstrap, cfg.kafka.topics.late)]
    assert len(late) == int(too_late.sum()) and all(h["job"] == "trends" for h in late)
