"""The engagement job on a standalone Flink cluster (JobManager + TaskManager from the apache-flink
package, started like `make cluster-up` on free ports), submitted with `fyp submit`, its writer as
its own service (`fyp writer`): features equal the oracle; and a stop with savepoint mid-stream
followed by a resubmission from it loses nothing and counts nothing twice."""
from __future__ import annotations

import re
import signal
import subprocess
import threading
import time

import pytest
from confluent_kafka import Producer

from fyp import flink_rest
from fyp.config import REPO_ROOT
from fyp.stack import flink_cluster
from fyp.stack.services import free_port
from tests import oracle
from tests.conftest import fyp_command, kill_group, start_fyp, wait_for_no_problems
from tests.integration.engagement_support import (expected_features, final_as_of, paced_produce, produce,
                                                  redis_features, sentinel_payload, sentinel_time, traffic_for)

pytestmark = pytest.mark.integration

START_MS = 1_791_000_000_000


@pytest.fixture(scope="module")
def cluster(stack):
    """A cluster on free ports in the stack's temporary folder, stopped even when a test fails.
    Returns the config overrides that point a test's config at it."""
    overrides = {"cluster.rest_port": free_port(), "cluster.rpc_port": free_port()}
    cfg, _ = stack.config("flink-cluster", **overrides)
    overrides["cluster.dir"] = str(cfg.cluster_dir)
    started = time.monotonic()
    try:
        ov = flink_cluster.up(cfg, timeout_s=180)
        assert ov["taskmanagers"] == 1 and ov["slots-total"] == cfg.flink.parallelism
        print(f"cluster up in {time.monotonic() - started:.1f}s")
        yield overrides
    finally:
        stopped = flink_cluster.down(cfg)
        assert not any(flink_cluster.daemon_pids(cfg).values()), "a cluster daemon survived `down`"
        print(f"cluster down: {stopped}")


def jobmanager(cfg) -> str:
    return f"{cfg.cluster.host}:{cfg.cluster.rest_port}"


def fyp(path, *args, timeout: float = 240) -> str:
    """Runs `fyp ...` to its end; returns its output (fails the test on a non-zero exit)."""
    got = subprocess.run(fyp_command(path, *args), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    out = got.stdout + got.stderr
    assert got.returncode == 0, f"fyp {' '.join(args)} exited {got.returncode}:\n{out[-3000:]}"
    return out


def submitted_id(out: str) -> str:
    m = re.search(r"^job id: ([0-9a-f]{32})$", out, re.M)
    assert m, f"no job id in the output of fyp submit:\n{out[-2000:]}"
    return m.group(1)


def wait_state(cfg, job_id: str, states: tuple, timeout: float = 90) -> str:
    url = f"http://{jobmanager(cfg)}"
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        state = flink_rest.job_state(url, job_id)
        if state in states:
            return state
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} is {state}, not {states}, after {timeout}s")


def cancel_quietly(cfg, path, job_id: str | None) -> None:
    if job_id is None:
        return
    url = f"http://{jobmanager(cfg)}"
    try:
        if flink_rest.job_state(url, job_id) in flink_rest.ACTIVE_STATES:
            fyp(path, "cancel", job_id, "--jobmanager", jobmanager(cfg), timeout=60)
        wait_state(cfg, job_id, ("CANCELED", "FINISHED", "FAILED"), timeout=60)  # its slots are free again
    except (AssertionError, flink_rest.RestError) as e:
        print(f"cleanup of {job_id}: {e}")


def test_submitted_job_features_equal_oracle(stack, cluster, tmp_path):
    cfg, path = stack.config("cl-submit", **cluster)
    # 26 h of event time: tiles leave the 1 h, 6 h and 24 h windows; with stragglers, late events
    # (to the late topic, not counted) and malformed ones (dead letters)
    traffic = traffic_for(cfg, seed=31, start_ms=START_MS, hours=26, rate=0.12, videos=100)
    sentinel = sentinel_time(cfg, max(e["event_time"] for e in traffic.events if e))
    produce(stack.bootstrap, cfg.kafka.topics.engagement, traffic.payloads, sentinel_at=sentinel)
    expected, _ = expected_features(cfg, traffic.payloads, final_as_of(cfg, sentinel))

    writer = start_fyp(path, "writer", log=tmp_path / "writer.log")
    job_id = None
    try:
        started = time.monotonic()
        out = fyp(path, "submit", "engagement", "--jobmanager", jobmanager(cfg), "--fresh")
        job_id = submitted_id(out)
        print(f"submitted in {time.monotonic() - started:.1f}s: {out.strip().splitlines()[-2]}")
        listed = fyp(path, "status", "--jobmanager", jobmanager(cfg), timeout=60)
        assert re.search(rf"{job_id}\s+engagement\s+RUNNING", listed), listed
        client = stack.redis(cfg)
        took = wait_for_no_problems(lambda: oracle.compare(expected, redis_features(client, cfg)),
                                    timeout=300, what="features of the cluster job equal to the oracle")
        print(f"features equal to the oracle {took:.1f}s after submission ({len(expected)} videos)")
        # the job is still running on the cluster, not only submitted
        assert flink_rest.job_state(f"http://{jobmanager(cfg)}", job_id) == "RUNNING"
    finally:
        cancel_quietly(cfg, path, job_id)
        kill_group(writer, signal.SIGTERM)


def test_stop_with_savepoint_and_resubmit_loses_and_doubles_nothing(stack, cluster, tmp_path):
    # As in test_engagement_restart: a compressed paced replay restarted mid-stream can run one
    # partition's event time far ahead of the other's; a 2 h lateness keeps this test about the
    # savepoint, and no events beyond it (which are late near the restart point is not defined).
    cfg, path = stack.config("cl-savepoint", **cluster, **{"engagement.allowed_lateness": "2h"})
    traffic = traffic_for(cfg, seed=37, start_ms=START_MS + 200 * 3_600_000, hours=5, rate=1.5,
                          late_share=0.0, malformed_share=0.002, videos=150)
    sentinel = sentinel_time(cfg, max(e["event_time"] for e in traffic.events if e))
    expected, _ = expected_features(cfg, traffic.payloads, final_as_of(cfg, sentinel))
    jm = jobmanager(cfg)

    writer = start_fyp(path, "writer", log=tmp_path / "writer.log")
    done, gate = threading.Event(), threading.Event()
    producer = threading.Thread(target=paced_produce, daemon=True,
                                args=(stack.bootstrap, cfg.kafka.topics.engagement, traffic.payloads, 1500, gate, done))
    first = second = None
    try:
        first = submitted_id(fyp(path, "submit", "engagement", "--jobmanager", jm, "--fresh"))
        producer.start()
        client = stack.redis(cfg)
        deadline = time.monotonic() + 180
        while len(redis_features(client, cfg)) < 20:  # the job is well into the stream
            assert time.monotonic() < deadline, "the first job wrote no features"
            time.sleep(0.5)
        assert not done.is_set(), "the whole stream was sent before the stop: not mid-stream"

        started = time.monotonic()
        out = fyp(path, "stop", "engagement", "--savepoint", str(tmp_path / "savepoints"), "--jobmanager", jm)
        savepoint = re.search(r"^savepoint: (\S+)$", out, re.M).group(1)
        print(f"stopped with savepoint in {time.monotonic() - started:.1f}s: {savepoint}")
        assert (tmp_path / "savepoints").exists() and savepoint.startswith(str(tmp_path / "savepoints"))
        assert wait_state(cfg, first, ("FINISHED",)) == "FINISHED"
        partial = oracle.compare(expected, redis_features(client, cfg))
        assert partial, "features already complete at the stop: not mid-stream"
        gate.set()  # the rest of the stream arrives while no job runs, and after the resubmission

        out = fyp(path, "submit", "engagement", "--jobmanager", jm, "--from-savepoint", savepoint)
        second = submitted_id(out)
        assert f"from file://{savepoint}" in out, out
        # the new job runs on the savepoint's state and offsets: had it started over from the
        # topic's beginning instead, the features would equal the oracle too
        deadline = time.monotonic() + 120
        while (restored := flink_rest.restored_from(f"http://{jm}", second)) is None:
            assert time.monotonic() < deadline, "the resubmitted job restored no state"
            time.sleep(0.5)
        assert restored.rstrip("/").endswith(savepoint.rstrip("/")), restored
        producer.join(timeout=120)
        assert done.is_set(), "the producer did not finish"
        p = Producer({"bootstrap.servers": stack.bootstrap})
        for part in (0, 1):
            p.produce(cfg.kafka.topics.engagement, sentinel_payload(part, sentinel), partition=part)
        assert p.flush(30) == 0
        took = wait_for_no_problems(lambda: oracle.compare(expected, redis_features(client, cfg)),
                                    timeout=300, what="features equal to the oracle after stop and resubmit")
        print(f"equal to the oracle {took:.1f}s after the last event was sent ({len(expected)} videos, "
              f"{len(partial)} differences at the stop)")
    finally:
        gate.set()
        cancel_quietly(cfg, path, second)
        cancel_quietly(cfg, path, first)
        kill_group(writer, signal.SIGTERM)
