"""Five hard kills while the stream runs through the engagement job on the standalone cluster:
kill -9 of the TaskManager
(with its Python workers, as a crashed host loses them; a supervisor starts a new one), of the
job's Python worker processes (when the job has any; the engagement job now has none), or of the feature writer service (started
again), at random points. After the last recovery the features equal the independent batch
oracle: no event lost, none counted twice (a double count shows as a wrong sum). Each recovery's
time is printed: for a Flink kill, kill -> the first checkpoint triggered after the kill completed
(the job runs on all its tasks again); for the writer, kill -> its stored read positions move on.

    .venv/bin/python -m pytest -s tests/integration/test_hard_kills.py
"""
from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter

import pytest

from featurestore import layout
from stack import flink_rest, procs
from fyp.runner import writer_group
from stack import flink_cluster
from schemas.engagement import ENGAGEMENT_V1
from tests import oracle
from tests.conftest import kill_group, start_fyp, wait_for_no_problems
from tests.integration.cluster_support import cancel_quietly, fyp, jobmanager, submitted_id
from tests.integration.engagement_support import (expected_features, final_as_of, paced_produce, redis_features,
                                                  send_sentinels, sentinel_time, topic_records, traffic_for)

pytestmark = [pytest.mark.integration, pytest.mark.long]

START_MS = 1_792_000_000_000
SEED = int(os.environ.get("FYP_KILL_SEED", "5"))
# The engagement job runs no Python worker (its state is in the JVM). FYP_KILL_JOB=features runs the
# combined job instead, whose spike family does, and kills its Python workers too (the engagement
# features are checked either way).
JOB = os.environ.get("FYP_KILL_JOB", "engagement")
KINDS = {"engagement": ("taskmanager", "taskmanager", "taskmanager", "writer", "writer"),
         "features": ("taskmanager", "taskmanager", "python-worker", "python-worker", "writer")}[JOB]


def _sigkill(pids: list[int], what: str) -> int:
    assert pids, f"no {what} to kill"
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


def _kill_taskmanager(cfg) -> int:
    n = _sigkill([p for tm in flink_cluster.daemon_pids(cfg)["taskmanager"] for p in procs.tree(tm)], "TaskManager")
    flink_cluster.start_taskmanager(cfg)  # as a supervisor would
    return n


def _kill_python_workers(cfg) -> int:
    return _sigkill(flink_cluster.python_workers(cfg), "Python worker of the job")


def _positions(client, cfg) -> int:
    return sum(int(v) for v in client.hgetall(layout.writer_offsets_key(writer_group(cfg))).values())


def _wait_recovered(url: str, job_id: str, killed_ms: int, timeout: float = 180) -> dict:
    """Waits until the job restored a checkpoint after the kill and then completed a new one.
    Returns the phases, in seconds after the kill: failing (the JobManager noticed), restored, and
    checkpointed (a checkpoint triggered after the restore completed)."""
    deadline = time.monotonic() + timeout
    phases: dict = {}
    while time.monotonic() < deadline:
        now_ms = int(time.time() * 1000)
        try:
            if "failing" not in phases and flink_rest.job_state(url, job_id) != "RUNNING":
                phases["failing"] = (now_ms - killed_ms) / 1000
            stats = flink_rest.checkpoint_stats(url, job_id)
        except flink_rest.RestError:
            time.sleep(0.25)
            continue  # the JobManager is busy failing over
        restored = (stats.get("latest") or {}).get("restored") or {}
        completed = (stats.get("latest") or {}).get("completed") or {}
        at = restored.get("restore_timestamp", 0)
        if at > killed_ms:
            phases["restored"] = (at - killed_ms) / 1000
            if completed.get("trigger_timestamp", 0) > at:
                phases["checkpointed"] = (completed["latest_ack_timestamp"] - killed_ms) / 1000
                return phases
        time.sleep(0.25)
    raise AssertionError(f"not recovered {timeout}s after the kill ({phases}; job "
                         f"{flink_rest.job_state(url, job_id)}){flink_rest.root_exception(url, job_id)}")


def test_five_hard_kills_lose_and_double_nothing(stack, cluster, tmp_path):
    # As in the other restart tests: a compressed replay restarted mid-stream can run one
    # partition's event time far ahead of the other's; a 2 h lateness keeps this test about
    # recovery, and no events beyond it (late right at a restart point is not defined).
    cfg, path = stack.config("cl-kills", **cluster, **{"engagement.allowed_lateness": "2h",
                                                        "cluster.heartbeat_interval": "1s",
                                                        "cluster.heartbeat_timeout": "5s"})
    traffic = traffic_for(cfg, seed=43, start_ms=START_MS, hours=16, rate=1.5, late_share=0.0,
                          malformed_share=0.002, videos=150)
    sentinel = sentinel_time(cfg, max(e["event_time"] for e in traffic.events if e))
    expected, _ = expected_features(cfg, traffic.payloads, final_as_of(cfg, sentinel))
    jm = jobmanager(cfg)
    url = f"http://{jm}"
    rng = random.Random(SEED)
    kinds = list(KINDS)
    rng.shuffle(kinds)
    client = stack.redis(cfg)

    writer = start_fyp(path, "writer", log=tmp_path / "writer-0.log")
    done, gate, hurry = threading.Event(), threading.Event(), threading.Event()
    # ~260 s of paced stream, more than five kills and recoveries take here; the last 10 % waits
    # for the fifth kill, so every kill lands while events flow; then the rest is sent at once
    producer = threading.Thread(target=paced_produce, daemon=True,
                                args=(stack.bootstrap, cfg.kafka.topics.engagement, traffic.payloads, 300, gate,
                                      done), kwargs={"pause_share": 0.9, "hurry": hurry})
    job_id = None
    report = []
    try:
        job_id = submitted_id(fyp(path, "submit", JOB, "--jobmanager", jm, "--fresh"))
        producer.start()
        deadline = time.monotonic() + 180
        while not (flink_rest.checkpoint_stats(url, job_id).get("latest") or {}).get("completed"):
            assert time.monotonic() < deadline, "the job completed no checkpoint"
            time.sleep(0.5)
        for n, kind in enumerate(kinds, 1):
            pause = rng.uniform(2.0, 8.0)  # a random point of the stream
            time.sleep(pause)
            assert not done.is_set(), f"the stream ended before kill {n}: not mid-stream"
            killed_ms, killed = int(time.time() * 1000), time.monotonic()
            if kind == "taskmanager":
                victims = _kill_taskmanager(cfg)
            elif kind == "python-worker":
                victims = _kill_python_workers(cfg)
            else:
                before = _positions(client, cfg)
                kill_group(writer, signal.SIGKILL)
                victims = 1
                writer = start_fyp(path, "writer", log=tmp_path / f"writer-{n}.log")
            if kind == "writer":
                deadline = time.monotonic() + 120
                while _positions(client, cfg) <= before:
                    assert time.monotonic() < deadline, "the restarted writer did not move on"
                    time.sleep(0.1)
            else:
                phases = _wait_recovered(url, job_id, killed_ms)
            took = time.monotonic() - killed
            report.append((n, kind, pause, victims, took))
            print(f"kill {n}: {kind} ({victims} processes) after {pause:.1f}s, recovered in {took:.1f}s"
                  + ("" if kind == "writer" else f" {phases}"), flush=True)
        assert flink_rest.restored_from(url, job_id), "the job never restored a checkpoint"
        gate.set()
        hurry.set()
        producer.join(timeout=180)
        assert done.is_set(), "the producer did not finish"
        send_sentinels(stack.bootstrap, cfg.kafka.topics.engagement, sentinel)
        sent = time.monotonic()
        took = wait_for_no_problems(lambda: oracle.compare(expected, redis_features(client, cfg)),
                                    timeout=300, what="features equal to the oracle after five hard kills")
        print(f"equal to the oracle {took:.1f}s after the last event ({len(expected)} videos, "
              f"{len(traffic.payloads)} events); recovery times (s): "
              + ", ".join(f"{k} {t:.1f}" for _, k, _, _, t in report) + f"; seed {SEED}")
        assert time.monotonic() - sent < 300
        # dead letters: at least once (the sink is at-least-once, a replay may repeat some)
        dlq = Counter(v for v, _ in topic_records(stack.bootstrap, cfg.kafka.topics.dead_letter))
        malformed = [p for p, k in zip(traffic.payloads, traffic.kinds) if k == "malformed"]
        assert malformed and all(dlq[p] >= 1 for p in malformed), "a malformed event is missing from the DLQ"
        assert set(dlq) == set(malformed), "a valid event went to the DLQ"
        assert all(ENGAGEMENT_V1.reason(p) for p in malformed)
        print(f"dead letters: {len(malformed)} malformed events, {sum(dlq.values()) - len(malformed)} repeated "
              f"by replays")
    finally:
        gate.set()
        hurry.set()
        cancel_quietly(cfg, path, job_id)
        kill_group(writer, signal.SIGTERM)
