"""Every feature a function of the events alone: a backfill over files and a stream that catches up
the same backlog at full speed, each on fresh topics and a fresh Redis database, store
identical values (compared exactly), equal to each family's independent oracle. Every family is
replayed in the combined job (test_combined_job.py: the same wiring as its own job; each way twice);
here interests alone over data made for its rules, each way once. The catch-up's sentinel moves the
watermark to where the backfill's input ends."""
from __future__ import annotations

import orjson
import pandas as pd
import pytest

from schemas.features import USER_INTERESTS
from tests import oracle, oracle_interests, sessions
from tests.integration import replay_support as replay

pytestmark = pytest.mark.integration

START_MS = 1_791_000_000_000


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
    replay.assert_runs_identical(stack, tmp_path, "interests", payloads, newest + 10_000,
                                 lambda cfg: replay.stored_group(cfg, stack.redis(cfg), USER_INTERESTS), check,
                                 uploads=data.uploads, repeats=1)
