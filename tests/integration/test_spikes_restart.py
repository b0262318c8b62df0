"""The spike job killed hard (SIGKILL of its process group: Python, JVM, workers, writer and
alerter) mid-stream and restarted from its retained checkpoint ends equal to the oracle: the same
transitions, the same features, and still exactly one alert per labelled spike (re-emitted
transitions after the restart are absorbed by the alerter's Redis dedup)."""
from __future__ import annotations

import signal
import threading
import time

import orjson
import pytest

from jobs.flink_env import latest_checkpoint
from tests.conftest import kill_group, start_fyp
from tests.integration.engagement_support import paced_produce, produce, send_sentinels
from tests.integration.test_alerts import Receiver
from tests.integration.test_spikes import (MINUTE, assert_matches_oracle, expected_run, labelled_traffic,
                                           transitions_on_topic)

pytestmark = [pytest.mark.integration, pytest.mark.long]


def test_spike_job_hard_kill_and_restart(stack, tmp_path):
    receiver = Receiver()
    cfg, path = stack.config("spikes-restart", **{"alerts.webhooks": [{"name": "oncall", "url": receiver.url}]})
    traffic = labelled_traffic(cfg, hours=4.0)
    newest = max(e["event_time"] for e in traffic.events if e)
    sentinel = (newest // MINUTE + 1) * MINUTE + cfg.engagement.max_out_of_orderness + 1000
    expected, states = expected_run(cfg, traffic)
    produce(stack.bootstrap, cfg.kafka.topics.uploads, [orjson.dumps(u) for u in traffic.uploads])

    # the stream is sent at a steady pace and holds its last 40 % until the job was killed and
    # restarted, so the kill lands mid-stream however fast the job is
    gate, done = threading.Event(), threading.Event()
    producer = threading.Thread(target=paced_produce, daemon=True,
                                args=(stack.bootstrap, cfg.kafka.topics.engagement, traffic.payloads, 5000, gate, done))
    first = start_fyp(path, "run", "spikes", "--fresh", log=tmp_path / "run1.log")
    producer.start()
    try:
        deadline = time.monotonic() + 180
        while latest_checkpoint(cfg.checkpoint_dir / "spikes") is None:
            assert time.monotonic() < deadline, "no checkpoint was retained"
            time.sleep(0.5)
        seen = transitions_on_topic(stack.bootstrap, cfg.kafka.topics.spike_transitions)
        assert not done.is_set(), "the whole stream was sent before the kill"
    finally:
        kill_group(first, signal.SIGKILL)
    killed_at = time.monotonic()
    print(f"killed with {len(seen)} of {len(expected)} transitions on the topic")

    second = start_fyp(path, "run", "spikes", log=tmp_path / "run2.log")
    gate.set()
    try:
        producer.join(timeout=180)
        assert done.is_set()
        send_sentinels(stack.bootstrap, cfg.kafka.topics.engagement, sentinel)
        assert_matches_oracle(stack, cfg, traffic, expected, states, receiver)
        print(f"recovered to the oracle {time.monotonic() - killed_at:.1f}s after the kill")
    finally:
        kill_group(second, signal.SIGTERM)
        receiver.close()
    assert "from checkpoint" in (tmp_path / "run2.log").read_text()
