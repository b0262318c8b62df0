"""The interests job through real tansu, Redis and the Flink mini-cluster: enrichment with upload
events as of each view's time, decayed top-N vectors equal to the pandas oracle, unknown metadata
counted, malformed uploads dead-lettered."""
from __future__ import annotations

import signal

import orjson
import pandas as pd
import pytest

from featurestore import layout
from featurestore.reader import FeatureReader
from schemas.features import USER_INTERESTS
from operators.feature_groups import groups_for
from tests import oracle, oracle_interests
from tests.conftest import kill_group, start_fyp, wait_for_no_problems
from tests.integration.engagement_support import SENTINEL_PREFIX, produce, sentinel_time, topic_records, traffic_for

pytestmark = pytest.mark.integration

START_MS = 1_791_000_000_000


def _stored(client, cfg) -> dict:
    ids = [k.decode().split("{", 1)[1][:-1] for k in client.scan_iter(match=layout.entity_key(USER_INTERESTS, "*"), count=1000)]
    ids = [i for i in ids if i != "u-sentinel"]
    rows = FeatureReader(client, groups_for(cfg)).get("user", ids)
    return {r.entity_id: r.values for r in rows}


def test_interest_vectors_equal_oracle(stack, tmp_path):
    cfg, path = stack.config("interests", **{
        "interests.prune_below": 0.0, "interests.top_n": 4,
        # no session ends in this test: its stragglers (behind the watermark, added as they come)
        # then give the exact sums whatever their arrival; the rules are tested in test_replay_interests
        "interests.newcomer_ttl": "48h", "interests.idle_ttl": "48h",
        "enrichment.metadata_wait": "10s"})
    traffic = traffic_for(cfg, seed=5, start_ms=START_MS, hours=1.5, rate=3, videos=150,
                          late_share=0.0, straggler_share=0.01, malformed_share=0.002)
    uploads = [u for u in traffic.uploads]
    # views of a video that never gets an upload event: enriched as unknown, counted
    orphan = dict(next(e for e in traffic.events if e), video_id="v-orphan", event_id="orphan-1")
    orphans = [dict(orphan, event_id=f"orphan-{i}", event_time=orphan["event_time"] + 1000 * i) for i in range(5)]
    payloads = traffic.payloads[:1000] + [orjson.dumps(o) for o in orphans] + traffic.payloads[1000:]
    bad_uploads = [b'{"video_id": "v-bad"}', b"not json"]
    produce(stack.bootstrap, cfg.kafka.topics.uploads, [orjson.dumps(u) for u in uploads] + bad_uploads)
    newest = max(e["event_time"] for e in traffic.events if e)
    produce(stack.bootstrap, cfg.kafka.topics.engagement, payloads, sentinel_at=sentinel_time(cfg, newest))

    events = oracle.valid_events(payloads)
    events = events[~events["video_id"].str.startswith(SENTINEL_PREFIX)]
    expected = oracle_interests.interests(events, pd.DataFrame(uploads), cfg.interests)
    assert sum(r["unenriched"] for r in expected.values()) >= 5

    proc = start_fyp(path, "run", "interests", "--fresh", log=tmp_path / "run.log")
    try:
        client = stack.redis(cfg)
        wait_for_no_problems(lambda: oracle_interests.compare(expected, _stored(client, cfg)),
                             timeout=240, what="interest vectors equal to the oracle")
    finally:
        kill_group(proc, signal.SIGTERM)
    dlq = topic_records(stack.bootstrap, cfg.kafka.topics.dead_letter)
    bad = [(v, h) for v, h in dlq if h.get("schema") == "upload.v1"]
    assert sorted(v for v, _ in bad) == sorted(bad_uploads)
    assert all(h["job"] == "interests" for _, h in dlq)
