"""A service's batch (services/partition_reader.py) leaves as soon as records are there: it does
not wait out the poll timeout for a batch of fewer than its maximum, the case of every batch
while a service is caught up."""
from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from services.partition_reader import PartitionReader
from settings.kafka_clients import client_config

pytestmark = pytest.mark.integration

POLL_TIMEOUT_MS = 30_000


def test_a_batch_of_fewer_records_than_the_maximum_does_not_wait_for_the_timeout(stack):
    cfg, _ = stack.config("reader-wait")
    topic = cfg.kafka.topics.feature_updates
    reader = PartitionReader(client_config(cfg.kafka), topic, "reader-wait", stack.redis(cfg), lambda call: call(),
                             batch_max=2000, poll_timeout_ms=POLL_TIMEOUT_MS)
    reader.assign({})
    p = Producer(client_config(cfg.kafka))
    for i in range(3):
        p.produce(topic, b"r%d" % i, partition=0)
    p.flush(30)
    started = time.monotonic()
    got = []
    while len(got) < 3 and time.monotonic() - started < 3 * POLL_TIMEOUT_MS / 1000:
        got += [m.value() for m in reader.poll().records]
    elapsed = time.monotonic() - started
    reader.close()
    assert got == [b"r0", b"r1", b"r2"]
    # consume(2000, timeout) returns only when 2000 records are there or the timeout has passed
    assert elapsed < POLL_TIMEOUT_MS / 1000 / 2, f"3 records took {elapsed:.1f}s to leave the reader"
