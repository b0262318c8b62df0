"""The spike job through real tansu, Redis and the Flink mini-cluster, on generated traffic with
labelled super-spikes: its state transitions and features equal the batch oracle (pandas counts
and platform totals stepped through the same book code), every labelled spike becomes a
super-spike, nothing else does, and the delays are reported."""
from __future__ import annotations

import signal

import orjson
import pytest

from anomaly.spike_eval import alert_quality
from featurestore.reader import FeatureReader
from fyp.generator.traffic import TrafficSpec, generate
from operators.spikes import SpikeRules
from operators.feature_groups import groups_for
from tests import oracle_spikes
from tests.conftest import kill_group, start_fyp, wait_for_no_problems
from tests.integration.engagement_support import SENTINEL_PREFIX, produce, topic_records
from tests.integration.test_alerts import Receiver

pytestmark = pytest.mark.integration

START_MS = 1_794_000_000_000
MINUTE = 60_000


def labelled_traffic(cfg, hours: float = 3.0):
    # no uploads during the run: this generator gives a new video its full popularity from its
    # first minute, which the rules page as an upload taking off (tests/unit/test_spikes.py and
    # bench/spike_quality.py cover that case); here every alert must be a labelled spike. Seed 22
    # starts every spike after the job's first 10 minutes: a video already surging when a fresh job
    # starts has no past to be judged against.
    spec = TrafficSpec(new_video_share=0.0, seed=22, start_ms=START_MS, duration_ms=int(hours * 3_600_000),
                       mean_rate=10, videos=1000, users=5000, ooo_share=0.05, max_ooo_ms=cfg.engagement.max_out_of_orderness, spikes=3,
                       spike_peak_share=0.5)
    return generate(spec)


def transitions_on_topic(bootstrap: str, topic: str) -> list[dict]:
    out = [orjson.loads(v) for v, _ in topic_records(bootstrap, topic, idle_s=2.0)]
    return [t for t in out if not t["video_id"].startswith(SENTINEL_PREFIX)]


def key(t: dict) -> tuple:
    return (t["video_id"], t["at"], t["state"])


def test_spike_job_equals_oracle_and_finds_labelled_spikes(stack, tmp_path):
    receiver = Receiver()
    cfg, path = stack.config("spikes", **{"alerts.webhooks": [{"name": "oncall", "url": receiver.url}]})
    traffic = labelled_traffic(cfg)
    newest = max(e["event_time"] for e in traffic.events if e)
    sentinel = (newest // MINUTE + 1) * MINUTE + cfg.engagement.max_out_of_orderness + 1000
    produce(stack.bootstrap, cfg.kafka.topics.uploads, [orjson.dumps(u) for u in traffic.uploads])
    produce(stack.bootstrap, cfg.kafka.topics.engagement, traffic.payloads, sentinel_at=sentinel)

    expected, states = expected_run(cfg, traffic)
    quality = alert_quality(expected, traffic.spikes, traffic_hours=3.0)
    print("oracle alert quality:", quality)
    assert quality["detected"] == 3 and quality["false_alerts"] == 0

    proc = start_fyp(path, "run", "spikes", "--fresh", log=tmp_path / "run.log")
    try:
        assert_matches_oracle(stack, cfg, traffic, expected, states, receiver)
    finally:
        kill_group(proc, signal.SIGTERM)
        receiver.close()


def expected_run(cfg, traffic):
    """The oracle's transitions and last feature update per video."""
    return oracle_spikes.replay(traffic.events, traffic.uploads, SpikeRules.from_config(cfg.spikes))


def assert_matches_oracle(stack, cfg, traffic, expected, states, receiver, timeout: float = 300) -> None:
    """Waits until the job's transitions on the topic, its Redis features (spiked videos and 50
    others) and the alerts (topic and webhook: exactly one per spike) equal the oracle's."""
    want = {key(t): t for t in expected}

    def problems():
        got = {key(t): t for t in transitions_on_topic(stack.bootstrap, cfg.kafka.topics.spike_transitions)}
        missing = [k for k in want if k not in got]
        extra = [k for k in got if k not in want]
        differ = [k for k in want if k in got and got[k] != want[k]]
        return [f"missing {k}" for k in missing] + [f"extra {k}" for k in extra] + [f"differs {k}" for k in differ]

    wait_for_no_problems(problems, timeout=timeout, what="spike transitions equal to the oracle")
    reader = FeatureReader(stack.redis(cfg), groups_for(cfg))
    names = list(groups_for(cfg)["video_spikes"].names)

    def feature_problems():
        spiked = sorted({lab["video_id"] for lab in traffic.spikes})
        sample = spiked + sorted(states)[:50]
        rows = {r.entity_id: r for r in reader.get("video", sample, names)}
        out = []
        for v in sample:
            u, row = states[v], rows[v]
            if row.as_of["video_spikes"] != u.as_of:
                out.append(f"{v}: as of {row.as_of['video_spikes']}, expected {u.as_of}")
            elif [row.values[n] for n in names] != u.values:
                out.append(f"{v}: {row.values} != {u.values}")
        return out

    wait_for_no_problems(feature_problems, timeout=60, what="spike features equal to the oracle")

    # the alerter beside the job: one alert per labelled spike, on the topic and at the webhook
    want_ids = sorted(f"{t['video_id']}:{t['spike_started_at']}" for t in expected if t["state"] == "super_spike")

    def alert_problems():
        on_topic = sorted(orjson.loads(v)["id"] for v, _ in
                          topic_records(stack.bootstrap, cfg.kafka.topics.spike_alerts, idle_s=1.0))
        delivered = sorted(body["id"] for body in receiver.accepted())
        return [] if on_topic == want_ids == delivered else [f"topic {on_topic}, webhook {delivered}, want {want_ids}"]

    wait_for_no_problems(alert_problems, timeout=60, what="one alert per labelled spike")
    body = receiver.accepted()[0]
    assert body["runbook_url"] == cfg.alerts.runbook_url and body["severity"] in ("warning", "critical")


def test_backtest_transitions_equal_the_jobs_backfill(stack, tmp_path):
    """`fyp spikes backtest` and `fyp backfill spikes` on the same file: the same transitions."""
    from tests.integration.cluster_support import fyp

    cfg, path = stack.config("spikes-backtest")
    spec = TrafficSpec(seed=33, start_ms=START_MS, duration_ms=2 * 3_600_000, mean_rate=10, videos=800,
                       users=5000, ooo_share=0.05, max_ooo_ms=cfg.engagement.max_out_of_orderness, late_share=0.01,
                       malformed_share=0.002, spikes=2, spike_peak_share=0.5)
    traffic = generate(spec)
    events, uploads = tmp_path / "events.jsonl", tmp_path / "uploads.jsonl"
    events.write_bytes(b"\n".join(traffic.payloads) + b"\n")
    uploads.write_bytes(b"\n".join(orjson.dumps(u) for u in traffic.uploads) + b"\n")

    out = fyp(path, "spikes", "backtest", "--input", str(events), "--uploads", str(uploads),
              "--output", str(tmp_path / "bt.jsonl"))
    summary = orjson.loads(out.strip().splitlines()[-1])
    backtested = [orjson.loads(line) for line in (tmp_path / "bt.jsonl").read_bytes().splitlines()]
    assert summary["late"] > 0 and summary["invalid"] > 0 and summary["alerts"] >= 1
    assert summary["transitions"] == len(backtested) > 0

    fyp(path, "backfill", "spikes", "--input", str(events), "--uploads", str(uploads), timeout=400)
    got = transitions_on_topic(stack.bootstrap, cfg.kafka.topics.spike_transitions)
    assert sorted(map(key, got)) == sorted(map(key, backtested))
    assert {key(t): t for t in got} == {key(t): t for t in backtested}


def test_a_fresh_start_over_a_backlog_of_steady_traffic_raises_no_alert(stack, tmp_path):
    """`fyp backfill spikes` from fresh state over 40 min of steady Zipf traffic (2,000 videos,
    every one of them with a past the job has not seen): no transition at all, features written."""
    from tests.integration.cluster_support import fyp

    cfg, path = stack.config("spikes-steady")
    traffic = generate(TrafficSpec(seed=5, start_ms=START_MS, duration_ms=40 * MINUTE, mean_rate=100, videos=2000,
                                   users=20_000, new_video_share=0.0,
                                   max_ooo_ms=cfg.engagement.max_out_of_orderness))
    events, uploads = tmp_path / "events.jsonl", tmp_path / "uploads.jsonl"
    events.write_bytes(b"\n".join(traffic.payloads) + b"\n")
    uploads.write_bytes(b"\n".join(orjson.dumps(u) for u in traffic.uploads) + b"\n")
    fyp(path, "backfill", "spikes", "--input", str(events), "--uploads", str(uploads), timeout=400)
    assert transitions_on_topic(stack.bootstrap, cfg.kafka.topics.spike_transitions) == []
    reader = FeatureReader(stack.redis(cfg), groups_for(cfg))
    popular = sorted({e["video_id"] for e in traffic.events[:200] if e})
    rows = reader.get("video", popular, ["spike_state", "views_last_interval"])
    assert all(r.values["spike_state"] == "normal" for r in rows) and any(r.values["views_last_interval"] for r in rows)
