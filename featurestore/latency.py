"""A fixed-bucket latency histogram in plain Python: cheap to update on the write path, read by
the metrics exporter (services/observability) as a Prometheus histogram."""
from __future__ import annotations

import threading

# seconds: a pipelined Redis write of a batch takes from ~0.2 ms (a few keys) to tens of ms
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class LatencyHistogram:
    def __init__(self, buckets=BUCKETS):
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self.total = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        i = 0
        for i, b in enumerate(self.buckets):
            if seconds <= b:
                break
        else:
            i = len(self.buckets)
        with self._lock:
            self.counts[i] += 1
            self.total += seconds

    def snapshot(self) -> tuple[list[tuple[str, int]], float]:
        """Cumulative (upper bound, count) pairs ending with +Inf, and the sum of observations."""
        with self._lock:
            counts, total = list(self.counts), self.total
        out, running = [], 0
        for b, c in zip([*map(str, self.buckets), "+Inf"], counts):
            running += c
            out.append((b, running))
        return out, total
