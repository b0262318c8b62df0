"""Metrics of a read client (featurestore/client.py) for `fyp serve`'s /metrics: its counters,
the breaker's state and the server's request latency."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from featurestore.breaker import CLOSED


class ReadClientCollector:
    def __init__(self, client, latency):
        self.client = client
        self.latency = latency  # featurestore.latency.LatencyHistogram of /v1/features requests

    def collect(self):
        for key, value in dict(self.client.stats).items():
            c = CounterMetricFamily(f"fyp_read_{key}", f"read client: {key.replace('_', ' ')}")
            c.add_metric([], value)
            yield c
        open_ = GaugeMetricFamily("fyp_read_breaker_open", "1 while the circuit breaker keeps reads off Redis")
        open_.add_metric([], 0.0 if self.client.breaker.state == CLOSED else 1.0)
        yield open_
        trips = CounterMetricFamily("fyp_read_breaker_trips", "times the breaker opened")
        trips.add_metric([], self.client.breaker.trips)
        yield trips
        entries = GaugeMetricFamily("fyp_read_cache_entries", "values held in the local cache")
        entries.add_metric([], len(self.client.cache))
        yield entries
        buckets, total = self.latency.snapshot()
        h = HistogramMetricFamily("fyp_serve_request_seconds", "time to answer a feature request")
        h.add_metric([], buckets, total)
        yield h


def metrics_text(collector: ReadClientCollector) -> bytes:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry)
