"""The combined job (`features`): every family from one read of the stream, one writer, the
notifier and the alerter beside it. A backfill and a stream that catches up the same backlog at
full speed, each run twice on fresh state, store identical values and send identical updates
(compared exactly), and each family equals its own oracle, at the end and in the updates on the
way there: every feature a function of the events alone."""
from __future__ import annotations

import orjson
import pandas as pd
import pytest

from operators.sliding_tiles import TileGeometry
from operators.spikes import SpikeRules
from schemas.features import REGION_TRENDS, USER_INTERESTS, VIDEO_ENGAGEMENT, VIDEO_SPIKES
from operators.feature_groups import groups_for
from tests import oracle, oracle_interests, oracle_spikes, oracle_trends
from tests.integration import replay_support as replay
from tests.integration.engagement_support import expected_features, topic_records, traffic_for

pytestmark = pytest.mark.integration

START_MS = 1_795_996_800_000  # a whole hour: the input ends on a minute
MINUTE = 60_000
THRESHOLDS = [50, 200, 600]


def test_backfill_and_catch_up_twice_equal_every_family_oracle(stack, tmp_path):
    overrides = {"milestones.thresholds": THRESHOLDS, "trends.top_k": 5}
    cfg0, _ = stack.config("features-oracle", **overrides)
    # 25 h, so tiles leave every engagement window; no view behind the watermark: the milestones
    # oracle counts in event-time order (stragglers and late events: the families' streaming tests)
    traffic = traffic_for(cfg0, seed=41, start_ms=START_MS, hours=25, rate=0.2, late_share=0.0,
                          straggler_share=0.0, malformed_share=0.002)
    # a last view in the input's last millisecond: its step, minute and spike interval end together,
    # so one watermark ends every family where the backfill does
    last = dict(next(ev for ev in reversed(traffic.events) if ev), event_id="last-view",
                event_time=START_MS + 25 * 3_600_000 - 1)
    traffic.events.append(last)
    traffic.payloads.append(orjson.dumps(last))
    traffic.kinds.append("ok")
    e = cfg0.engagement
    newest = max(ev["event_time"] for ev in traffic.events if ev)
    step_end = TileGeometry(e.tile, e.emit_interval, tuple(e.window_ms)).step_end(newest)
    minute_end = -(-step_end // MINUTE) * MINUTE
    assert step_end == minute_end
    events = oracle.valid_events(traffic.payloads)
    engagement, _ = expected_features(cfg0, traffic.payloads, step_end)
    interests = oracle_interests.interests(events, pd.DataFrame(traffic.uploads), cfg0.interests)
    trends = oracle_trends.trends(events, minute_end, cfg0.trends.window_ms, 5, vars(cfg0.trends.weights))
    crossings = oracle.milestone_crossings(events, traffic.uploads, THRESHOLDS)
    _, spike_last = oracle_spikes.replay(events, traffic.uploads, SpikeRules.from_config(cfg0.spikes))

    malformed = [p for p, kind in zip(traffic.payloads, traffic.kinds) if kind == "malformed"]
    assert crossings and malformed and len(interests) > 1000
    groups = (VIDEO_ENGAGEMENT, USER_INTERESTS, REGION_TRENDS, VIDEO_SPIKES)

    def stored(cfg):
        """Flat: "<group> <entity>" -> (as_of, values); the notifications; the dead letters."""
        client = stack.redis(cfg)
        out = {f"{g} {k}": v for g in groups for k, v in replay.stored_group(cfg, client, g).items()}
        out["notifications"] = sorted((n["id"], n["crossed_at"], n["creator_id"]) for n in (
            orjson.loads(v) for v, _ in topic_records(stack.bootstrap, cfg.kafka.topics.notifications, idle_s=1.0)))
        out["dead letters"] = sorted((v, h["job"]) for v, h in topic_records(stack.bootstrap, cfg.kafka.topics.dead_letter,
                                                                            idle_s=1.0))
        return out

    def group(got, g):
        return {k.split(" ", 1)[1]: v for k, v in got.items() if k.startswith(g + " ")}

    names = list(groups_for(cfg0)[VIDEO_SPIKES].names)

    def check(got):
        problems = oracle.compare(engagement, {v: x for v, (_, x) in group(got, VIDEO_ENGAGEMENT).items()})
        problems += oracle_interests.compare(interests, {u: x for u, (_, x) in group(got, USER_INTERESTS).items()})
        regions = group(got, REGION_TRENDS)
        stale = [r for r, (t, _) in regions.items() if t != minute_end]
        problems += [f"trends not as of {minute_end}: {stale}"] if stale else oracle_trends.compare(
            trends, {r: x for r, (_, x) in regions.items()})
        want = sorted((cid, t, creator) for cid, (t, creator) in crossings.items())
        if got["notifications"] != want:
            problems.append(f"notifications {got['notifications'][:5]}... != {want[:5]}...")
        spikes = group(got, VIDEO_SPIKES)
        for v, u in spike_last.items():
            as_of, x = spikes.get(v, (None, {}))
            if as_of != u.as_of or [x.get(n) for n in names] != u.values:
                problems.append(f"spikes {v}: {as_of} {x} != {u.as_of} {u.values}")
        if got["dead letters"] != sorted((p, "features") for p in malformed):
            problems.append(f"{len(got['dead letters'])} dead letters, {len(malformed)} malformed payloads")
        return problems

    def metrics(got):
        """Every update the job counts (the JVM families' and the spike book's) is one the writer
        consumed: equal once caught up."""
        job, writer = got.get("fyp_job_feature_updates_total"), got.get("fyp_writer_consumed_total")
        if writer and job == writer:
            return []
        return [f"the job counted {job} feature updates, the writer consumed {writer}"]

    first = replay.assert_runs_identical(stack, tmp_path, "features", traffic.payloads,
                                         step_end - 1 + e.max_out_of_orderness, stored, check,
                                         uploads=traffic.uploads, metrics=metrics, with_updates=True,
                                         **overrides)
    assert len(first["notifications"]) == len(crossings) >= 10
    assert not intermediate_problems(cfg0, traffic.payloads, events, first)


def intermediate_problems(cfg, payloads, events, run: dict, samples: int = 12) -> list[str]:
    """Updates sent on the way to the end, each against its oracle as of its own time: a sample of
    the engagement updates (spread over the run) and every region's trends at a sample of minutes.
    A value as of T counts no event at or after T, however the watermark moved."""
    groups = groups_for(cfg)
    sent: dict = {}
    for key, versions in run.items():
        if key.startswith("update "):
            _, group, entity, as_of = key.split(" ")
            sent.setdefault(group, []).append((int(as_of), entity, orjson.loads(versions[-1])[1]))
    problems = []
    engagement = sorted(sent[VIDEO_ENGAGEMENT])
    names = groups[VIDEO_ENGAGEMENT].names
    for as_of, video, values in engagement[:: max(1, len(engagement) // samples)]:
        want, _ = expected_features(cfg, payloads, as_of)
        got = {video: dict(zip(names, values))}
        if video in want.index:
            problems += oracle.compare(want.loc[[video]], got)
        elif any(v for n, v in got[video].items() if n.startswith("views")):
            problems.append(f"{video} as of {as_of}: views {got[video]}, none expected")
    minutes = sorted({t for t, _, _ in sent[REGION_TRENDS]})
    names = groups[REGION_TRENDS].names
    for as_of in minutes[:: max(1, len(minutes) // samples)]:
        want = oracle_trends.trends(events, as_of, cfg.trends.window_ms, cfg.trends.top_k, vars(cfg.trends.weights))
        got = {r: dict(zip(names, v)) for t, r, v in sent[REGION_TRENDS] if t == as_of}
        problems += oracle_trends.compare({r: x for r, x in want.items() if r in got}, got)
    return problems
