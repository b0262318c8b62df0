"""Creator milestones through real tansu, Redis and the Flink mini-cluster: exactly one
notification per (video, threshold) with the right crossing time and creator, across a hard kill
and restart from checkpoint, and across a full replay of the same input with fresh job state."""
from __future__ import annotations

import signal
import threading
import time

import orjson
import pytest

from featurestore import layout
from jobs.flink_env import latest_checkpoint
from tests import oracle
from tests.conftest import kill_group, start_fyp, wait_for_no_problems
from tests.integration.engagement_support import (SENTINEL_PREFIX, paced_produce, produce, topic_records,
                                                  traffic_for)

pytestmark = pytest.mark.integration

START_MS = 1_794_000_000_000
THRESHOLDS = [50, 200, 600]


def expected_crossings(payloads, uploads) -> dict:
    ev = oracle.valid_events(payloads)
    return oracle.milestone_crossings(ev[~ev["video_id"].str.startswith(SENTINEL_PREFIX)], uploads, THRESHOLDS)


def test_exactly_one_notification_per_milestone_across_restart_and_replay(stack, tmp_path):
    cfg, path = stack.config("milestones", **{"milestones.thresholds": THRESHOLDS,
                                              "enrichment.metadata_wait": "10s"})
    traffic = traffic_for(cfg, seed=31, start_ms=START_MS, hours=2, rate=3, videos=60, late_share=0.0,
                          straggler_share=0.0, malformed_share=0.0)
    expected = expected_crossings(traffic.payloads, traffic.uploads)
    assert len(expected) >= 10 and any(k.endswith(":600") for k in expected)
    produce(stack.bootstrap, cfg.kafka.topics.uploads, [orjson.dumps(u) for u in traffic.uploads])
    newest = max(e["event_time"] for e in traffic.events if e)
    sentinels = [orjson.dumps({"event_id": f"s{p}", "user_id": "u-sentinel", "video_id": f"{SENTINEL_PREFIX}{p}",
                               "event_time": newest + 5000, "region": "US", "watch_time_ms": 1,
                               "video_duration_ms": 1000, "liked": False, "shared": False, "commented": False,
                               "skipped": True}) for p in range(2)]

    def notifications():
        return [orjson.loads(v) for v, _ in topic_records(stack.bootstrap, cfg.kafka.topics.notifications, idle_s=1.5)]

    def check():
        got = notifications()
        ids = [n["id"] for n in got]
        problems = [f"duplicate {i}" for i in set(ids) if ids.count(i) > 1]
        problems += [f"missing {i}" for i in expected if i not in ids][:10]
        problems += [f"unexpected {i}" for i in ids if i not in expected]
        for n in got:
            if n["id"] in expected and (n["crossed_at"], n["creator_id"]) != expected[n["id"]]:
                problems.append(f"{n['id']}: got {(n['crossed_at'], n['creator_id'])}, expected {expected[n['id']]}")
        return problems

    # 1. kill -9 mid-stream, restart from the retained checkpoint
    gate, done = threading.Event(), threading.Event()
    producer = threading.Thread(target=paced_produce, daemon=True, args=(
        stack.bootstrap, cfg.kafka.topics.engagement, traffic.payloads, 2000, gate, done), kwargs={"keyed": True})
    first = start_fyp(path, "run", "milestones", "--fresh", log=tmp_path / "run1.log")
    producer.start()
    notifier_positions = layout.writer_offsets_key(f"{cfg.kafka.consumer_group}-notifier")
    try:
        # killed once it has notified some crossings and retained a checkpoint (the stream waits at the gate)
        deadline = time.monotonic() + 180
        while (latest_checkpoint(cfg.checkpoint_dir / "milestones") is None
               or not stack.redis(cfg).hgetall(notifier_positions)):
            assert time.monotonic() < deadline, "no checkpoint retained or no crossing notified"
            time.sleep(0.5)
    finally:
        kill_group(first, signal.SIGKILL)
    second = start_fyp(path, "run", "milestones", log=tmp_path / "run2.log")
    gate.set()
    try:
        producer.join(timeout=120)
        produce(stack.bootstrap, cfg.kafka.topics.engagement, sentinels)
        wait_for_no_problems(check, timeout=240, what="one notification per milestone after the restart")
    finally:
        kill_group(second, signal.SIGTERM)
    assert "from checkpoint" in (tmp_path / "run2.log").read_text()

    # 2. replay the whole input with fresh job state: every crossing again, no new notification
    before = len(topic_records(stack.bootstrap, cfg.kafka.topics.milestone_crossings))
    third = start_fyp(path, "run", "milestones", "--fresh", log=tmp_path / "run3.log")
    try:
        client = stack.redis(cfg)
        name = f"{cfg.kafka.consumer_group}-notifier"

        def replayed():
            total = len(topic_records(stack.bootstrap, cfg.kafka.topics.milestone_crossings, idle_s=1.0))
            consumed = sum(int(v) for v in client.hgetall(layout.writer_offsets_key(name)).values())
            return [] if total >= before + len(expected) and consumed >= total else [f"{consumed}/{total} consumed"]

        wait_for_no_problems(replayed, timeout=240, what="the replay's crossings consumed")
    finally:
        kill_group(third, signal.SIGTERM)
    assert check() == []
    # the milestones are recorded in Redis, notified
    client = stack.redis(cfg)
    for cid, (crossed_at, _) in expected.items():
        vid, m = cid.rsplit(":", 1)
        rec = orjson.loads(client.hget(layout.milestone_key(vid), m))
        assert rec["crossed_at"] == crossed_at and rec["notified"] is True
