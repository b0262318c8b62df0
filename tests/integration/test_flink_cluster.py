"""The engagement job on a standalone Flink cluster (JobManager + TaskManager from the apache-flink
package, started like `make cluster-up` on free ports), submitted with `fyp submit`, its writer as
its own service (`fyp writer`): features equal the oracle; and a stop with savepoint mid-stream
followed by a resubmission from it loses nothing and counts nothing twice."""
from __future__ import annotations

import re
import signal
import threading
import time

import pytest
import yaml

from featurestore.layout import SchemaMismatch
from stack import flink_rest
from settings.config import load_config
from tests import oracle
from tests.conftest import kill_group, start_fyp, wait_for_no_problems
from tests.integration.cluster_support import cancel_quietly, fyp, jobmanager, submitted_id, wait_state
from tests.integration.engagement_support import (expected_features, final_as_of, paced_produce, produce,
                                                  redis_features, send_sentinels, sentinel_time, traffic_for)

pytestmark = pytest.mark.integration

START_MS = 1_791_000_000_000


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


@pytest.mark.long
def _with_windows(path, windows: list[str]):
    """The same config (topics, Redis db, state folder) with `engagement.windows` changed: the
    feature group as a later build declares it."""
    raw = yaml.safe_load(path.read_text())
    raw.setdefault("engagement", {})["windows"] = windows
    upgraded = path.with_name("config-upgraded.yaml")
    upgraded.write_text(yaml.safe_dump(raw))
    return load_config(upgraded, env={}), upgraded


def _upgraded_problems(expected, client, cfg) -> list:
    try:
        return oracle.compare(expected, redis_features(client, cfg))
    except SchemaMismatch as stale:  # a video the upgraded job has not written yet
        return [f"a value still in the declaration before the upgrade: {stale}"]


def test_stop_with_savepoint_and_resubmit_loses_and_doubles_nothing(stack, cluster, tmp_path):
    """Stop with a savepoint mid-stream, resubmit from it under an upgraded declaration (a 2 h window
    added to the engagement group): nothing lost or doubled, and the new window, summed from the
    tiles in the savepoint, equals the oracle too."""
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

        cfg, path = _with_windows(path, ["1h", "2h", "6h", "24h"])
        expected, _ = expected_features(cfg, traffic.payloads, final_as_of(cfg, sentinel))
        assert "views_2h" in expected.columns
        kill_group(writer, signal.SIGTERM)  # the writer of the new build stores the new group
        writer = start_fyp(path, "writer", log=tmp_path / "writer-upgraded.log")
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
        send_sentinels(stack.bootstrap, cfg.kafka.topics.engagement, sentinel)
        took = wait_for_no_problems(lambda: _upgraded_problems(expected, client, cfg),
                                    timeout=300, what="features equal to the oracle after stop and resubmit")
        print(f"equal to the oracle {took:.1f}s after the last event was sent ({len(expected)} videos, "
              f"{len(partial)} differences at the stop)")
    finally:
        gate.set()
        cancel_quietly(cfg, path, second)
        cancel_quietly(cfg, path, first)
        kill_group(writer, signal.SIGTERM)
