"""Retrying what an outage interrupts: services slow down during one, they never drop work."""
from __future__ import annotations

import time

import redis

# what a retry can outlast: Redis down or loading, and a cluster between topologies
REDIS_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError,
                     redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError)


def retry_with_backoff(call, errors: tuple, backoff_max_s: float, on_retry):
    """Calls `call()` until it does not raise one of `errors`, sleeping 50 ms, 100 ms, ... up to
    `backoff_max_s` between tries (`on_retry(error, delay)` before each sleep)."""
    delay = 0.05
    while True:
        try:
            return call()
        except errors as e:
            on_retry(e, delay)
            time.sleep(delay)
            delay = min(delay * 2, backoff_max_s)
