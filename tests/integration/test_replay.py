"""Every feature a function of the events alone: a backfill over files and a stream that catches up
the same backlog at full speed, each run twice on fresh topics and a fresh Redis database, store
identical values (compared exactly), equal to each family's independent oracle. Every family is
replayed in the combined job (the same wiring as its own job), and interests also alone over data
made for its rules. The catch-up's sentinel moves the watermark to where the backfill's input
ends."""
from __future__ import annotations

import orjson
import pandas as pd
import pytest

from featurestore import layout
from featurestore.reader import FeatureReader
from fyp.generator.traffic import TrafficSpec, generate
from operators.sliding_tiles import TileGeometry
from operators.spikes import SpikeRules
from schemas.features import REGION_TRENDS, USER_INTERESTS, VIDEO_ENGAGEMENT, VIDEO_SPIKES, groups_for
from tests import oracle, oracle_interests, oracle_spikes, oracle_trends, sessions
from tests.integration import replay_support as replay
from tests.integration.engagement_support import SENTINEL_PREFIX, expected_features, topic_records, traffic_for

pytestmark = pytest.mark.integration

START_MS = 1_791_000_000_000
MINUTE = 60_000


def stored_group(cfg, client, group: str) -> dict:
    """{entity: (as_of, values)} of one group as stored, sentinels left out."""
    g = groups_for(cfg)[group]
    pattern = layout.entity_key(group, "*")
    ids = [k.decode().split("{", 1)[1][:-1] for k in client.scan_iter(match=pattern, count=1000)]
    ids = [i for i in ids if not i.startswith(SENTINEL_PREFIX) and i != "u-sentinel"]
    return {r.entity_id: (r.as_of[group], r.values) for r in FeatureReader(client, {group: g}).get(g.entity, ids)}


def test_interests_alone(stack, tmp_path):
    """Sessions span many event-time steps, straddle the newcomer threshold, and bring back items
    that decayed below `prune_below` (tests/sessions.py)."""
    data = sessions.generate(seed=11, start_ms=START_MS)
    payloads = [orjson.dumps(e) for e in data.events]
    cfg0, _ = stack.config("interests-oracle")
    expected = oracle_interests.interests(oracle.valid_events(payloads), pd.DataFrame(data.uploads), cfg0.interests)
    # the data reaches every rule it is meant to
    assert sum(r["unenriched"] for r in expected.values()) > 20
    assert any(u.startswith("n") and r["events"] < 3 for u, r in expected.items()), "no newcomer restarted"
    assert any(u.startswith("b") and r["top_categories"][-1][0] == sessions.RARE for u, r in expected.items())

    def check(got):
        return oracle_interests.compare(expected, {u: values for u, (_, values) in got.items()})

    newest = max(e["event_time"] for e in data.events)
    replay.assert_four_runs_identical(stack, tmp_path, "interests", payloads, newest + 10_000,
                                      lambda cfg: stored_group(cfg, stack.redis(cfg), USER_INTERESTS), check,
                                      uploads=data.uploads)
