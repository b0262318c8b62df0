"""User interests are a function of the events alone: a backfill and a stream that catches up a
backlog at full speed, each run twice on fresh state, store identical values, equal to the pandas
oracle of the README's rules. The sessions span many event-time steps, straddle the newcomer
threshold, and bring back items that decayed below `prune_below` (tests/sessions.py)."""
from __future__ import annotations

import orjson
import pandas as pd
import pytest

from featurestore import layout
from featurestore.reader import FeatureReader
from schemas.features import USER_INTERESTS, groups_for
from tests import oracle, oracle_interests, sessions
from tests.integration import replay_support as replay

pytestmark = pytest.mark.integration

START_MS = 1_791_000_000_000


def stored(cfg, client) -> dict:
    """{user: (as_of, values)} as stored, without the catch-up's sentinel user."""
    ids = [k.decode().split("{", 1)[1][:-1] for k in client.scan_iter(match=layout.entity_key(USER_INTERESTS, "*"), count=1000)]
    rows = FeatureReader(client, groups_for(cfg)).get("user", [i for i in ids if i != "u-sentinel"])
    return {r.entity_id: (r.as_of[USER_INTERESTS], r.values) for r in rows}


def test_interests_backfill_and_catch_up_twice_equal_the_oracle(stack, tmp_path):
    data = sessions.generate(seed=11, start_ms=START_MS)
    payloads = [orjson.dumps(e) for e in data.events]
    cfg0, _ = stack.config("interests-oracle")
    expected = oracle_interests.interests(oracle.valid_events(payloads), pd.DataFrame(data.uploads), cfg0.interests)
    # the data reaches every rule it is meant to
    assert sum(r["unenriched"] for r in expected.values()) > 20
    assert any(u.startswith("n") and r["events"] < 3 for u, r in expected.items()), "no newcomer restarted"
    assert any(u.startswith("b") and r["top_categories"][-1][0] == sessions.RARE for u, r in expected.items())

    def equal_to_oracle(cfg):
        return oracle_interests.compare(expected, {u: v for u, (_, v) in stored(cfg, stack.redis(cfg)).items()})

    runs = {}
    for k in (1, 2):
        cfg, stats = replay.backfill(stack, tmp_path, "interests", payloads, data.uploads)
        problems = equal_to_oracle(cfg)
        assert not problems, f"backfill {k}:\n" + "\n".join(problems[:20])
        runs[f"backfill {k}"] = stored(cfg, stack.redis(cfg))
    newest = max(e["event_time"] for e in data.events)
    for k in (1, 2):
        cfg = replay.catch_up(stack, tmp_path, "interests", payloads, newest, equal_to_oracle, data.uploads)
        runs[f"catch-up {k}"] = stored(cfg, stack.redis(cfg))
    first = runs["backfill 1"]
    for name, run in runs.items():
        assert not replay.differences(first, run), f"backfill 1 vs {name}:\n" + "\n".join(replay.differences(first, run))
