"""A circuit breaker for reads: after `failures` reads in a row fail (timeout, refused, reset),
stop asking Redis for `open_for_s` and answer from the fallbacks at once.

WHY: a ranking request has a few milliseconds. While Redis is down or stuck, every read would wait
its full timeout before falling back; with the breaker open only one probe per `open_for_s` pays
it (half-open), and the first probe that succeeds closes the breaker.
"""
from __future__ import annotations

import threading
import time

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(self, failures: int, open_for_s: float, clock=time.monotonic):
        self.failures = failures
        self.open_for_s = open_for_s
        self.clock = clock
        self._lock = threading.Lock()
        self._failed = 0
        self._opened_at: float | None = None
        self._probing = False
        self.trips = 0

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        return HALF_OPEN if self.clock() - self._opened_at >= self.open_for_s else OPEN

    def allow(self) -> bool:
        """May this read go to Redis? Closed: yes. Open: no. Half-open: one caller at a time."""
        if self._opened_at is None:
            return True
        with self._lock:
            if self._opened_at is None:
                return True
            if self.clock() - self._opened_at < self.open_for_s or self._probing:
                return False
            self._probing = True
            return True

    def success(self) -> None:
        if self._failed or self._opened_at is not None:
            with self._lock:
                self._failed = 0
                self._opened_at = None
                self._probing = False

    def failure(self) -> None:
        with self._lock:
            self._failed += 1
            if self._probing or self._failed >= self.failures:
                if self._opened_at is None:
                    self.trips += 1
                self._opened_at = self.clock()
                self._probing = False
