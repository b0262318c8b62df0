"""Every feature a function of the events alone: for each family, a backfill over files and a
stream that catches up the same backlog at full speed, each run twice on fresh topics and a fresh
Redis database, store identical values (compared exactly), equal to the family's independent
oracle. The catch-up's sentinel moves the watermark to where the backfill's input ends."""
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


def test_engagement(stack, tmp_path):
    cfg0, _ = stack.config("engagement-oracle")
    traffic = traffic_for(cfg0, seed=5, start_ms=START_MS, hours=25, rate=0.3)
    e = cfg0.engagement
    as_of = TileGeometry(e.tile, e.emit_interval, tuple(e.window_ms)).step_end(
        max(ev["event_time"] for ev in traffic.events if ev))
    expected, too_late = expected_features(cfg0, traffic.payloads, as_of)
    assert too_late > 5

    def check(got):
        # a video's value is as of its last change (events, or a tile leaving a window): compared
        # as of the end of the input, where it still holds
        return oracle.compare(expected, {v: values for v, (_, values) in got.items()})

    replay.assert_four_runs_identical(stack, tmp_path, "engagement", traffic.payloads, as_of + e.max_out_of_orderness,
                                      lambda cfg: stored_group(cfg, stack.redis(cfg), VIDEO_ENGAGEMENT), check)


def test_interests(stack, tmp_path):
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


def test_trends(stack, tmp_path):
    cfg0, _ = stack.config("trends-oracle", **{"trends.top_k": 5})
    traffic = traffic_for(cfg0, seed=9, start_ms=START_MS, hours=2.5, rate=2, videos=120, late_share=0.002)
    newest = max(e["event_time"] for e in traffic.events if e)
    as_of = (newest // MINUTE + 1) * MINUTE  # the backfill's end: the minute of the newest event closed
    e = cfg0.engagement
    events = oracle.valid_events(traffic.payloads)
    too_late = oracle.mark_too_late(events, e.max_out_of_orderness, e.allowed_lateness)
    expected = oracle_trends.trends(events[~too_late], as_of, cfg0.trends.window_ms, cfg0.trends.top_k,
                                    vars(cfg0.trends.weights))
    assert too_late.sum() > 5 and len(expected) > 5

    def check(got):
        stale = [r for r, (t, _) in got.items() if t != as_of]
        if stale:
            return [f"not as of {as_of}: {stale}"]
        return oracle_trends.compare(expected, {r: values for r, (_, values) in got.items()})

    replay.assert_four_runs_identical(stack, tmp_path, "trends", traffic.payloads, as_of + e.max_out_of_orderness + 1000,
                                      lambda cfg: stored_group(cfg, stack.redis(cfg), REGION_TRENDS), check,
                                      **{"trends.top_k": 5})


def test_milestones(stack, tmp_path):
    thresholds = [50, 200, 600]
    cfg0, _ = stack.config("milestones-oracle")
    traffic = traffic_for(cfg0, seed=31, start_ms=START_MS, hours=2, rate=3, videos=60, late_share=0.0,
                          straggler_share=0.0, malformed_share=0.0)
    expected = oracle.milestone_crossings(oracle.valid_events(traffic.payloads), traffic.uploads, thresholds)
    assert len(expected) >= 10 and any(k.endswith(":600") for k in expected)

    def stored(cfg):
        """Every notification on the topic by id (a list: a duplicate would show), and the records
        in Redis."""
        out = {}
        for value, _ in topic_records(stack.bootstrap, cfg.kafka.topics.notifications, idle_s=1.0):
            n = orjson.loads(value)
            out.setdefault(n["id"], []).append(n)
        client = stack.redis(cfg)
        for cid in expected:
            vid, m = cid.rsplit(":", 1)
            rec = client.hget(layout.milestone_key(vid), m)
            out[f"record {cid}"] = rec and orjson.loads(rec)
        return out

    def check(got):
        problems = []
        for cid, (crossed_at, creator) in expected.items():
            sent = got.get(cid, [])
            if [(n["crossed_at"], n["creator_id"]) for n in sent] != [(crossed_at, creator)]:
                problems.append(f"{cid}: sent {sent}, expected one at {crossed_at} by {creator}")
            rec = got[f"record {cid}"]
            if not rec or (rec["crossed_at"], rec["notified"]) != (crossed_at, True):
                problems.append(f"{cid}: record {rec}")
        problems += [f"unexpected {k}" for k in got if not k.startswith("record ") and k not in expected]
        return problems

    newest = max(e["event_time"] for e in traffic.events if e)
    replay.assert_four_runs_identical(stack, tmp_path, "milestones", traffic.payloads, newest + 5000, stored, check,
                                      uploads=traffic.uploads, **{"milestones.thresholds": thresholds})


def test_spikes(stack, tmp_path):
    cfg0, _ = stack.config("spikes-oracle")
    spec = TrafficSpec(seed=21, start_ms=START_MS, duration_ms=2 * 3_600_000, mean_rate=6, videos=600, users=5000,
                       ooo_share=0.05, max_ooo_ms=cfg0.engagement.max_out_of_orderness, spikes=2,
                       spike_peak_share=0.5)
    traffic = generate(spec)
    interval = cfg0.spikes.interval
    newest = max(e["event_time"] for e in traffic.events if e)
    end_watermark = (newest // interval + 1) * interval - 1  # the newest event's interval closed
    counts = oracle_spikes.interval_counts(traffic.events, interval)
    transitions, states = oracle_spikes.replay(counts, SpikeRules.from_config(cfg0.spikes), cfg0.spikes.idle_ttl,
                                               end_watermark)
    assert sum(t["state"] == "super_spike" for t in transitions) == 2

    def stored(cfg):
        out = {f"features {v}": f for v, f in stored_group(cfg, stack.redis(cfg), VIDEO_SPIKES).items()}
        for value, _ in topic_records(stack.bootstrap, cfg.kafka.topics.spike_transitions, idle_s=1.0):
            t = orjson.loads(value)
            if not t["video_id"].startswith(SENTINEL_PREFIX):
                out.setdefault(f"transitions {t['video_id']}", []).append(t)
        return out

    want_transitions = {}
    for t in transitions:
        want_transitions.setdefault(f"transitions {t['video_id']}", []).append(t)
    names = list(groups_for(cfg0)[VIDEO_SPIKES].names)

    def check(got):
        problems = [f"{k}: {got.get(k)} != {v}" for k, v in want_transitions.items() if got.get(k) != v]
        problems += [f"unexpected {k}" for k in got if k.startswith("transitions ") and k not in want_transitions]
        for v, st in states.items():
            as_of, values = got.get(f"features {v}", (None, {}))
            if as_of != st.as_of or [values.get(n) for n in names] != st.features():
                problems.append(f"{v}: {as_of} {values} != {st.as_of} {st.features()}")
        return problems

    replay.assert_four_runs_identical(stack, tmp_path, "spikes", traffic.payloads,
                                      end_watermark + cfg0.engagement.max_out_of_orderness, stored, check)
