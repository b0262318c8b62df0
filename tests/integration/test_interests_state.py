"""User state stays bounded: one-time users keep state only `newcomer_ttl` of event time and are
all evicted once the watermark passed their expiry, while regular users (min_events views) keep
theirs for `idle_ttl`. Measured with the job's own counters (users_created, users_evicted) over
Flink's REST API. State goes `engagement.allowed_lateness` after the session's TTL. How many are live at once during a compressed replay depends on processing lag
(it is printed, and the 1M-user run is in `make bench`)."""
from __future__ import annotations

import signal
import threading
import time

import orjson
import pytest
from confluent_kafka import Producer

from stack.flink_rest import operator_metric
from stack.daemons import free_port
from jobs.interests import OPERATOR
from tests.conftest import kill_group, start_fyp

pytestmark = [pytest.mark.integration, pytest.mark.long]

START_MS = 1_792_000_000_000
USERS = 20_000
SPAN_MS = 3_600_000
RATE = 1000  # users per second of wall time: 1 min of event time passes in 0.33 s
REGULARS = 50  # users with 3 views each, early in the stream


def _view(user: str, t: int) -> bytes:
    return orjson.dumps({"event_id": f"e-{user}", "user_id": user, "video_id": "v1", "event_time": t,
                         "region": "US", "watch_time_ms": 5000, "video_duration_ms": 10_000, "liked": False,
                         "shared": False, "commented": False, "skipped": False})


def _produce(bootstrap: str, topic: str, stop: threading.Event) -> None:
    """Distinct one-time users, paced; then a one-time 'tick' user every 0.5 s, 10 s of event
    time apart, which keeps the watermark moving and the job's metrics reported."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for r in range(REGULARS):
        for k in range(3):
            p.produce(topic, _view(f"regular-{r}", START_MS + 1000 * r + 10 * k), partition=r % 2)
    t0 = time.monotonic()
    for i in range(USERS):
        p.produce(topic, _view(f"once-{i}", START_MS + i * SPAN_MS // USERS), partition=i % 2)
        if i % 100 == 0:
            p.poll(0)
            ahead = i / RATE - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    k = 0
    while not stop.is_set():
        for part in (0, 1):
            p.produce(topic, _view(f"tick-{k}-{part}", START_MS + SPAN_MS + 10_000 * k), partition=part)
        p.flush(10)
        k += 1
        stop.wait(0.5)


def test_one_time_users_keep_state_only_briefly(stack, tmp_path):
    rest_port = free_port()
    cfg, path = stack.config("istate", **{
        "interests.newcomer_ttl": "1m", "interests.min_events": 3, "enrichment.metadata_wait": "1s",
        "flink.extra": {"rest.port": str(rest_port)}})
    rest = f"http://127.0.0.1:{rest_port}"
    proc = start_fyp(path, "run", "interests", "--fresh", log=tmp_path / "run.log")
    stop = threading.Event()
    producer = threading.Thread(target=_produce, args=(stack.bootstrap, cfg.kafka.topics.engagement, stop), daemon=True)
    try:
        deadline = time.monotonic() + 120
        while operator_metric_or_none(rest, "numRecordsIn") is None:
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.5)
        producer.start()
        samples = []
        while time.monotonic() < deadline:
            created = operator_metric_or_none(rest, "users_created")
            evicted = operator_metric_or_none(rest, "users_evicted")
            if created is not None and evicted is not None:
                samples.append((created, evicted))
                if created >= USERS + REGULARS and evicted >= USERS:
                    break
            time.sleep(0.5)
    finally:
        stop.set()
        kill_group(proc, signal.SIGTERM)
    assert samples, "no metrics reported"
    live = [c - e for c, e in samples]
    print(f"one-time users: {USERS}, most live at once: {max(live):.0f}; "
          f"created {samples[-1][0]:.0f}, evicted {samples[-1][1]:.0f}")
    # every one-time user was evicted once the watermark passed its expiry; the regulars were not
    # (left: the regulars and the tick users of the last newcomer_ttl + allowed_lateness = 2 min
    # of event time, 2 per 10 s)
    assert samples[-1][1] >= USERS, f"not all evicted: {samples[-5:]}"
    assert REGULARS <= live[-1] <= REGULARS + 26, f"live at the end: {live[-1]}"


def operator_metric_or_none(rest: str, metric: str):
    try:
        return operator_metric(rest, OPERATOR, metric)
    except OSError:
        return None
