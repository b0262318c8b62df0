"""`fyp backfill engagement --input FILE`: the same job graph over a bounded file exits when done and
leaves in Redis the features as of the end of the input, equal to the oracle."""
from __future__ import annotations

import subprocess

import orjson
import pytest

from fyp.generator.output import write_jsonl
from operators.sliding_tiles import TileGeometry
from tests import oracle
from tests.conftest import fyp_command
from tests.integration.engagement_support import expected_features, redis_features, traffic_for

pytestmark = pytest.mark.integration

START_MS = 1_791_000_000_000


def test_backfill_leaves_final_features_equal_to_oracle(stack, tmp_path):
    cfg, path = stack.config("backfill")
    traffic = traffic_for(cfg, seed=5, start_ms=START_MS, hours=25, rate=0.6)
    events = tmp_path / "events.jsonl"
    write_jsonl(events, traffic.payloads)
    done = subprocess.run(fyp_command(path, "backfill", "engagement", "--input", str(events)),
                          capture_output=True, timeout=600)
    assert done.returncode == 0, done.stdout.decode()[-3000:] + done.stderr.decode()[-3000:]
    stats = orjson.loads(done.stdout.decode().strip().splitlines()[-1])

    e = cfg.engagement
    newest = max(ev["event_time"] for ev in traffic.events if ev)
    as_of = TileGeometry(e.tile, e.emit_interval, tuple(e.window_ms)).step_end(newest)
    assert stats["as_of"] == as_of
    expected, _ = expected_features(cfg, traffic.payloads, as_of)
    problems = oracle.compare(expected, redis_features(stack.redis(cfg), cfg))
    assert not problems, "\n".join(problems[:20])
